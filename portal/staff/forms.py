"""Forms of the staff console. Every one carries a CSRF token (Flask-WTF)."""
from babel import Locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    Regexp,
    ValidationError,
)

from portal.money import CURRENCIES
from portal.staff.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from portal.staff.models import ROLES

#: CLDR territory codes that are not countries.
PSEUDO_TERRITORIES = {"ZZ", "EU", "EZ", "UN", "QO"}


class ConsoleForm(FlaskForm):
    """A console form: text with NUL characters is refused (no database stores them)."""

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for field in self:
            if isinstance(field.data, str) and "\x00" in field.data:
                field.errors = [*field.errors, _l("Remove the control characters.")]
                valid = False
        return valid


class SignInForm(ConsoleForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"),
                             validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class ActionForm(ConsoleForm):
    """A button that changes something: only the CSRF token."""


class RegenerateQuoteForm(ConsoleForm):
    """Quantities are read per product of the price list (``qty-<code>``) by the view."""

    notify = BooleanField(_l("Email the new quote with a fresh link to the primary contact"),
                          default=True)


ANSWER_MAX_LENGTH = 5000


class AnswerForm(ConsoleForm):
    answer = TextAreaField(_l("Answer to the customer"), validators=[
        DataRequired(), Length(max=ANSWER_MAX_LENGTH)])


class CancelOrderForm(ConsoleForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class OfflinePaymentForm(ConsoleForm):
    """Only presence is checked here: what the fields must hold is checked by the same
    service as ``portal orders record-payment`` (``portal.orders.offline``)."""

    order = StringField(_l("Order"), validators=[DataRequired()])
    amount = StringField(_l("Amount"), validators=[DataRequired()])
    currency = SelectField(_l("Currency"), choices=[SelectChoice(c, c) for c in CURRENCIES],
                           validate_choice=False)
    received_on = DateField(_l("Received on"), validators=[InputRequired()])
    reference = StringField(_l("Bank or cheque reference"), validators=[DataRequired()])


class RefundForm(ConsoleForm):
    #: The amount the console showed, "<amount> <currency>": refunded only as shown.
    amount_shown = HiddenField(validators=[DataRequired(), Length(max=64)])


class RefundDoneForm(ConsoleForm):
    reference = StringField(_l("Bank or cheque reference"),
                            validators=[DataRequired(), Length(min=2, max=128)])


class ReturnPaymentForm(ConsoleForm):
    """Money for a cancelled or lapsed order was paid back; the service checks the values
    (``portal.orders.offline.return_payment``)."""

    reference = StringField(_l("Bank or cheque reference"), validators=[DataRequired()])
    reason = StringField(_l("Reason"), validators=[DataRequired()])


class StaffUserForm(ConsoleForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254), Email(
        message=_l("Enter an email address."))])
    role = SelectField(_l("Role"), choices=[SelectChoice(r, r) for r in ROLES])
    password = PasswordField(_l("Initial password"), validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)])


class StaffRoleForm(ConsoleForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(r, r) for r in ROLES])
    active = BooleanField(_l("Active"))


class MarketLaunchForm(ConsoleForm):
    country = StringField(_l("Country (ISO 3166-1 alpha-2)"), validators=[
        DataRequired(), Regexp(r"^[A-Za-z]{2}$", message=_l("Enter a two-letter country code."))])
    launch_date = DateField(_l("Online renewal launch date"), validators=[InputRequired()])
    market_group = StringField(_l("Market group"), validators=[Length(max=64)])

    def validate_country(self, field):
        code = field.data.upper()
        if code not in Locale("en").territories or code in PSEUDO_TERRITORIES:
            raise ValidationError(_l("Enter a two-letter country code."))
