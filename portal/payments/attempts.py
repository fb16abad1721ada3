"""Opening the card payment of an order (``start_card_payment``), safe against double
clicks, reloads and two tabs. A provider is never called inside a transaction that
holds a lock: a short transaction claims a payment attempt (committed, so a second
request finds it), the provider is called with no transaction open, and a second short
transaction records its answer."""
import logging
import time
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from portal.audit.models import record
from portal.extensions import db, write_intent
from portal.orders.models import AttemptState, OrderStatus, PaymentAttempt
from portal.orders.services import lock_order
from portal.payments.cards import (
    UNSETTLED,
    apply_provider_state,
    customer_actor,
    provider,
    provider_deadline,
    settle,
    stale_before,
)
from portal.payments.claims import follow_up
from portal.payments.provider import (
    FAILED,
    SUCCEEDED,
    CardDeclined,
    PaymentRequest,
    ProviderError,
    ProviderRefused,
)
from portal.timeutil import utc_now

log = logging.getLogger(__name__)

#: A pending order's attempt in these states is read again, never replaced: open, or paid
#: with an amount the order does not take (the desk reviews it).
REREAD = (AttemptState.OPEN, AttemptState.SUCCEEDED)
#: How often a request that found another one starting the same payment looks again.
WAIT_STEP_SECONDS = 0.1


def attempt_key(order, number):
    """The idempotency key of an order's ``number``-th attempt."""
    return f"renewal-order-{order.reference}-attempt-{number}"


def payment_request(order, attempt):
    """What the provider needs to open ``attempt`` of ``order`` (or find it again, by its
    idempotency key), read before the call."""
    return PaymentRequest(
        order_reference=order.reference, contract_number=order.contract.number,
        amount=attempt.amount, currency=attempt.currency,
        idempotency_key=attempt.idempotency_key, keep_card=bool(order.auto_renew))


@dataclass(frozen=True)
class StartClaim:
    """What the claiming transaction decided, as plain values (nothing of it is read from
    the database while the provider is called)."""

    order_id: int
    attempt_id: int
    #: None: call the provider with it; else the attempt another request is starting, or
    #: the open payment to re-read.
    request: PaymentRequest | None = None
    #: The declined payment a new attempt replaces: cancelled first.
    replaces: str | None = None
    open_ref: str | None = None


def start_card_payment(order):
    """Open (or find) the card payment of an order; returns its PaymentState, or None
    when card payments are unavailable (the provider did not answer in time, refused, or
    is not configured): the customer is told that nothing was charged.

    Safe against double clicks, reloads and two tabs: the attempt is claimed in a short
    committed transaction, so a second request finds it and waits for its answer instead
    of starting another; the provider is called with no transaction open; the answer is
    recorded in a second short transaction. An attempt whose answer never came stays
    ``unknown`` and is asked again with the same idempotency key, here on the next visit
    or by reconciliation, so the provider never opens two payments for it. Commits."""
    card = provider()
    if card is None or order.status not in UNSETTLED:
        return None
    current = order.current_attempt
    if (order.status == OrderStatus.PENDING and current is not None
            and current.state in REREAD and current.provider == card.name):
        return _reread(card, current.provider_ref, order.reference)
    order_id, reference = order.id, order.reference
    try:
        claim = _claim_start(order_id, card.name)
    except OperationalError:  # SQLite: another request held the order past the wait
        db.session.rollback()
        log.warning("order %s is busy; card page answered as unavailable", reference)
        return None
    if claim is None:
        return None
    if claim.open_ref is not None:
        return _reread(card, claim.open_ref, reference)
    if claim.request is None:
        return _wait_for(card, claim.attempt_id, reference)
    try:
        if claim.replaces:
            replaced = card.cancel(claim.replaces)
            if replaced.state == SUCCEEDED:  # paid in another tab meanwhile: keep that
                return _record_start(card, claim, replaced_paid=replaced)
        state = card.start(claim.request)
    except (ProviderRefused, CardDeclined) as error:
        log.exception("the provider refused a card payment for order %s", reference)
        return _record_start(card, claim, refused=error)
    except ProviderError as error:
        log.exception("no answer from the provider for order %s", reference)
        return _record_start(card, claim, unknown=error)
    return _record_start(card, claim, state=state)


def _reread(card, provider_ref, reference):
    """Re-reading an open payment (a reload, a second tab) moves nothing: no lock is held
    while the provider answers, or does not."""
    db.session.commit()
    try:
        return card.confirm(provider_ref)
    except (ProviderError, CardDeclined):
        log.exception("could not read the card payment of order %s", reference)
        return None


def _claim_start(order_id, provider_name):
    """The claiming transaction: lock the order, decide, record a ``starting`` attempt
    (or take an unknown one up again), commit. Returns a StartClaim, or None when the
    order takes no card payment any more."""
    order = lock_order(order_id)
    current = order.current_attempt
    claim = None
    if order.status not in UNSETTLED:
        pass
    elif current is not None and current.state == AttemptState.STARTING and (
            current.updated_at > stale_before()):
        claim = StartClaim(order_id, current.id)  # another request is asking: wait for it
    elif (current is not None and current.state in REREAD
          and order.status == OrderStatus.PENDING):
        claim = StartClaim(order_id, current.id, open_ref=current.provider_ref)
    elif current is not None and current.state in (AttemptState.STARTING,
                                                   AttemptState.UNKNOWN):
        if current.state == AttemptState.UNKNOWN:
            current.transition(AttemptState.STARTING)
        current.updated_at = utc_now()  # taken up again, with the same idempotency key
        db.session.flush()
        claim = StartClaim(order_id, current.id, request=payment_request(order, current),
                           replaces=_replaced(order, current))
    else:
        attempt = PaymentAttempt(
            order=order, provider=provider_name, amount=order.amount_payable,
            currency=order.pay_currency, state=AttemptState.STARTING,
            idempotency_key=attempt_key(order, len(order.attempts) + 1))
        db.session.add(attempt)
        db.session.flush()
        claim = StartClaim(order_id, attempt.id, request=payment_request(order, attempt),
                           replaces=_replaced(order, attempt))
    db.session.commit()
    return claim


def _replaced(order, attempt):
    """The provider id of the payment a new attempt replaces (the latest earlier one that
    could still be charged, e.g. a declined one): it is cancelled first."""
    for earlier in reversed(order.attempts):
        if earlier.id != attempt.id and earlier.provider_ref:
            live = earlier.state in (AttemptState.OPEN, AttemptState.FAILED)
            return earlier.provider_ref if live else None
    return None


def _wait_for(card, attempt_id, reference):
    """Another request is opening this payment: wait for its answer (within one provider
    deadline), reading without a lock, then show the same payment."""
    deadline = time.monotonic() + provider_deadline().total_seconds()
    while True:
        with write_intent(False):
            attempt = db.session.get(PaymentAttempt, attempt_id, populate_existing=True)
            state, provider_ref = attempt.state, attempt.provider_ref
            db.session.rollback()
        if state != AttemptState.STARTING:
            break
        if time.monotonic() > deadline:
            return None
        time.sleep(WAIT_STEP_SECONDS)
    if state == AttemptState.OPEN or state == AttemptState.SUCCEEDED:
        return _reread(card, provider_ref, reference)
    return None  # it failed or its answer never came: the customer may try again shortly


def _record_start(card, claim, *, state=None, replaced_paid=None, refused=None,
                  unknown=None):
    """The recording transaction: the provider's answer to a claimed attempt."""
    order = lock_order(claim.order_id)
    attempt = db.session.get(PaymentAttempt, claim.attempt_id, populate_existing=True)
    if attempt.state != AttemptState.STARTING:  # settled meanwhile (a webhook, reconcile)
        db.session.commit()
        return state
    if unknown is not None:
        attempt.transition(AttemptState.UNKNOWN, error=unknown)
    elif refused is not None:
        attempt.transition(AttemptState.FAILED, error=refused)
    elif replaced_paid is not None:
        attempt.transition(AttemptState.CANCELLED, error="the payment it replaced was paid")
        settle(order, replaced_paid, actor=customer_actor(order), provider_name=card.name)
        state = replaced_paid
    else:
        attempt.provider_ref = state.provider_ref
        record("system", "payment.start", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, replaces=claim.replaces or "",
               attempt=attempt.idempotency_key)
        apply_provider_state(attempt, state)
        replaced = PaymentAttempt.find(card.name, claim.replaces)
        if replaced is not None and replaced.state in (AttemptState.OPEN, AttemptState.FAILED):
            replaced.transition(AttemptState.CANCELLED, error="replaced by a new attempt")
        if order.status == OrderStatus.FAILED and state.state != FAILED:
            order.transition(OrderStatus.PENDING)  # a new attempt after a decline
        if state.state == SUCCEEDED:
            settle(order, state, actor=customer_actor(order), provider_name=card.name)
    db.session.commit()
    follow_up()
    return None if unknown is not None or refused is not None else state
