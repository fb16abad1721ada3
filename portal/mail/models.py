"""The outbox: every email the portal sends, from staging to delivery or permanent failure."""
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.states import StateMachine
from portal.timeutil import utc_now


class OutboxStatus(StrEnum):
    STAGED = "staged"
    RETRY = "retry"  # a delivery failed for now: tried again after a back-off
    SENT = "sent"
    FAILED = "failed"  # given up; staff may put it back in the queue


OUTBOX_STATES = StateMachine("outbox message", OutboxStatus, {
    OutboxStatus.STAGED: {OutboxStatus.SENT, OutboxStatus.RETRY, OutboxStatus.FAILED},
    OutboxStatus.RETRY: {OutboxStatus.SENT, OutboxStatus.RETRY, OutboxStatus.FAILED},
    OutboxStatus.FAILED: {OutboxStatus.RETRY},
    OutboxStatus.SENT: set(),
})
STATUSES = tuple(OutboxStatus)


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"
    __table_args__ = (
        OUTBOX_STATES.check_constraint(),
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Fixed when the message is staged, so a resend after a crash carries the same id.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    #: Optional caller key: a message is staged at most once per key.
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    to: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contract.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.STAGED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    sent_at: Mapped[datetime | None]
    #: The whole rendered MIME message, as sent (a deferred attachment is made at the
    #: first delivery attempt and stored here with its outcome).
    mime: Mapped[bytes] = mapped_column(LargeBinary)

    def transition(self, new_status):
        OUTBOX_STATES.move(self, new_status, label=self.message_id)
