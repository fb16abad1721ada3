"""Issued quotes. A quote stores what it was computed from and never changes after issue."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, String, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.errors import PortalError
from portal.extensions import db
from portal.renewals import rules
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

    # The stored document as rule objects: code outside this class reads a quote's
    # options through these, never through the document's shape.

    def options(self):
        """The quoted options as :class:`rules.Option`, in the quote's order."""
        return [stored_option(option) for option in self.document["quote"]["options"]]

    def option(self, service_level, term_months):
        """The (``service_level``, ``term_months``) option, or None when it is not offered."""
        return next((option for option in self.options()
                     if (option.service_level, option.term_months)
                     == (service_level, term_months)), None)

    def result(self):
        """The quote as :class:`rules.QuoteResult` (without its options): with an option,
        what :func:`rules.payment` prices."""
        return rules.QuoteResult(
            contract=self.document["quote"]["contract"], quote_date=self.quote_date,
            currency=self.currency, eligible=self.eligible, reason=self.reason, options=(),
            valid_until=self.valid_until,
        )

    def contract_end_date(self):
        """The contract's end date the quote was computed for (ISO text), or ''."""
        return self.document.get("contract_end_date", "")


def stored_option(option):
    """One option of a stored quote document as :class:`rules.Option`."""
    return rules.Option(
        service_level=option["service_level"], term_months=option["term_months"],
        term_start=date.fromisoformat(option["term_start"]),
        term_end=date.fromisoformat(option["term_end"]),
        lapsed_days=option["lapsed_days"], term_fee=Decimal(option["term_fee"]),
        backdated_fee=Decimal(option["backdated_fee"]),
        reinstatement_fee=Decimal(option["reinstatement_fee"]), total=Decimal(option["total"]),
        usd_equivalent=Decimal(option["usd_equivalent"]), within_cap=option["within_cap"],
    )


@event.listens_for(Quote, "before_update")
def _refuse_quote_update(mapper, connection, target):
    raise QuoteImmutable(f"quote {target.id} was issued and cannot change")
