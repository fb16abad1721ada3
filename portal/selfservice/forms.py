"""A confirm button with CSRF: a change asked for on the page before is made only here."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

#: The reasons offered when turning automatic renewal off (portal.autorenew.OFF_REASONS).
OFF_REASON_LABELS = {
    "too_expensive": _l("It is too expensive"),
    "no_longer_needed": _l("We no longer need the product"),
    "other_vendor": _l("We are moving to another product"),
    "renew_by_hand": _l("We prefer to renew by hand"),
    "purchasing_rules": _l("Our purchasing rules require a new order each time"),
    "other": _l("Another reason"),
}


class ConfirmForm(FlaskForm):
    #: For a refund: the amount shown, "<amount> <currency>"; it is refunded only as shown.
    amount_shown = HiddenField(validators=[Optional(), Length(max=64)])
    confirm = SubmitField(_l("Confirm"))


class AutoRenewOffForm(FlaskForm):
    """Turning automatic renewal off, with an optional reason."""

    reason = RadioField(_l("Why are you turning it off? (optional)"),
                        choices=[SelectChoice(code, label) for code, label in OFF_REASON_LABELS.items()], validators=[Optional()],
                        validate_choice=True)
    comment = TextAreaField(_l("Anything else you want to tell us (optional)"),
                            validators=[Optional(), Length(max=500)])
    confirm = SubmitField(_l("Confirm"))
