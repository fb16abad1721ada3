"""Issued quotes. A quote stores what it was computed from and never changes after issue."""
from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, String, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.errors import PortalError
from portal.extensions import db
from portal.timeutil import utc_now


class QuoteImmutable(PortalError):
    """Raised when code tries to change an issued quote."""


class Quote(db.Model):
    __tablename__ = "quote"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    quote_date: Mapped[date]
    valid_until: Mapped[date]
    currency: Mapped[str] = mapped_column(String(3))
    eligible: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(String(32))
    #: The quote JSON of docs/interfaces.md plus the prices, rates, lines and settings used.
    document: Mapped[dict] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(default=utc_now)
    issued_by: Mapped[str] = mapped_column(String(254), default="system")

    contract: Mapped["Contract"] = relationship()  # noqa: F821

    def is_valid_on(self, day):
        return self.quote_date <= day <= self.valid_until


@event.listens_for(Quote, "before_update")
def _refuse_quote_update(mapper, connection, target):
    raise QuoteImmutable(f"quote {target.id} was issued and cannot change")
