"""Orders and payments, with their status as small explicit state machines."""
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.errors import PortalError
from portal.extensions import db
from portal.timeutil import utc_now


class IllegalTransition(PortalError):
    """A status change the state machine does not allow."""


#: status -> statuses it may move to.
ORDER_TRANSITIONS = {
    "pending": {"paid", "failed", "expired", "cancelled"},  # card: waiting for the provider
    "awaiting_payment": {"paid", "expired", "cancelled"},  # offline: waiting for money
    "failed": {"pending", "paid", "cancelled"},  # a declined card may be tried again
    "paid": {"refunded"},
    "expired": set(),
    "cancelled": set(),
    "refunded": set(),
}
#: Orders that hold the next term: at most one per contract.
OPEN_STATUSES = ("pending", "awaiting_payment", "failed")


class Order(db.Model):
    __tablename__ = "renewal_order"  # "order" is an SQL keyword

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quote.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    #: The contract's end date when the order was placed: the renewal continues from it.
    previous_end_date: Mapped[date]
    #: The contract's level and term length when the order was placed: a refund of this
    #: renewal puts them back (empty for orders placed before they were kept).
    previous_service_level: Mapped[str | None] = mapped_column(String(64))
    previous_term_months: Mapped[int | None]
    service_level: Mapped[str] = mapped_column(String(64))
    term_months: Mapped[int]
    term_start: Mapped[date]
    term_end: Mapped[date]
    lapsed_days: Mapped[int] = mapped_column(default=0)
    quote_currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    pay_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Numeric(38, 28))
    fx_fee: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    amount_due: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    method: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="direct")
    placed_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_on: Mapped[date | None]
    paid_at: Mapped[datetime | None]
    provider_payment_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    #: Who cancelled an order awaiting payment, when, and why.
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(254))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    #: Billing details the buyer gave for the invoice (all optional).
    po_number: Mapped[str | None] = mapped_column(String(64))
    tax_id: Mapped[str | None] = mapped_column(String(32))
    billing_address: Mapped[str | None] = mapped_column(String(500))  # lines split by "\n"
    #: The customer asked to renew automatically with this order's card.
    auto_renew: Mapped[bool] = mapped_column(default=False, server_default=false())

    contract: Mapped["Contract"] = relationship()  # noqa: F821
    quote: Mapped["Quote"] = relationship()  # noqa: F821
    payments: Mapped[list["Payment"]] = relationship(back_populates="order")

    @property
    def is_open(self):
        return self.status in OPEN_STATUSES

    def transition(self, new_status):
        if new_status not in ORDER_TRANSITIONS[self.status]:
            raise IllegalTransition(f"order {self.reference}: {self.status} -> {new_status}")
        self.status = new_status


class Payment(db.Model):
    """Money received (or returned) for an order, one row per provider transaction."""

    __tablename__ = "payment"
    __table_args__ = (UniqueConstraint("provider", "provider_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("renewal_order.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))  # "stripe", "offline"
    provider_ref: Mapped[str] = mapped_column(String(128))
    #: charge | refund | to_return (money that came for a cancelled or lapsed order: it
    #: renews nothing and the renewals desk pays it back)
    kind: Mapped[str] = mapped_column(String(16), default="charge")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    received_on: Mapped[date]
    recorded_by: Mapped[str] = mapped_column(String(254), default="system")
    recorded_at: Mapped[datetime] = mapped_column(default=utc_now)

    order: Mapped[Order] = relationship(back_populates="payments")


#: Refund states: paid back through the provider, or waiting for staff to pay it back.
REFUND_STATUSES = ("refunded", "staff_task", "done")


class Refund(db.Model):
    """Money given back for one order's renewal ("Refunds" in docs/rules.md). At most
    one per order: the unique order id makes a repeated request refund once."""

    __tablename__ = "refund"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("renewal_order.id"), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    rule: Mapped[str] = mapped_column(String(16))  # full | months | days
    status: Mapped[str] = mapped_column(String(16), index=True)
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    requested_by: Mapped[str] = mapped_column(String(254))
    requested_on: Mapped[date]
    #: The end date the contract had before it was refunded, and the one it went back to.
    refunded_end_date: Mapped[date]
    restored_end_date: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(254))

    order: Mapped[Order] = relationship()


class ReturnedPayment(db.Model):
    """Staff paid back money that came for a cancelled or lapsed order (a ``to_return``
    payment): with which bank or cheque reference, when, by whom and why. At most one
    per payment: the unique payment id makes a second "paid back" impossible."""

    __tablename__ = "returned_payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), unique=True)
    reference: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(500))
    returned_on: Mapped[date]
    returned_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    payment: Mapped[Payment] = relationship()
