"""Requests from customers to change their quote, kept for the renewals desk."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utc_now

#: What a customer can ask to change; ``quote`` asks for a formal quote (over the cap).
CHANGE_KINDS = ("level", "term", "quantities", "quote", "other")
CHANGE_STATUSES = ("open", "answered")


class QuoteChangeRequest(db.Model):
    __tablename__ = "quote_change_request"
    __table_args__ = (
        CheckConstraint("status in ('open', 'answered')", name="status"),
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
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    contract: Mapped["Contract"] = relationship()  # noqa: F821
    contact: Mapped["Contact"] = relationship()  # noqa: F821
