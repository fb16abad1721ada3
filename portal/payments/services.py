"""Card payments: opening a payment attempt for an order, settling it from what the
provider says (never from what a browser says), webhooks and reconciliation. No request
here.

A provider is never called inside a transaction that holds a lock: a short transaction
claims the work (a payment attempt, committed, so a second click finds it), the provider
is called with no transaction open, and a second short transaction records its answer.
What settling a payment decides to ask of the provider afterwards (keep the card of a
customer who opted in to automatic renewal, give back money for an order that no longer
takes it) is claimed the same way: a ProviderClaim committed with the payment, made by
``follow_up`` once that transaction committed, or by reconciliation."""
import logging

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from portal.errors import PortalError
from portal.extensions import db
from portal.orders import refunds
from portal.orders.models import (
    UNSETTLED_ATTEMPTS,
    AttemptState,
    Order,
    PaymentAttempt,
    Refund,
)
from portal.orders.services import lock_order
from portal.payments import registry
from portal.payments.attempts import payment_request
from portal.payments.cards import UNSETTLED, card_provider, provider, settle, stale_before
from portal.payments.claims import commit_and_follow_up, finish_claim
from portal.payments.models import ClaimStatus, ProcessedEvent, ProviderClaim
from portal.payments.provider import SUCCEEDED, CardDeclined, PaymentNotFound, ProviderError
from portal.timeutil import utc_today

log = logging.getLogger(__name__)


class WebhookRefused(PortalError):
    """Webhooks cannot be verified: no provider or no signing secret is configured."""


# --- webhooks ---


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


# --- reconciliation ---


def _unsettled_attempts():
    """SQL: attempts whose outcome the provider knows and the portal may have missed.
    An automatic-renewal charge is taken up again by its own cycle (with its key)."""
    unanswered = or_(PaymentAttempt.state == AttemptState.UNKNOWN,
                     (PaymentAttempt.state == AttemptState.STARTING)
                     & (PaymentAttempt.updated_at < stale_before()))
    return or_(PaymentAttempt.state == AttemptState.OPEN,
               unanswered & PaymentAttempt.off_session.is_(False))


def unsettled_order_ids():
    """Card orders whose outcome the provider knows and the portal may have missed."""
    return db.session.scalars(
        select(PaymentAttempt.order_id).where(_unsettled_attempts())
        .group_by(PaymentAttempt.order_id).order_by(PaymentAttempt.order_id)
    ).all()


def reconcile_order(order_id):
    """Ask the provider about each unsettled attempt of one order and settle it,
    committed; returns ``(reference, outcome)``. Settling is idempotent, so running it
    twice is harmless. An attempt whose answer never came is asked again with its own
    idempotency key (the provider returns the payment it opened, or opens it now); a
    payment the order no longer wants is cancelled."""
    order = db.session.get(Order, order_id)
    reference = order.reference if order is not None else str(order_id)
    attempts = [] if order is None else [
        (a.id, a.provider, a.provider_ref, a.state, payment_request(order, a))
        for a in db.session.scalars(select(PaymentAttempt).where(
            PaymentAttempt.order_id == order_id, _unsettled_attempts())
            .order_by(PaymentAttempt.id))]
    db.session.commit()
    outcome = "settled"
    for attempt_id, provider_name, provider_ref, state_now, request in attempts:
        try:
            outcome = _reconcile_attempt(order_id, attempt_id, provider_name, provider_ref,
                                         state_now, request)
        except ProviderError as error:
            db.session.rollback()
            return (reference, f"error: {error}")
        outcome = commit_and_follow_up(outcome)
    return (reference, outcome)


def _reconcile_attempt(order_id, attempt_id, provider_name, provider_ref, state_now,
                       request):
    card = registry.configured_provider(provider_name)
    unanswered = state_now != AttemptState.OPEN or not provider_ref
    state = card.start(request) if unanswered else card.confirm(provider_ref)
    order = lock_order(order_id)
    attempt = db.session.get(PaymentAttempt, attempt_id, populate_existing=True)
    if attempt.state not in UNSETTLED_ATTEMPTS:  # settled meanwhile
        return attempt.state
    attempt.provider_ref = state.provider_ref
    current = order.current_attempt
    wanted = order.status in UNSETTLED and current is not None and current.id == attempt_id
    if state.state == SUCCEEDED or wanted:
        return settle(order, state, actor="reconcile", provider_name=provider_name)
    db.session.commit()  # the provider is called with no transaction open
    cancelled = card.cancel(state.provider_ref)
    order = lock_order(order_id)
    attempt = db.session.get(PaymentAttempt, attempt_id, populate_existing=True)
    if cancelled.state == SUCCEEDED:  # paid at the last moment: the money is recorded
        return settle(order, cancelled, actor="reconcile", provider_name=provider_name)
    if attempt.state in UNSETTLED_ATTEMPTS:
        attempt.transition(AttemptState.CANCELLED, error="no longer wanted by its order")
    return "cancelled"



def reconcile():
    """Settle card orders whose outcome was missed, and finish card refunds and claimed
    provider calls whose answer was never recorded; returns ``[(reference, outcome)]``."""
    order_ids = unsettled_order_ids()
    refund_ids = unfinished_refund_ids()
    claim_keys = unfinished_claim_keys()
    db.session.commit()
    return ([reconcile_order(order_id) for order_id in order_ids]
            + [reconcile_refund(refund_id) for refund_id in refund_ids]
            + [finish_claim(key) for key in claim_keys])


def unfinished_claim_keys():
    """The idempotency keys of provider calls claimed longer ago than twice the provider
    deadline whose answer was never recorded (a call still under way is left alone)."""
    return db.session.scalars(select(ProviderClaim.idempotency_key).where(
        ProviderClaim.status == ClaimStatus.REQUESTED,
        ProviderClaim.created_at < stale_before()).order_by(ProviderClaim.id)).all()


def unfinished_refund_ids():
    """Card refunds claimed longer ago than twice the provider deadline whose provider
    answer was never recorded (a call still under way is left alone)."""
    return refunds.requested_refund_ids(stale_before())


def reconcile_refund(refund_id):
    """Ask the provider again (same idempotency key, same amount) for a card refund left
    ``requested`` and record its answer, committed; returns ``(reference, outcome)``."""
    refund = db.session.get(Refund, refund_id)
    reference = refund.order.reference
    try:
        _refund, refunded_now = refunds.finish_card_refund(refund_id, card_provider(),
                                                           "reconcile", utc_today())
    except (ProviderError, CardDeclined) as error:
        db.session.rollback()
        return (reference, f"error: {error}")
    db.session.commit()
    return (reference, "refunded" if refunded_now else "already_refunded")
