"""Orders, payment attempts, payments and refunds, with their statuses as small explicit
state machines (portal/states.py)."""
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint, false, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.states import IllegalTransition, StateMachine  # noqa: F401  (re-exported)
from portal.timeutil import utc_now


class OrderStatus(StrEnum):
    PENDING = "pending"  # card: waiting for the provider
    AWAITING_PAYMENT = "awaiting_payment"  # offline: waiting for money
    FAILED = "failed"  # the card was declined; the customer may try again
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


ORDER_STATES = StateMachine("order", OrderStatus, {
    OrderStatus.PENDING: {OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.EXPIRED,
                          OrderStatus.CANCELLED},
    OrderStatus.AWAITING_PAYMENT: {OrderStatus.PAID, OrderStatus.EXPIRED,
                                   OrderStatus.CANCELLED},
    OrderStatus.FAILED: {OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.CANCELLED},
    OrderStatus.PAID: {OrderStatus.REFUNDED},
    OrderStatus.EXPIRED: set(),
    OrderStatus.CANCELLED: set(),
    OrderStatus.REFUNDED: set(),
})
#: status -> statuses it may move to.
ORDER_TRANSITIONS = ORDER_STATES.moves
#: Orders that hold the next term: at most one per contract.
OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT, OrderStatus.FAILED)
#: The ``provider`` of money recorded by staff (bank transfer, cheque): no provider call.
OFFLINE = "offline"


class Order(db.Model):
    __tablename__ = "renewal_order"  # "order" is an SQL keyword
    __table_args__ = (ORDER_STATES.check_constraint(),)

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
    #: Part of a combined order (several contracts, one payment): the order whose payment
    #: and reference pay for this one too. None: this order is paid by its own payment.
    combined_into_id: Mapped[int | None] = mapped_column(ForeignKey("renewal_order.id"),
                                                         index=True)

    contract: Mapped["Contract"] = relationship()  # noqa: F821
    combined_into: Mapped["Order | None"] = relationship(
        remote_side=[id], back_populates="combined_orders")
    #: The other contracts' orders this order's payment pays for, in the order placed.
    combined_orders: Mapped[list["Order"]] = relationship(
        back_populates="combined_into", order_by="Order.id")
    quote: Mapped["Quote"] = relationship()  # noqa: F821
    payments: Mapped[list["Payment"]] = relationship(back_populates="order")
    #: Every attempt to take this order's money through a provider, oldest first.
    attempts: Mapped[list["PaymentAttempt"]] = relationship(
        back_populates="order", order_by="PaymentAttempt.id")

    @property
    def is_open(self):
        return self.status in OPEN_STATUSES

    @property
    def payer(self):
        """The order whose payment, reference and attempts pay for this one: itself, or
        the first order of the combined order it belongs to."""
        return self.combined_into if self.combined_into_id is not None else self

    @property
    def is_combined(self):
        return self.combined_into_id is not None or bool(self.combined_orders)

    @property
    def paid_together(self):
        """Every order one payment of this order's payer renews: one per contract."""
        payer = self.payer
        return [payer, *payer.combined_orders]

    @property
    def amount_payable(self):
        """What the payer's one payment must bring: the sum of each contract's amount due
        (the amount due of this order alone when it is not combined)."""
        return sum((order.amount_due for order in self.paid_together), Decimal(0))

    @property
    def current_attempt(self):
        """The latest payment attempt, or None: the one a card page or a webhook acts on."""
        return self.attempts[-1] if self.attempts else None

    @property
    def provider_payment_id(self):
        """The provider's id of the current attempt's payment, or None."""
        attempt = self.current_attempt
        return attempt.provider_ref if attempt is not None else None

    def transition(self, new_status):
        """Move the order; a combined order's other orders move with it (paid, failed,
        lapsed or cancelled together), except a refund, which is one contract's."""
        ORDER_STATES.move(self, new_status, label=self.reference)
        if new_status != OrderStatus.REFUNDED:
            for other in self.combined_orders:
                if other.status != new_status:
                    ORDER_STATES.move(other, new_status, label=other.reference)


class AttemptState(StrEnum):
    STARTING = "starting"  # claimed: the provider is being asked to open the payment
    OPEN = "open"  # the provider holds the payment: waiting for a card, 3-D Secure, funds
    UNKNOWN = "unknown"  # the provider's answer never came: reconciliation asks again
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # declined, or refused by the provider: nothing was charged
    CANCELLED = "cancelled"  # replaced or no longer wanted: it can no longer be charged


#: The provider's word moves an attempt between open, failed and succeeded (a declined
#: payment may be confirmed again with another card); only an unknown one is claimed again.
ATTEMPT_STATES = StateMachine("payment attempt", AttemptState, {
    AttemptState.STARTING: {AttemptState.OPEN, AttemptState.UNKNOWN, AttemptState.SUCCEEDED,
                            AttemptState.FAILED, AttemptState.CANCELLED},
    AttemptState.UNKNOWN: {AttemptState.STARTING, AttemptState.OPEN, AttemptState.SUCCEEDED,
                           AttemptState.FAILED, AttemptState.CANCELLED},
    AttemptState.OPEN: {AttemptState.SUCCEEDED, AttemptState.FAILED, AttemptState.CANCELLED},
    AttemptState.FAILED: {AttemptState.OPEN, AttemptState.SUCCEEDED, AttemptState.CANCELLED},
    # Cancelling lost a race with the customer's payment: the money is on record all the same.
    AttemptState.CANCELLED: {AttemptState.SUCCEEDED},
    AttemptState.SUCCEEDED: set(),
}, attribute="state")
#: Attempts whose outcome the provider knows and the portal may not.
UNSETTLED_ATTEMPTS = (AttemptState.STARTING, AttemptState.OPEN, AttemptState.UNKNOWN)


class PaymentAttempt(db.Model):
    """One try at taking an order's money through a provider: a customer's card page, a
    retry after a decline, an automatic-renewal charge. Its idempotency key is sent with
    every call that could create money movement at the provider, so a repeat of the
    same attempt never charges twice."""

    __tablename__ = "payment_attempt"
    __table_args__ = (UniqueConstraint("provider", "provider_ref"),
                      ATTEMPT_STATES.check_constraint())

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("renewal_order.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    #: The provider's id of the payment (a PaymentIntent id); None until it answered.
    provider_ref: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    #: An automatic-renewal charge (the customer is not there): only the automatic
    #: renewal cycle repeats it, with the same key.
    off_session: Mapped[bool] = mapped_column(default=False, server_default=false())
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16), default=AttemptState.STARTING)
    #: The decline code or the provider's error, for the desk.
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    order: Mapped[Order] = relationship(back_populates="attempts")

    def transition(self, new_state, error=None):
        ATTEMPT_STATES.move(self, new_state, label=self.idempotency_key)
        if error is not None:
            self.error = str(error)[:500]

    @classmethod
    def find(cls, provider, provider_ref):
        """The attempt a provider's payment id belongs to, or None."""
        if not provider_ref:
            return None
        return db.session.scalar(select(cls).where(cls.provider == provider,
                                                   cls.provider_ref == provider_ref))


class Payment(db.Model):
    """Money received (or returned) for an order, one row per provider transaction."""

    __tablename__ = "payment"
    __table_args__ = (UniqueConstraint("provider", "provider_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("renewal_order.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))  # a provider's name, or OFFLINE
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


class RefundStatus(StrEnum):
    REQUESTED = "requested"  # claimed for the provider: its answer is not recorded yet
    REFUNDED = "refunded"  # paid back through the provider
    STAFF_TASK = "staff_task"  # waiting for staff to pay it back by hand
    DONE = "done"  # staff paid it back


REFUND_STATES = StateMachine("refund", RefundStatus, {
    RefundStatus.REQUESTED: {RefundStatus.REFUNDED},
    RefundStatus.REFUNDED: set(),
    RefundStatus.STAFF_TASK: {RefundStatus.DONE},
    RefundStatus.DONE: set(),
})
REFUND_STATUSES = tuple(RefundStatus)


class Refund(db.Model):
    """Money given back for one order's renewal ("Refunds" in docs/rules.md). At most
    one per order: the unique order id makes a repeated request refund once."""

    __tablename__ = "refund"
    __table_args__ = (REFUND_STATES.check_constraint(),)

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

    def transition(self, new_status):
        REFUND_STATES.move(self, new_status)

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
