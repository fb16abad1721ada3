"""Provider events already handled, so a replayed webhook changes nothing; and the
provider calls a settlement claimed, made once it has committed."""
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.states import StateMachine
from portal.timeutil import utc_now


class ProcessedEvent(db.Model):
    __tablename__ = "processed_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), default="stripe")
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32), default="")
    received_at: Mapped[datetime] = mapped_column(default=utc_now)


class ClaimKind(StrEnum):
    KEEP_CARD = "keep_card"  # the card of a payment whose customer opted in to renew automatically
    RETURN_MONEY = "return_money"  # a card payment for an order that no longer takes it


class ClaimStatus(StrEnum):
    REQUESTED = "requested"  # committed with the payment: the provider's answer is not recorded
    DONE = "done"  # the provider did it (kept the card, refunded the payment)
    REFUSED = "refused"  # the provider refused: nothing was done there


CLAIM_STATES = StateMachine("provider claim", ClaimStatus, {
    ClaimStatus.REQUESTED: {ClaimStatus.DONE, ClaimStatus.REFUSED},
    ClaimStatus.DONE: set(),
    ClaimStatus.REFUSED: set(),
})


class ProviderClaim(db.Model):
    """A provider call that settling a payment decided on ("a card to keep", "money to
    return"), recorded in the settling transaction and made after it committed, with no
    transaction open. Its idempotency key is unique, so one payment claims each call once
    and asking again (a lost answer, reconciliation) never does it twice."""

    __tablename__ = "provider_claim"
    __table_args__ = (CLAIM_STATES.check_constraint(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int] = mapped_column(ForeignKey("renewal_order.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    #: The provider's id of the payment the call is about.
    payment_ref: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    #: The card to keep: the provider's customer and card ids (never card data).
    customer_ref: Mapped[str | None] = mapped_column(String(128))
    card_ref: Mapped[str | None] = mapped_column(String(128))
    #: The money to return, as the provider reported the payment.
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    #: Who settled the payment (recorded as the actor of what follows).
    actor: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16), index=True, default=ClaimStatus.REQUESTED)
    #: The provider's refund id, or its refusal or last error, for the desk.
    result: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]

    def transition(self, new_status):
        CLAIM_STATES.move(self, new_status, label=self.idempotency_key)
