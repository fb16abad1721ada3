"""Provider webhooks: refused without a signing secret, verified on the raw body by the
provider, deduplicated on the event id and dispatched by event type. The payment an
event speaks of is read again from the provider (the body is not trusted) with no
transaction open, then settled like any other answer."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.errors import PortalError
from portal.extensions import db
from portal.orders.models import UNSETTLED_ATTEMPTS, Order, PaymentAttempt
from portal.orders.services import lock_order
from portal.payments import registry
from portal.payments.cards import provider, settle
from portal.payments.claims import commit_and_follow_up
from portal.payments.models import ProcessedEvent
from portal.payments.provider import PaymentNotFound


class WebhookRefused(PortalError):
    """Webhooks cannot be verified: no provider or no signing secret is configured."""


def _read_payment(card, event):
    """Re-read the event's payment from the provider (the body is not trusted); returns
    its PaymentState, or an outcome code when there is nothing to settle."""
    if not event.provider_ref:
        return "ignored"
    try:
        return card.confirm(event.provider_ref)
    except PaymentNotFound:  # not a payment of this account: retrying will not change that
        return "unknown_payment"


def _settle_payment(card, state):
    attempt = PaymentAttempt.find(card.name, state.provider_ref)
    order_id = attempt.order_id if attempt is not None else None
    if order_id is None and state.order_reference:  # its attempt's answer never came
        order_id = db.session.scalar(select(Order.id)
                                     .where(Order.reference == state.order_reference))
    if order_id is None:
        return "unknown_payment"
    order = lock_order(order_id)
    if attempt is None:
        _adopt(order, card.name, state)
    return settle(order, state, actor=f"{card.name}-webhook", provider_name=card.name)


def _adopt(order, provider_name, state):
    """A payment of the order whose attempt never heard the provider's answer (the call
    timed out): the latest such attempt is the one that opened it."""
    waiting = [a for a in order.attempts if a.provider == provider_name
               and a.provider_ref is None and a.state in UNSETTLED_ATTEMPTS]
    if waiting:
        waiting[-1].provider_ref = state.provider_ref
        db.session.flush()


#: Event type -> what to read from the provider about it (called with no transaction
#: open). Other events are acknowledged and ignored.
WEBHOOK_HANDLERS = {
    "payment_intent.succeeded": _read_payment,
    "payment_intent.payment_failed": _read_payment,
    "payment_intent.canceled": _read_payment,
    "charge.succeeded": _read_payment,
    "charge.failed": _read_payment,
}


def handle_webhook(payload, signature, provider_name=None):
    """Verify, deduplicate and dispatch one webhook of the provider ``provider_name``
    (the card provider when None), committed; returns an outcome code. Raises WebhookRefused without
    a signing secret, SignatureInvalid (from the provider only) for a forged or broken
    event."""
    card = registry.provider(provider_name) if provider_name else provider()
    if card is None or not card.webhook_secret:
        raise WebhookRefused("webhooks need the provider's secret key and signing secret")
    event = card.handle_webhook(payload, signature)
    handler = WEBHOOK_HANDLERS.get(event.type)
    db.session.commit()  # the provider is read with no transaction open
    news = handler(card, event) if handler else "ignored"
    processed = ProcessedEvent(provider=card.name, event_id=event.event_id, type=event.type[:64])
    try:
        with db.session.begin_nested():
            db.session.add(processed)
    except IntegrityError:
        return "duplicate"
    processed.outcome = news if isinstance(news, str) else _settle_payment(card, news)
    return commit_and_follow_up(processed.outcome)
