"""A confirm button with CSRF: a change asked for on the page before is made only here."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField
from wtforms.validators import Length, Optional


class ConfirmForm(FlaskForm):
    #: For a refund: the amount shown, "<amount> <currency>"; it is refunded only as shown.
    amount_shown = HiddenField(validators=[Optional(), Length(max=64)])
    confirm = SubmitField(_l("Confirm"))
