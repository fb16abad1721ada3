"""Translated reasons the refund page gives, by the code of RefundRefused or the policy."""
from flask_babel import lazy_gettext as _l

REFUND_MESSAGES = {
    "too_late": _l("Refunds are given within 60 days of payment; this renewal was paid more "
                   "than 60 days ago."),
    "term_over": _l("After the first 60 days, only the days of the term from the first day "
                    "of next month are refunded (in Québec, the days after today), and none "
                    "are left."),
    "already_refunded": _l("This contract has had a refund before, so no further refund can "
                           "be given online. Please contact the renewals desk."),
    "nothing_to_refund": _l("There is no renewal payment to refund for this contract."),
    "amount_changed": _l("The refund amount has changed since the page was shown. Please "
                         "check it and confirm again."),
    "card_unavailable": _l("Card refunds are not available at the moment. Please try again "
                           "later."),
}


def refund_message(code):
    return REFUND_MESSAGES.get(code, REFUND_MESSAGES["nothing_to_refund"])
