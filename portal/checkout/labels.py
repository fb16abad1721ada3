"""Translated names for codes the checkout shows: levels, payment methods, error codes;
and the reader's way of joining such names into one label or list."""
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

LEVEL_LABELS = {
    # i18n: a service level of a support contract
    "basic": _l("Basic"),
    # i18n: a service level of a support contract
    "production": _l("Production"),
    # i18n: a service level of a support contract (renewed by the renewals desk only)
    "business_critical": _l("Business Critical"),
}

METHOD_LABELS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "jcb": "JCB",
    "maestro": "Maestro",
    "cartes_bancaires": "Carte Bancaire",
    "alipay": "Alipay",
    "ideal": "iDEAL",
    "paypal": "PayPal",
    "paynearme": _l("PayNearMe (cash)"),
    "webmoney": "WebMoney",
    "bank_transfer": _l("Online bank transfer"),
    "check": _l("Check or money order"),
}

#: What went wrong with a choice or an order, by the code of OrderError or the selection.
ERROR_MESSAGES = {
    "option_not_offered": _l("That renewal option is not offered for your contract. "
                             "Please choose one of the options below."),
    "currency_not_offered": _l("That currency cannot be used for payment today. "
                               "Please choose one of the currencies offered."),
    "method_not_offered": _l("That payment method is not offered for your country and "
                             "currency. Please choose another one."),
    "over_cap": _l("This option is over the limit for online renewal. Please request a "
                   "quote and our renewals desk will contact you."),
    "quote_expired": _l("Your quote has been updated. Please check the amounts and place "
                        "your order again."),
    "amount_changed": _l("The amount due has changed since the page was shown. Please check "
                         "the new amount and place your order again."),
    "already_renewed": _l("An order for this renewal is already waiting for payment."),
    "card_unavailable": _l("Card payments are not available at the moment. Please choose "
                           "another payment method or try again later."),
    "invalid": _l("Please check your choices and try again."),
    "nothing_chosen": _l("Please choose at least one contract to renew."),
    "tax_id_invalid": _l("This VAT or tax number does not have the format of your "
                         "country. Please check it, or leave the field empty."),
}


#: Why a contract cannot be added to a combined order, in a few words (the reason codes of
#: "Eligibility for online renewal" in docs/rules.md).
REASON_LABELS = {
    "oem": _l("Renewed through your OEM partner"),
    "level_not_online": _l("This service level cannot be renewed online"),
    "not_launched": _l("Online renewal is not available in your country yet"),
    "lapsed_too_long": _l("Lapsed too long ago to be renewed online"),
    "no_price": _l("A product has no list price: please ask the renewals desk"),
    "over_cap": _l("Over the limit for online renewal: request a quote from its own page"),
    "already_renewed": _l("Already renewed, or an order for it awaits payment"),
    "cancelled": _l("Cancelled"),
}


def reason_label(code):
    return REASON_LABELS.get(code, _l("Cannot be renewed online"))


def level_label(code):
    """The level's translated name; a level without one shows as its code, readably."""
    if code in LEVEL_LABELS:
        return LEVEL_LABELS[code]
    return code.replace("_", " ").title()


def method_label(code):
    return METHOD_LABELS.get(code, code)


def error_message(code):
    return ERROR_MESSAGES.get(code, _l("Your order could not be placed. Nothing was charged."))



def join_list(parts):
    """``parts`` (names, a level and a term, contract numbers) as one label or list in the
    reader's language: "Basic, 12 months" in English, "أساسي، 12 شهرًا" in Arabic,
    "ベーシック、12か月" in Japanese. The pattern is translated, not taken from Babel's
    list patterns: those add "and" (wrong in a label) and Arabic's has no comma. Markup
    parts (a template's translations) stay markup, the others are escaped into it."""
    parts = list(parts)
    if not parts:
        return ""
    # i18n: joins two items of a label or list, with no "and": a service level and a term
    # ("Basic, 12 months"), or contract numbers. Write your language's list separator,
    # e.g. Arabic "%(first)s، %(second)s", Japanese and Chinese "%(first)s、%(second)s".
    pattern = gettext("%(first)s, %(second)s")
    if any(isinstance(part, Markup) for part in parts):
        pattern = Markup(pattern)
    text = parts[0]
    for part in parts[1:]:
        text = pattern % {"first": text, "second": part}
    return text


def inline_code(value):
    """A code shown in running text (a contract number, an order or payment reference, an
    invoice number) as markup to pass into a translated sentence: isolated from the text
    around it, so it keeps its left-to-right order in a right-to-left page, and never
    broken across lines (``.code`` in static/portal.css). Not for text-only places (a
    page title, an email subject, an ``<option>``)."""
    return Markup('<bdi class="code">%s</bdi>') % value


def inline_text(text):
    """Latin text (a postal address, a company name) inside a translated sentence,
    isolated so that a right-to-left page keeps its words and commas in their order; it
    may still wrap."""
    return Markup("<bdi>%s</bdi>") % text


def inline_amount(text):
    """A formatted amount inside a translated sentence, isolated like the amounts of lists
    (``.amount`` in static/portal.css): "900.00 US$" keeps its order in a right-to-left
    sentence instead of reading "$US 900.00"."""
    return Markup('<bdi class="amount">%s</bdi>') % text
