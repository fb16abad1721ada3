"""The customer checkout pages. Thin views: the logic lives in ``services``."""
from functools import wraps

from flask import Blueprint, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext, ngettext, refresh

from portal.checkout import combined, emails, services
from portal.autorenew.optin import is_on
from portal.orders.services import cancel_offline_order
from portal.renewals.refunds import has_withdrawal_right
from portal.checkout import billing
from portal.checkout.forms import (
    BillingForm,
    ChangeRequestForm,
    OrderForm,
    ResendLinkForm,
    SwitchToCardForm,
)
from portal.checkout.instructions import is_offline, payment_instructions
from portal.checkout.labels import error_message, level_label, method_label
from portal.extensions import commit_writes, db
from portal.money import amount_string
from portal.orders.services import OrderError
from portal.payments import attempts
from portal.renewals.services import quote_products
from portal.i18n import page_locale
from portal.timeutil import utc_now, utc_today
from portal.web import SAFE_METHODS, error_page_hook, rate_limited, visitor_key, writes

bp = Blueprint("checkout", __name__)

#: Opening links is rate limited per address (guessing tokens); posting a customer form
#: per renewal link (flooding; ``form_limited``).
TOKEN_LIMIT = "30 per minute;300 per hour"
FORM_LIMIT = "20 per minute;200 per hour"


def form_limited(view):
    """A customer form's rate limit: ``FORM_LIMIT`` for each form, counted per renewal link
    (``web.visitor_key``), so customers behind one office address do not share it."""
    return rate_limited(FORM_LIMIT, key_func=visitor_key)(view)
#: The card payment page (portal/payments) that takes over after a card order is placed.
CARD_PAYMENT_PATH = "/renewal/pay"
CARD_RETURN_PATH = "/renewal/pay/return"


@bp.before_request
def load_link():
    """The renewal link in the visitor's session; its contact's language is the default.
    A page that only reads gets what the quote page shows with it (``g.link_facts``)."""
    if request.method in SAFE_METHODS:
        g.link, g.link_facts = services.read_link(session.get("link_id"), utc_today())
    else:
        g.link, g.link_facts = services.usable_link(session.get("link_id"), utc_today()), None
    _use_link_language()


def _use_link_language():
    g.contact_language = g.link.contact.language if g.link is not None else None
    refresh()  # choose the locale again, now that the contact's language is known


def link_for_error_page(_status, _message_key):
    """An error page under /renewal (a stale form's CSRF error, a rate limit, an address
    no view matched) comes before ``load_link`` or without it: it still shows the support
    contact and language of the visitor's link, when the session holds a usable one."""
    if "link" not in g:
        g.link = services.usable_link(session.get("link_id"), utc_today())
        _use_link_language()
    return None  # the common error page


@bp.record_once
def _register_error_page_hook(state):
    error_page_hook(state.app, "/renewal", link_for_error_page)


@bp.record_once
def _checkout_helpers(state):
    """Functions every template may call, given to the template environment once (a
    context processor would build this dictionary for every page)."""
    state.app.jinja_env.globals.update(
        level_label=level_label, method_label=method_label,
        link_auto_renew_on=link_auto_renew_on, quote_products=quote_products,
        has_withdrawal_right=has_withdrawal_right,
        offline_alternatives=services.offline_alternatives, amount_string=amount_string,
        change_method_url=change_method_url)


def link_auto_renew_on():
    """Whether automatic renewal is on for the contract of the visitor's link (the page
    footer says so)."""
    facts = g.get("link_facts")
    return facts.auto_renew_on if facts is not None else is_on(g.link.contract)


def change_method_url(order):
    """Where "Change payment option" leads from a card order: the contract's quote page,
    or for a combined order the combined page with its contracts, options and currency
    (the contract's own page would order that contract alone)."""
    order = order.payer
    if not order.combined_orders:
        return url_for("checkout.renewal")
    together = order.paid_together
    return combined_url([each.contract_id for each in together],
                        {each.contract_id: f"{each.service_level}|{each.term_months}"
                         for each in together}, order.pay_currency)


def combined_url(chosen, options, pay_currency):
    """The combined page with the contracts ``chosen`` (ids) in the order, ``options``
    (``{contract id: "level|months"}``) selected and amounts in ``pay_currency``."""
    return url_for("checkout.contracts", contract=list(chosen), pay_currency=pay_currency,
                   **{f"option-{contract_id}": option for contract_id, option in options.items()})


@bp.context_processor
def help_link():
    link = g.get("link")
    return {"help_mailto": services.help_mailto(link) if link is not None else None}


def link_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.link is None:
            return render_template("checkout/no_session.html"), 403
        return view(*args, **kwargs)

    return wrapper


# --- the link ---


@bp.get("/")
def home():
    """The site's root: how a customer gets in (with the link from a renewal email)."""
    return render_template("checkout/home.html")


@bp.get("/r/<token>")
@rate_limited(TOKEN_LIMIT)
@writes
def open_link(token):
    """Move the token into the session and redirect to a URL without it; change nothing else.
    An unknown or stale link leaves the visitor's session as it is: a renewal they are in
    (from a newer email) keeps working, and the page speaks its contact's language."""
    link, usable = services.open_token(token, utc_today())
    if usable:
        language = page_locale(request.args.get("lang")) or session.get("lang")
        session.clear()
        if language:
            session["lang"] = language
        session.permanent = True
        session["link_id"] = link.id
        link.last_opened_at = utc_now()
        db.session.commit()
        if request.args.get("to") == "auto-renew":  # the pre-charge notice's turn-off link
            return redirect(url_for("selfservice.auto_renew"), code=303)
        if request.args.get("to") == "contracts":  # a notice's link to the combined order
            return redirect(url_for("checkout.contracts"), code=303)
        return redirect(url_for("checkout.renewal"), code=303)
    g.link = None
    if link is not None:
        g.contact_language = link.contact.language
        refresh()
        session["stale_link_id"] = link.id
        if services.window_closed(link, utc_today()):
            # The contract lapsed too long ago (``lapsed_too_long``): no checkout any more,
            # but the customer learns why and can ask the renewals desk for a quote.
            g.link = link
            refresh()
            return render_template("checkout/window_closed.html", contract=link.contract)
    return render_template("checkout/link_invalid.html", form=ResendLinkForm(), sent=False), 404


@bp.post("/renewal/new-link")
@form_limited
def resend_link():
    """Send a fresh link if the address is on record; the answer is the same either way."""
    form = ResendLinkForm()
    if not form.validate_on_submit():
        return render_template("checkout/link_invalid.html", form=form, sent=False), 400
    issued = services.resend_link(session.get("stale_link_id"), form.email.data, utc_today())
    if issued is not None:
        emails.send_fresh_link(*issued)
    db.session.commit()
    return render_template("checkout/link_invalid.html", form=None, sent=True)


# --- the quote ---

#: What a visitor chose or typed on an order form before "Update amounts": kept in their
#: session for the page the update redirects to, so that reloading that page or going Back
#: to it never posts the form again. A value is kept up to this many characters (more than
#: any field takes, so an over-long one is still refused when the order is placed).
DRAFT_FIELDS = ("payment_method", "po_number", "tax_id", "billing_address", "auto_renew")
DRAFT_CHARS = 600


def keep_draft(posted):
    draft = {name: posted.get(name, "")[:DRAFT_CHARS] for name in DRAFT_FIELDS
             if posted.get(name)}
    if draft:
        session["order_draft"] = draft
    elif "order_draft" in session:
        del session["order_draft"]


def take_draft():
    """The values ``keep_draft`` kept (once), or an empty dict."""
    if "order_draft" not in session:
        return {}
    draft = session.pop("order_draft")
    return {name: str(draft[name]) for name in DRAFT_FIELDS if name in draft} if isinstance(
        draft, dict) else {}


def _order_form(page, formdata=None, prefill=None, draft=None):
    """``prefill``: the account's billing details (``billing.defaults``), if already read;
    ``draft``: what the visitor chose before updating the amounts (``take_draft``)."""
    form = OrderForm(formdata=formdata, data={
        "service_level": page.service_level, "term_months": page.term_months,
        "pay_currency": page.pay_currency, "amount_shown": page.amount_shown,
        "payment_method": page.methods[0].code if len(page.methods) == 1 else None,
        **(billing.defaults(page.contract) if prefill is None else prefill),
        **{name: value == "y" if name == "auto_renew" else value
           for name, value in (draft or {}).items()},
    })
    form.set_choices(
        [(level, level_label(level)) for level in page.levels],
        [(term, ngettext("%(num)d month", "%(num)d months", term)) for term in page.terms],
        [(code, code) for code in page.pay_currencies],
        [(m.code, method_label(m.code)) for m in page.methods],
    )
    return form


class Deferred:
    """An object built when first used: a form whose markup the page may take from the
    store of kept pieces (``fragment``) without needing the form at all."""

    def __init__(self, build):
        self._build = build
        self._built = None

    def __getattr__(self, name):
        if self._built is None:
            self._built = self._build()
        return getattr(self._built, name)


def _render_page(page, form=None, errors=(), status=200, facts=None):
    """``facts``: the link's ``LinkFacts`` when nothing was written since they were read."""
    errors = [error_message(code) for code in (*page.errors, *errors)]
    quote_request = page.quote.reason in ("lapsed_too_long", "no_price", "over_cap")
    change_kind = "quote" if quote_request else "level"
    other_due = combined.other_due_count(page.link, utc_today(), facts)
    if not page.quote.eligible:
        order = services.shown_order(page.contract)
        return render_template(
            "checkout/ineligible.html", page=page, reason=page.quote.reason, order=order,
            instructions=_instructions(order), errors=errors,
            change_form=ChangeRequestForm(formdata=None, kind=change_kind),
            products=quote_products(page.quote), other_due=other_due,
        ), status
    # A fresh order form is everything its values make it: its markup can be kept under
    # them (templates/checkout/quote.html), and the form is built only if it is rendered.
    # A form carrying the visitor's input is always rendered.
    order_form_key = None
    if form is None:
        prefill = facts.billing if facts is not None else billing.defaults(page.contract)
        order_form_key = (page.levels, page.terms, page.pay_currencies, page.methods,
                          page.service_level, page.term_months, page.pay_currency,
                          page.amount_shown, prefill)
        form = Deferred(lambda: _order_form(page, prefill=prefill))
    return render_template(
        "checkout/quote.html", page=page, form=form, order_form_key=order_form_key,
        errors=errors, open_card_order=services.open_card_order(page.contract, facts),
        change_kind=change_kind,
        change_form=Deferred(lambda: ChangeRequestForm(formdata=None, kind=change_kind)),
        products=quote_products(page.quote, facts.products_version if facts else None),
        other_due=other_due,
    ), status


def _instructions(order):
    if order is None or not is_offline(order.method):
        return None
    return payment_instructions(order)


@bp.get("/renewal")
@link_required
def renewal():
    """The quote page; ``?service_level=&term_months=&pay_currency=`` re-renders the amounts."""
    args = request.args
    page = services.quote_page(g.link, utc_today(), args.get("service_level"),
                               args.get("term_months"), args.get("pay_currency"),
                               facts=g.link_facts)
    draft = take_draft()
    form = (_order_form(page, prefill=g.link_facts.billing, draft=draft)
            if draft and page.buyable else None)
    # Before the commit, which would expire what it shows.
    response = _render_page(page, form=form, facts=g.link_facts)
    commit_writes()  # keep a freshly issued quote: the order is placed against it
    return response


def _start_over(page, today, code, status):
    """Undo what this request changed and show the page again, saying what went wrong."""
    db.session.rollback()
    page = services.quote_page(g.link, today, page.service_level, page.term_months,
                               page.pay_currency)
    return _render_page(page, errors=[code], status=status)


@bp.get("/renewal/order")
def order_address():
    """The address a refused order form was answered at, opened again (a bookmark, an
    address typed in): the quote page."""
    return redirect(url_for("checkout.renewal"), code=303)


@bp.post("/renewal/order")
@form_limited
@link_required
def place_order():
    """Place the order shown on the page; a changed amount is shown again, not charged."""
    posted = request.form
    today = utc_today()
    page = services.quote_page(g.link, today, posted.get("service_level"),
                               posted.get("term_months"), posted.get("pay_currency"))
    if page.quote.reason == "already_renewed":  # a second click, a reload, another tab
        db.session.commit()
        return redirect(url_for("checkout.confirmation"), code=303)
    if "place" not in posted:  # "Update amounts" (or Enter) shows amounts, never orders
        db.session.commit()
        if page.errors:
            return _render_page(page, status=400)
        keep_draft(posted)
        return redirect(url_for("checkout.renewal", service_level=page.service_level,
                                term_months=page.term_months,
                                pay_currency=page.pay_currency), code=303)
    form = _order_form(page, formdata=posted)
    if not form.validate() or page.errors:
        db.session.commit()
        return _render_page(page, errors=[] if page.errors else ["invalid"], status=400)
    if form.amount_shown.data != page.amount_shown:
        db.session.commit()
        return _render_page(page, form=_order_form(page), errors=["amount_changed"], status=409)
    tax_id = form.tax_id.data and billing.valid_tax_id(form.tax_id.data,
                                                       page.contract.account.country)
    if form.tax_id.data and tax_id is None:
        db.session.commit()
        return _render_page(page, form=form, errors=["tax_id_invalid"], status=400)
    method = form.payment_method.data
    try:
        order, placed_now = services.place(g.link, page, method, today,
                                           auto_renew=form.auto_renew.data)
    except OrderError as error:
        return _start_over(page, today, error.code, 409)
    billing.apply(order, {"po_number": form.po_number.data, "tax_id": tax_id,
                          "billing_address": form.billing_address.data})
    if not is_offline(method):
        state = attempts.start_card_payment(order)
        if state is None:  # the card provider is unavailable
            return _start_over(page, today, "card_unavailable", 503)
        db.session.commit()
        if request.headers.get("X-Card-Inline") == "1":  # the card was typed on this page
            return jsonify(status=state.state, client_secret=state.client_secret,
                           next=request.script_root + CARD_RETURN_PATH)
        return redirect(request.script_root + CARD_PAYMENT_PATH, code=303)
    if placed_now:
        emails.send_order_confirmation(order, g.link)
    db.session.commit()
    return redirect(url_for("checkout.confirmation"), code=303)


@bp.post("/renewal/order/card")
@form_limited
@link_required
def switch_to_card():
    """Pay an offline order awaiting payment by card instead: the same option, today's
    quote, the card page next."""
    return _switch_method(None)


@bp.post("/renewal/order/method")
@form_limited
@link_required
def switch_method():
    """Pay an offline order awaiting payment with another offline method (``payment_method``):
    the same option, today's quote, the new instructions on the page and by email."""
    code = request.form.get("payment_method", "")[:32]
    return _switch_method(code if is_offline(code) else "")  # a card: "Pay by card instead"


def _switch_method(method_code):
    """Replace the offline order in one transaction; on any refusal nothing changes."""
    today = utc_today()
    if not SwitchToCardForm().validate_on_submit():  # the CSRF token
        return redirect(url_for("checkout.confirmation"), code=303)
    try:
        order = services.switch_method(g.link, today, method_code)
    except OrderError as error:
        db.session.rollback()
        return _render_page(services.quote_page(g.link, today), errors=[error.code], status=409)
    if is_offline(order.method):
        emails.send_order_confirmation(order, g.link)
        db.session.commit()
        return redirect(url_for("checkout.confirmation"), code=303)
    if attempts.start_card_payment(order) is None:  # the card provider is unavailable
        db.session.rollback()
        page = services.quote_page(g.link, today)
        return _render_page(page, errors=["card_unavailable"], status=503)
    db.session.commit()
    return redirect(request.script_root + CARD_PAYMENT_PATH, code=303)


@bp.post("/renewal/order/cancel")
@form_limited
@link_required
def cancel_order():
    """Cancel the offline order awaiting payment; the quote page then offers a new one."""
    if not SwitchToCardForm().validate_on_submit():  # the CSRF token is all it carries
        return redirect(url_for("checkout.confirmation"), code=303)
    order = services.link_order(g.link, session.get("order_id"))
    if order is not None and order.status == "awaiting_payment" and not order.payments:
        cancel_offline_order(order.id, f"customer:{g.link.contact_id}", "cancelled by the customer")
        db.session.commit()
    return redirect(url_for("checkout.renewal"), code=303)


@bp.get("/renewal/confirmation")
@link_required
def confirmation():
    order = services.link_order(g.link, session.get("order_id"))
    if order is None:
        return redirect(url_for("checkout.renewal"), code=303)
    return _confirmation_page(order)


def _confirmation_page(order, billing_form=None, errors=(), status=200):
    if billing_form is None and order.status == "awaiting_payment":
        billing_form = BillingForm(formdata=None, obj=order)
    return render_template("checkout/confirmation.html", order=order,
                           instructions=_instructions(order), contract=g.link.contract,
                           billing_form=billing_form,
                           errors=[error_message(code) for code in errors]), status


@bp.post("/renewal/order/billing")
@form_limited
@link_required
def change_billing():
    """Change the billing details of the offline order awaiting payment: what its invoice
    will show (a card order's are changed on the quote page until it is paid)."""
    order = services.link_order(g.link, session.get("order_id"))
    if order is None or order.status != "awaiting_payment":
        return redirect(url_for("checkout.confirmation"), code=303)
    form = BillingForm()
    if not form.validate_on_submit():
        return _confirmation_page(order, form, status=400)
    tax_id = form.tax_id.data and billing.valid_tax_id(form.tax_id.data,
                                                       order.contract.account.country)
    if form.tax_id.data and tax_id is None:
        return _confirmation_page(order, form, ["tax_id_invalid"], status=400)
    for each in order.paid_together:
        billing.apply(each, {"po_number": form.po_number.data, "tax_id": tax_id,
                             "billing_address": form.billing_address.data})
    db.session.commit()
    return redirect(url_for("checkout.confirmation"), code=303)


def _offered_option(form):
    """The option a quote request names (the page's hidden fields), if any, is one the
    contract's quote offers; else the form says so."""
    level, term = form.service_level.data, form.term_months.data
    if not level and not term:
        return True
    options = services.fresh_quote(g.link.contract, utc_today()).options()
    if any(o.service_level == level and str(o.term_months) == term for o in options):
        return True
    form.kind.errors = [*form.kind.errors, gettext("Please choose one of the options offered.")]
    return False


@bp.post("/renewal/change-request")
@form_limited
@link_required
def change_request():
    form = ChangeRequestForm()
    if not form.validate_on_submit() or not _offered_option(form):
        return render_template("checkout/change_request.html", change_form=form), 400
    change = services.request_change(g.link, form.kind.data, form.message.data,
                                     form.service_level.data, form.term_months.data)
    db.session.commit()
    return render_template("checkout/change_requested.html", change=change)
