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
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError

from portal.audit.models import record
from portal.errors import PortalError
from portal.extensions import db, write_intent
from portal.mail.receipts import send_payment_received
from portal.orders.models import (
    UNSETTLED_ATTEMPTS,
    AttemptState,
    IllegalTransition,
    Order,
    OrderStatus,
    PaymentAttempt,
    Refund,
)
from portal.orders import refunds
from portal.orders.services import PaymentMismatch, lock_order, record_payment
from portal.payments import registry
from portal.payments.claims import (
    claim_card,
    commit_and_follow_up,
    finish_claim,
    follow_up,
    refund_orphan,
)
from portal.payments.models import ClaimStatus, ProcessedEvent, ProviderClaim
from portal.payments.provider import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    CardDeclined,
    PaymentNotFound,
    PaymentRequest,
    ProviderError,
    ProviderRefused,
)
from portal.timeutil import utc_now, utc_today

log = logging.getLogger(__name__)

#: Orders whose card payment may still change state.
UNSETTLED = (OrderStatus.PENDING, OrderStatus.FAILED)
#: The provider's word about a payment -> the attempt's state.
ATTEMPT_STATE_OF = {SUCCEEDED: AttemptState.SUCCEEDED, FAILED: AttemptState.FAILED,
                    CANCELED: AttemptState.CANCELLED}
#: A pending order's attempt in these states is read again, never replaced: open, or paid
#: with an amount the order does not take (the desk reviews it).
REREAD = (AttemptState.OPEN, AttemptState.SUCCEEDED)
#: How often a request that found another one starting the same payment looks again.
WAIT_STEP_SECONDS = 0.1


class WebhookRefused(PortalError):
    """Webhooks cannot be verified: no provider or no signing secret is configured."""


def provider():
    """The configured card provider, or None when card payments are not set up."""
    return registry.card_provider()


def card_provider():
    """The provider, or ProviderError when card payments are not configured."""
    card = provider()
    if card is None:
        raise ProviderError("card payments are not configured")
    return card


def provider_deadline():
    """The longest one provider call may take: connect and read deadlines, each repeat."""
    config = current_app.config
    per_try = (config["PROVIDER_CONNECT_TIMEOUT_SECONDS"]
               + config["PROVIDER_READ_TIMEOUT_SECONDS"])
    return timedelta(seconds=per_try * (config["PROVIDER_MAX_RETRIES"] + 1))


def stale_before():
    """A starting attempt claimed before this moment lost the process that was calling
    the provider (killed mid-call): its outcome is unknown."""
    return utc_now() - 2 * provider_deadline()


def attempt_key(order, number):
    """The idempotency key of an order's ``number``-th attempt."""
    return f"renewal-order-{order.reference}-attempt-{number}"


def payment_request(order, attempt):
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
        settle(order, replaced_paid, actor=_customer(order), provider_name=card.name)
        state = replaced_paid
    else:
        attempt.provider_ref = state.provider_ref
        record("system", "payment.start", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, replaces=claim.replaces or "",
               attempt=attempt.idempotency_key)
        _apply(attempt, state)
        replaced = PaymentAttempt.find(card.name, claim.replaces)
        if replaced is not None and replaced.state in (AttemptState.OPEN, AttemptState.FAILED):
            replaced.transition(AttemptState.CANCELLED, error="replaced by a new attempt")
        if order.status == OrderStatus.FAILED and state.state != FAILED:
            order.transition(OrderStatus.PENDING)  # a new attempt after a decline
        if state.state == SUCCEEDED:
            settle(order, state, actor=_customer(order), provider_name=card.name)
    db.session.commit()
    follow_up()
    return None if unknown is not None or refused is not None else state


def _apply(attempt, state, error=None):
    """Move an attempt to what the provider says of its payment (no move: no change)."""
    new = ATTEMPT_STATE_OF.get(state.state, AttemptState.OPEN)
    if attempt.state != new:
        attempt.transition(new, error=error or state.error_code)


def pay_with_card(order, card_ref, card_token=None):
    """Attach a card (a provider id, never card data) and confirm: MAY charge the card.
    Used where the browser cannot confirm by itself (the local emulator). With
    ``card_token`` (the Stripe.js token the card came from) and automatic renewal chosen,
    the card is first saved with the payment's customer, as Stripe's
    ``setup_future_usage`` does for a card confirmed in the browser.

    No lock is held while the provider answers: a short transaction reads the order's
    open payment and commits, the provider confirms it (one payment is charged at most
    once, so a second click at the same moment cannot charge twice), and a second short
    transaction settles the answer; whoever comes second finds the order paid and gets
    None. Commits."""
    order = lock_order(order.id)
    attempt = order.current_attempt
    if order.status not in UNSETTLED or attempt is None or not attempt.provider_ref:
        db.session.commit()
        return None
    order_id, reference, provider_ref = order.id, order.reference, attempt.provider_ref
    save = bool(order.auto_renew and card_token)
    actor = _customer(order)
    db.session.commit()  # no transaction is open while the provider answers
    card = card_provider()
    if save:
        try:
            card.save_card_token(provider_ref, card_token)
        except (CardDeclined, ProviderError):  # keep_card records that it is not saved
            log.warning("the card of order %s could not be saved", reference)
    try:
        state = card.confirm(provider_ref, card_ref)
    except (CardDeclined, ProviderRefused):  # declined, or confirmed meanwhile elsewhere
        state = card.confirm(provider_ref)
    order = lock_order(order_id)
    settled_before = order.status not in UNSETTLED  # a second click, a webhook, reconcile
    settle(order, state, actor=actor, provider_name=card.name)  # once, whoever comes first
    db.session.commit()
    follow_up()
    return None if settled_before else state


def refresh_payment(order, actor=None):
    """Re-read an order's payment from the provider and settle it, committed; returns the
    state."""
    attempt = order.current_attempt
    if attempt is None or not attempt.provider_ref:
        return None
    order_id, provider_name, provider_ref = order.id, attempt.provider, attempt.provider_ref
    actor = actor or _customer(order)
    db.session.commit()  # no transaction is open while the provider answers
    state = registry.configured_provider(provider_name).confirm(provider_ref)
    settle(lock_order(order_id), state, actor=actor, provider_name=provider_name)
    db.session.commit()
    follow_up()
    return state


def settle(order, state, *, actor, provider_name=None):
    """Act on the provider's word about one payment of ``order`` (locked by the caller):
    record it on its attempt, renew on success (once), mark a decline as failed.
    Returns an outcome code. A provider call it decides on (a card to keep, money to
    return) is only claimed here: the caller makes it with ``follow_up()`` once it
    committed."""
    provider_name = provider_name or card_provider().name
    if state.order_reference not in (None, order.reference):
        record(actor, "payment.mismatch", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, other_order=state.order_reference)
        return "mismatch"
    attempt = PaymentAttempt.find(provider_name, state.provider_ref)
    if attempt is not None and attempt.order_id == order.id:
        _apply(attempt, state)
    current = order.current_attempt
    is_current = current is not None and state.provider_ref == current.provider_ref
    if state.state == SUCCEEDED:
        try:
            _order, renewed = record_payment(
                order.id, provider=provider_name, provider_ref=state.provider_ref,
                amount=state.amount, currency=state.currency, received_on=utc_today(),
                actor=actor, send_receipt=False,
            )
        except PaymentMismatch:
            return "mismatch"
        except IllegalTransition:  # paid after the order was replaced or lapsed
            return refund_orphan(order, state, actor, provider_name)
        if renewed:
            if order.auto_renew:  # the customer opted in: automatic renewal keeps the card
                claim_card(order, state, actor, provider_name)
            else:
                send_payment_received(order)
        return "renewed" if renewed else "already_paid"
    if not is_current:  # a replaced attempt's late news changes nothing
        return "stale"
    if state.state == FAILED and order.status == OrderStatus.PENDING:
        order.transition(OrderStatus.FAILED)
        record(actor, "payment.declined", order.contract.number, order=order.reference,
               provider_ref=state.provider_ref, code=state.error_code or "")
        db.session.flush()
        return "declined"
    return state.state



def _customer(order):
    return f"customer:{order.contact_id}" if order.contact_id else "customer"


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
