"""A contract's automatic renewal (a card saved with the provider) and its charge attempts."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utc_now

#: Charge milestones: days before the end date E. The first is AUTO_RENEW_CHARGE_DAYS.
RETRY_MILESTONES = (7, 1)


class AutoRenewal(db.Model):
    """One per contract: on or off, and the provider's customer and card ids (never card
    data). Turning it off keeps the row, so the history stays visible."""

    __tablename__ = "auto_renewal"

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), unique=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    enabled: Mapped[bool] = mapped_column(default=True)
    provider: Mapped[str] = mapped_column(String(32), default="stripe")
    customer_ref: Mapped[str] = mapped_column(String(128))
    card_ref: Mapped[str] = mapped_column(String(128))
    #: The card method code of the order that opted in (e.g. ``visa``).
    method: Mapped[str] = mapped_column(String(32))
    opted_in_order_id: Mapped[int | None] = mapped_column(ForeignKey("renewal_order.id"))
    opted_in_at: Mapped[datetime] = mapped_column(default=utc_now)
    turned_off_at: Mapped[datetime | None]
    turned_off_by: Mapped[str | None] = mapped_column(String(254))
    #: Why the customer turned it off (optional): a code of OFF_REASONS and free text.
    off_reason: Mapped[str | None] = mapped_column(String(32))
    off_comment: Mapped[str | None] = mapped_column(String(500))

    contract: Mapped["Contract"] = relationship()  # noqa: F821
    contact: Mapped["Contact"] = relationship()  # noqa: F821


#: claimed: the row is committed before the provider is called; the rest are final.
ATTEMPT_STATUSES = ("claimed", "succeeded", "failed", "skipped")


class AutoRenewAttempt(db.Model):
    """One off-session charge attempt per (contract, end date, milestone). The row is
    committed (claimed) before the provider is called, so two runs cannot both charge,
    and a run that died halfway retries with the same idempotency key."""

    __tablename__ = "auto_renew_attempt"
    __table_args__ = (
        UniqueConstraint("contract_id", "end_date", "milestone"),
        CheckConstraint("status in ('claimed', 'succeeded', 'failed', 'skipped')",
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    end_date: Mapped[date]
    milestone: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("renewal_order.id"))
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    run_date: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]

    order: Mapped["Order"] = relationship()  # noqa: F821
