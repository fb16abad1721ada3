"""Reconciliation: what the provider knows and the portal may have missed, asked again
with the same idempotency keys and settled (card payments whose outcome was not
recorded, card refunds and claimed provider calls whose answer was lost). Safe to run
twice; ``portal payments reconcile`` and the scheduled tasks run it."""
from sqlalchemy import or_, select

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
from portal.payments.cards import UNSETTLED, card_provider, settle, stale_before
from portal.payments.claims import commit_and_follow_up, finish_claim
from portal.payments.models import ClaimStatus, ProviderClaim
from portal.payments.provider import SUCCEEDED, CardDeclined, ProviderError
from portal.timeutil import utc_today


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
