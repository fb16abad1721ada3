"""Checkout forms. Choices are filled in by the view from the customer's quote, so a value
that the quote does not offer is a validation error, never an exception."""
from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from portal.checkout.models import CHANGE_KINDS
from portal.i18n import wtforms_catalog

MESSAGE_MAX = 4000
CHANGE_KIND_LABELS = {
    "level": _l("Service level"),
    "term": _l("Term length"),
    "quantities": _l("Quantities"),
    "quote": _l("A formal quote for an option over the online limit"),
    "other": _l("Something else"),
}


class _OfferedChoice:
    """A choice field whose refusal speaks the page's language (the catalogs of WTForms
    itself do not cover every page language)."""

    def pre_validate(self, form):
        try:
            super().pre_validate(form)
        except ValueError:
            raise ValidationError(_l("Please choose one of the options offered.")) from None


class OfferedSelect(_OfferedChoice, SelectField):
    pass


class OfferedRadio(_OfferedChoice, RadioField):
    pass


def _term(value):
    """Coerce a term to int; anything else stays as text and fails the choice check."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


class CheckoutForm(FlaskForm):
    """A checkout form: WTForms' messages from a catalog read once per locale."""

    class Meta:
        def get_translations(self, form):
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return wtforms_catalog(str(get_locale() or "en"))

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for field in self:
            # Two checks can find one fault (an address too long is not an address
            # either): each message is shown once.
            if isinstance(field.errors, list):
                once = {}
                for error in field.errors:
                    once.setdefault(str(error), error)
                field.errors[:] = once.values()
        return valid


class BillingForm(CheckoutForm):
    """Billing details for the invoice, all optional (portal/checkout/billing.py): on the
    order form, and on the confirmation page while the order awaits payment."""

    po_number = StringField(_l("Purchase order number (optional)"),
                            validators=[Optional(), Length(max=64)])
    tax_id = StringField(_l("VAT or tax number (optional)"),
                         validators=[Optional(), Length(max=32)])
    billing_address = TextAreaField(_l("Billing address (optional)"),
                                    validators=[Optional(), Length(max=500)])


class OrderForm(BillingForm):
    # i18n: the renewal option's service level (basic, production)
    service_level = OfferedSelect(_l("Service level"), validate_choice=True)
    # i18n: the length of the renewal term
    term_months = OfferedSelect(_l("Term"), coerce=_term, validate_choice=True)
    # i18n: label of the list of currencies the customer can pay in ("Pay in: EUR")
    pay_currency = OfferedSelect(_l("Pay in"), validate_choice=True)
    payment_method = OfferedRadio(_l("Payment method"), validate_choice=True)
    # i18n: opt-in checkbox, unticked by default (docs/rules.md, "Automatic renewal")
    auto_renew = BooleanField(_l("Renew automatically with this card every term"), default=False)
    #: The amount due the customer saw, "<amount> <currency>": an order is placed only for it.
    amount_shown = HiddenField(validators=[Optional(), Length(max=64)])
    update = SubmitField(_l("Update amounts"))
    place = SubmitField(_l("Place order"))

    def set_choices(self, levels, terms, currencies, methods):
        """Each argument: ``(value, label)`` pairs offered by the customer's quote."""
        for field, pairs in ((self.service_level, levels), (self.term_months, terms),
                             (self.pay_currency, currencies), (self.payment_method, methods)):
            field.choices = [SelectChoice(value, label) for value, label in pairs]


class CombinedOrderForm(BillingForm):
    """The combined order of several contracts: one pay currency and one method; each
    contract's box and option are plain request values the view checks against the
    contracts it shows (portal/checkout/combined.py)."""

    pay_currency = OfferedSelect(_l("Pay in"), validate_choice=True)
    payment_method = OfferedRadio(_l("Payment method"), validate_choice=True)
    #: The total and contracts the customer saw: an order is placed only for them.
    amount_shown = HiddenField(validators=[Optional(), Length(max=2000)])

    def set_choices(self, currencies, methods):
        for field, pairs in ((self.pay_currency, currencies), (self.payment_method, methods)):
            field.choices = [SelectChoice(value, label) for value, label in pairs]


class SwitchToCardForm(CheckoutForm):
    """Pay an offline order by card instead (the CSRF token is all it carries)."""

    switch = SubmitField(_l("Pay by card instead"))


class ResendLinkForm(CheckoutForm):
    email = StringField(
        _l("Your email address"),
        validators=[DataRequired(_l("Please enter your email address.")),
                    Length(max=254, message=_l("Please enter a valid email address.")),
                    Email(message=_l("Please enter a valid email address."))],
    )
    send = SubmitField(_l("Send me a new link"))


class ChangeRequestForm(CheckoutForm):
    kind = OfferedSelect(
        _l("What would you like to change?"),
        choices=[SelectChoice(kind, CHANGE_KIND_LABELS[kind]) for kind in CHANGE_KINDS],
        validate_choice=True,
    )
    message = TextAreaField(
        _l("Your request"),
        validators=[Length(max=MESSAGE_MAX, message=_l("Please keep your request shorter."))],
    )
    service_level = HiddenField(validators=[Optional(), Length(max=64)])
    term_months = HiddenField(validators=[Optional(), Length(max=8)])
    submit = SubmitField(_l("Send request"))

    def validate_message(self, field):
        if self.kind.data != "quote" and not (field.data or "").strip():
            raise ValidationError(_l("Please tell us what you would like to change."))

