"""Requests from customers to change their quote, kept for the renewals desk."""
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.states import StateMachine
from portal.timeutil import utc_now

#: What a customer can ask to change; ``quote`` asks for a formal quote (over the cap).
CHANGE_KINDS = ("level", "term", "quantities", "quote", "other")


class ChangeRequestStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


CHANGE_REQUEST_STATES = StateMachine("change request", ChangeRequestStatus, {
    ChangeRequestStatus.OPEN: {ChangeRequestStatus.ANSWERED},
    ChangeRequestStatus.ANSWERED: set(),
})
CHANGE_STATUSES = tuple(ChangeRequestStatus)


class QuoteChangeRequest(db.Model):
    __tablename__ = "quote_change_request"
    __table_args__ = (
        CHANGE_REQUEST_STATES.check_constraint(),
        CheckConstraint(
            "kind in ('level', 'term', 'quantities', 'quote', 'other')", name="kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    #: The public reference of the renewal link the request came through.
    link_reference: Mapped[str] = mapped_column(String(16), default="")
    kind: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=ChangeRequestStatus.OPEN, index=True)
    answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    contract: Mapped["Contract"] = relationship()  # noqa: F821
    contact: Mapped["Contact"] = relationship()  # noqa: F821

    def transition(self, new_status):
        CHANGE_REQUEST_STATES.move(self, new_status)
