"""API keys, webhook endpoints, events and their deliveries.

A key is shown once; only its SHA-256 hash is stored. A webhook endpoint's signing secret
is not stored at all: it is derived from the server's ``SECRET_KEY`` and a random salt
kept on the row (portal/partners/webhooks.py), so a copy of the database reveals none.
"""
from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utc_now

#: Every event type a partner can receive (docs/interfaces.md, "Partner API").
EVENT_TYPES = ("contract.expiring", "contract.renewed", "contract.expired", "order.placed",
               "order.paid", "order.lapsed", "auto_renew.changed")
DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")


class PartnerApiKey(db.Model):
    __tablename__ = "partner_api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The key's first characters, enough to tell keys apart, never enough to use one.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None]

    partner: Mapped["Partner"] = relationship()  # noqa: F821


class PartnerWebhook(db.Model):
    """An endpoint a partner registered; removing it keeps the row and its history."""

    __tablename__ = "partner_webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    #: Random salt from which the signing secret is derived; not the secret.
    secret_salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    removed_at: Mapped[datetime | None]

    partner: Mapped["Partner"] = relationship()  # noqa: F821


class PartnerEvent(db.Model):
    """Something that happened to one of a partner's contracts, recorded in the same
    transaction as the change. The id orders the partner's feed."""

    __tablename__ = "partner_event"
    __table_args__ = (
        CheckConstraint("type in (%s)" % ", ".join(f"'{t}'" for t in EVENT_TYPES),
                        name="type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    data: Mapped[dict] = mapped_column(JSON)
    #: Set for events that must happen once per contract period (expiring, expired).
    once_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class WebhookDelivery(db.Model):
    """One event on its way to one endpoint; its attempts are WebhookAttempt rows."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "webhook_id"),
        CheckConstraint("status in (%s)" % ", ".join(f"'{s}'" for s in DELIVERY_STATUSES),
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("partner_event.id"), index=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("partner_webhook.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: When the next attempt is due; while an attempt runs, the end of its lease.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    delivered_at: Mapped[datetime | None]

    event: Mapped[PartnerEvent] = relationship()
    webhook: Mapped[PartnerWebhook] = relationship()


class WebhookAttempt(db.Model):
    """One POST to an endpoint and what came of it."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_delivery.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utc_now)
    #: The endpoint's HTTP status, or None when no answer came (the error says why).
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(default=0)


class PartnerLinkRequest(db.Model):
    """A partner asked for a contract's renewal link to be emailed; once a day."""

    __tablename__ = "partner_link_request"
    __table_args__ = (UniqueConstraint("contract_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"))
    day: Mapped[date]
    recipients: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
