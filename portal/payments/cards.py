"""Card payments settled from what the provider says, never from what a browser says:
the configured card provider and how long one call to it may take, ``settle`` (the one
place that acts on the provider's word about a payment of an order), and the customer
confirming a card (``pay_with_card``) or coming back (``refresh_payment``). No request
here, and no lock is held while the provider answers."""
import logging
from datetime import timedelta

from flask import current_app

from portal.audit.models import record
from portal.extensions import db
from portal.mail.receipts import send_payment_received
from portal.orders.models import AttemptState, IllegalTransition, OrderStatus, PaymentAttempt
from portal.orders.services import PaymentMismatch, lock_order, record_payment
from portal.payments import registry
from portal.payments.claims import claim_card, follow_up, refund_orphan
from portal.payments.provider import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    CardDeclined,
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
        apply_provider_state(attempt, state)
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


def apply_provider_state(attempt, state, error=None):
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
    actor = customer_actor(order)
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
    actor = actor or customer_actor(order)
    db.session.commit()  # no transaction is open while the provider answers
    state = registry.configured_provider(provider_name).confirm(provider_ref)
    settle(lock_order(order_id), state, actor=actor, provider_name=provider_name)
    db.session.commit()
    follow_up()
    return state


def customer_actor(order):
    """Who the audit trail names for what the order's customer did."""
    return f"customer:{order.contact_id}" if order.contact_id else "customer"
