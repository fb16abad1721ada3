"""Card payments: opening a payment for an order, settling it from what the provider
says (never from what a browser says), webhooks and reconciliation. No request here."""
import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from portal.audit.models import record
from portal.errors import PortalError
from portal.extensions import db
from portal.orders.models import IllegalTransition, Order
from portal.mail.receipts import send_payment_received
from portal.orders.services import PaymentMismatch, lock_order, record_payment
from portal.payments.models import ProcessedEvent
from portal.payments.provider import (
    FAILED,
    SUCCEEDED,
    CardDeclined,
    PaymentNotFound,
    ProviderError,
)
from portal.payments.stripe_provider import StripeProvider
from portal.signals import announce, opt_in_paid
from portal.timeutil import utc_today

log = logging.getLogger(__name__)

#: Orders whose card payment may still change state.
UNSETTLED = ("pending", "failed")


class WebhookRefused(PortalError):
    """Webhooks cannot be verified: no provider or no signing secret is configured."""


def provider():
    """The configured card provider, or None when card payments are not set up."""
    config = current_app.config
    if not config.get("STRIPE_SECRET_KEY"):
        return None
    cached = current_app.extensions.get("payments_provider")
    if cached is None:
        cached = StripeProvider(
            config["STRIPE_SECRET_KEY"], config.get("STRIPE_WEBHOOK_SECRET"),
            config.get("STRIPE_API_BASE"),
            timeouts=(config["PROVIDER_CONNECT_TIMEOUT_SECONDS"],
                      config["PROVIDER_READ_TIMEOUT_SECONDS"]),
            retries=config["PROVIDER_MAX_RETRIES"])
        current_app.extensions["payments_provider"] = cached
    return cached


def card_provider():
    """The provider, or ProviderError when card payments are not configured."""
    card = provider()
    if card is None:
        raise ProviderError("card payments are not configured (STRIPE_SECRET_KEY)")
    return card


def start_card_payment(order):
    """Open (or find) the one PaymentIntent of a card order; returns its PaymentState, or
    None when card payments are unavailable. Safe against double clicks, reloads and two
    tabs: the order row is locked while an intent is created, with an order-derived
    idempotency key; an intent that exists is re-read without a lock. The caller commits."""
    card = provider()
    if card is None or order.status not in UNSETTLED:
        return None
    if order.status == "pending" and order.provider_payment_id:
        # Re-reading the order's payment (a reload, a second tab) moves nothing: no lock
        # is held while the provider answers, or does not.
        try:
            return card.confirm(order.provider_payment_id)
        except (ProviderError, CardDeclined):
            log.exception("could not read the card payment of order %s", order.reference)
            return None
    try:
        order = lock_order(order.id)  # one payment per order, even against an emulator
    except OperationalError:  # SQLite: another request held the order past the wait
        db.session.rollback()
        log.warning("order %s is busy; card page answered as unavailable", order.reference)
        return None
    if order.status not in UNSETTLED:
        return None
    declined = order.provider_payment_id if order.status == "failed" else None
    try:
        state = card.start(order, replaces=declined)
    except (ProviderError, CardDeclined):
        log.exception("could not open a card payment for order %s", order.reference)
        return None
    if order.provider_payment_id != state.provider_ref:
        order.provider_payment_id = state.provider_ref
        record("system", "payment.start", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, replaces=declined or "")
    if order.status == "failed" and state.state != FAILED:
        order.transition("pending")  # a new attempt after a decline
    db.session.flush()
    return state


def pay_with_card(order, card_ref, card_token=None):
    """Attach a card (a provider id, never card data) and confirm: MAY charge the card.
    Used where the browser cannot confirm by itself (the local emulator). With
    ``card_token`` (the Stripe.js token the card came from) and automatic renewal chosen,
    the card is first saved with the payment's customer, as Stripe's
    ``setup_future_usage`` does for a card confirmed in the browser."""
    order = lock_order(order.id)
    if order.status not in UNSETTLED or not order.provider_payment_id:
        return None
    card = card_provider()
    if order.auto_renew and card_token:
        try:
            card.save_card_token(order.provider_payment_id, card_token)
        except (CardDeclined, ProviderError):  # keep_card records that it is not saved
            log.warning("the card of order %s could not be saved", order.reference)
    try:
        state = card.confirm(order.provider_payment_id, card_ref)
    except CardDeclined:
        state = card.confirm(order.provider_payment_id)
    settle(order, state, actor=_customer(order))
    return state


def refresh_payment(order, actor=None):
    """Re-read an order's payment from the provider and settle it; returns the state."""
    if not order.provider_payment_id:
        return None
    state = card_provider().confirm(order.provider_payment_id)
    settle(lock_order(order.id), state, actor=actor or _customer(order))
    return state


def settle(order, state, *, actor):
    """Act on the provider's word: renew on success (once), mark a decline as failed.
    Returns an outcome code."""
    if state.order_reference not in (None, order.reference):
        record(actor, "payment.mismatch", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, other_order=state.order_reference)
        return "mismatch"
    current = state.provider_ref == order.provider_payment_id
    if state.state == SUCCEEDED:
        try:
            _order, renewed = record_payment(
                order.id, provider="stripe", provider_ref=state.provider_ref,
                amount=state.amount, currency=state.currency, received_on=utc_today(),
                actor=actor, send_receipt=False,
            )
        except PaymentMismatch:
            return "mismatch"
        except IllegalTransition:  # paid after the order was replaced or lapsed
            return _refund_orphan(order, state, actor)
        if renewed:
            if order.auto_renew:  # the customer opted in: automatic renewal keeps the card
                announce(opt_in_paid, order=order, state=state, provider=card_provider())
            send_payment_received(order)  # says whether automatic renewal is on
        return "renewed" if renewed else "already_paid"
    if not current:  # a replaced attempt's late news changes nothing
        return "stale"
    if state.state == FAILED and order.status == "pending":
        order.transition("failed")
        record(actor, "payment.declined", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, code=state.error_code or "")
        db.session.flush()
        return "declined"
    return state.state


def _refund_orphan(order, state, actor):
    """Money for an order that no longer takes it (the customer changed the order in
    another tab, then paid in the first): give it back, once. MOVES money."""
    try:
        refund_id = card_provider().refund(state.provider_ref,
                                           idempotency_key=f"refund-orphan-{state.provider_ref}")
    except (ProviderError, CardDeclined):
        record(actor, "payment.orphaned", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, status=order.status)
        return "orphaned"
    record(actor, "payment.refund_orphan", order.contract.number, order=order.reference,
           provider_ref=state.provider_ref, refund=refund_id,
           amount=f"{state.amount} {state.currency}")
    return "refunded"


def _customer(order):
    return f"customer:{order.contact_id}" if order.contact_id else "customer"


# --- webhooks ---


def _payment_event(event):
    if not event.provider_ref:
        return "ignored"
    try:
        state = card_provider().confirm(event.provider_ref)  # re-read: the body is not trusted
    except PaymentNotFound:  # not a payment of this account: retrying will not change that
        return "unknown_payment"
    order = db.session.scalar(select(Order).where(Order.provider_payment_id == state.provider_ref))
    if order is None and state.order_reference:
        order = db.session.scalar(select(Order).where(Order.reference == state.order_reference))
    if order is None:
        return "unknown_payment"
    return settle(lock_order(order.id), state, actor="stripe-webhook")


#: Event type -> handler. Other events are acknowledged and ignored.
WEBHOOK_HANDLERS = {
    "payment_intent.succeeded": _payment_event,
    "payment_intent.payment_failed": _payment_event,
    "payment_intent.canceled": _payment_event,
    "charge.succeeded": _payment_event,
    "charge.failed": _payment_event,
}


def handle_webhook(payload, signature):
    """Verify, deduplicate and dispatch one webhook; returns an outcome code. Raises
    WebhookRefused without a signing secret, SignatureInvalid (from the provider only) for
    a forged or broken event."""
    card = provider()
    if card is None or not current_app.config.get("STRIPE_WEBHOOK_SECRET"):
        raise WebhookRefused("webhooks need STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
    event = card.handle_webhook(payload, signature)
    processed = ProcessedEvent(provider=card.name, event_id=event.event_id, type=event.type[:64])
    try:
        with db.session.begin_nested():
            db.session.add(processed)
    except IntegrityError:
        return "duplicate"
    handler = WEBHOOK_HANDLERS.get(event.type)
    processed.outcome = handler(event) if handler else "ignored"
    db.session.flush()
    return processed.outcome


# --- reconciliation ---


def unsettled_order_ids():
    """Card orders whose outcome the provider knows and the portal may have missed."""
    return db.session.scalars(
        select(Order.id).where(Order.status.in_(UNSETTLED), Order.provider_payment_id.is_not(None))
        .order_by(Order.id)
    ).all()


def reconcile_order(order_id):
    """Re-read one order's payment from the provider and settle it, committed; returns
    ``(reference, outcome)``. Settling is idempotent, so running it twice is harmless."""
    order = db.session.get(Order, order_id)
    if order is None or order.status not in UNSETTLED or not order.provider_payment_id:
        db.session.rollback()
        return (order.reference if order else str(order_id), "settled")
    reference = order.reference
    try:
        state = card_provider().confirm(order.provider_payment_id)
    except ProviderError as error:
        db.session.rollback()
        return (reference, f"error: {error}")
    outcome = settle(lock_order(order.id), state, actor="reconcile")
    db.session.commit()
    return (reference, outcome)


def reconcile():
    """Settle card orders whose outcome was missed; returns ``[(reference, outcome)]``."""
    order_ids = unsettled_order_ids()
    db.session.commit()
    return [reconcile_order(order_id) for order_id in order_ids]
