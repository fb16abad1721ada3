"""Provider calls that settling a card payment decides on: keep the card of a customer
who opted in to automatic renewal, give back money that came for an order that no
longer takes it. Each is claimed (a ProviderClaim) in the settling transaction and made
once that transaction committed (``follow_up``), with no transaction open and its
idempotency key, so asking again (reconciliation) never does it twice."""
import logging

from sqlalchemy import select

from portal.audit.models import record
from portal.extensions import db
from portal.mail.receipts import send_payment_received
from portal.money import amount_string
from portal.orders.models import Order, OrderStatus
from portal.orders.services import lock_order
from portal.payments import registry
from portal.payments.models import ClaimKind, ClaimStatus, ProviderClaim
from portal.payments.provider import CardDeclined, ProviderError, ProviderRefused
from portal.signals import announce, card_kept
from portal.timeutil import utc_now

log = logging.getLogger(__name__)

#: ``db.session.info`` key: the idempotency keys of the claims the session's transaction
#: made, for ``follow_up`` to carry out once it committed.
CLAIMED = "provider_claims"


def refund_orphan(order, state, actor, provider_name):
    """Money for an order that no longer takes it (the customer changed the order in
    another tab, then paid in the first): claimed to be given back, once, after this
    transaction commits (``finish_claim``). Returns ``returning`` until the provider
    answered, then ``refunded`` or ``orphaned`` (it refused)."""
    claim = _claim(ClaimKind.RETURN_MONEY, order, provider_name, state, actor,
                   f"refund-orphan-{state.provider_ref}",
                   amount=state.amount, currency=state.currency)
    return CLAIM_OUTCOMES[claim.kind, claim.status]


def claim_card(order, state, actor, provider_name):
    """The customer opted in to automatic renewal: claim keeping the payment's card with
    the provider once this transaction commits; the receipt, which says whether
    automatic renewal is on, waits for the provider's answer. A payment that came
    without a customer or a card leaves automatic renewal off, and the receipt says so."""
    if not state.customer_ref or not state.card_ref:
        record("system", "autorenew.no_card", order.contract.number, order=order.reference)
        send_payment_received(order)
        return
    _claim(ClaimKind.KEEP_CARD, order, provider_name, state, actor,
           f"keep-card-{state.provider_ref}",
           customer_ref=state.customer_ref, card_ref=state.card_ref)


#: (kind, status) of a claim -> the outcome reported for it.
CLAIM_OUTCOMES = {
    (ClaimKind.RETURN_MONEY, ClaimStatus.REQUESTED): "returning",
    (ClaimKind.RETURN_MONEY, ClaimStatus.DONE): "refunded",
    (ClaimKind.RETURN_MONEY, ClaimStatus.REFUSED): "orphaned",
    (ClaimKind.KEEP_CARD, ClaimStatus.REQUESTED): "keeping_card",
    (ClaimKind.KEEP_CARD, ClaimStatus.DONE): "card_kept",
    (ClaimKind.KEEP_CARD, ClaimStatus.REFUSED): "card_refused",
}


def _claim(kind, order, provider_name, state, actor, key, **details):
    """The claim of the provider call ``key`` about the payment ``state`` of ``order``
    (locked by the caller), recorded in the caller's transaction; an existing one (the
    same payment settled again) is returned as it is."""
    claim = db.session.scalar(select(ProviderClaim).where(ProviderClaim.idempotency_key == key))
    if claim is None:
        claim = ProviderClaim(kind=kind, order_id=order.id, provider=provider_name,
                              payment_ref=state.provider_ref, idempotency_key=key,
                              actor=actor, status=ClaimStatus.REQUESTED, **details)
        db.session.add(claim)
        db.session.flush()
        db.session.info.setdefault(CLAIMED, []).append(key)
    return claim


def follow_up():
    """Make the provider calls that the transaction committed just before claimed: each
    with no transaction open, its answer recorded in a short transaction of its own.
    Returns their outcomes. A claim whose answer is lost stays ``requested`` for
    reconciliation; one whose transaction was rolled back is gone and skipped."""
    outcomes = []
    for key in db.session.info.pop(CLAIMED, []):
        _reference, outcome = finish_claim(key)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def finish_claim(key):
    """Ask the provider for what the claim ``key`` says (keep a card, refund a payment,
    with that idempotency key, so asking again never does it twice) with no transaction
    open, then record its answer in a short transaction that locks the order. Returns
    ``(order reference, outcome)``; the outcome is None when there is no such claim,
    ``error: ...`` when the provider did not answer (the claim stays ``requested``)."""
    claim = db.session.scalar(select(ProviderClaim).where(ProviderClaim.idempotency_key == key))
    if claim is None:
        db.session.rollback()
        return (key, None)
    order_id, reference = claim.order_id, db.session.get(Order, claim.order_id).reference
    if claim.status != ClaimStatus.REQUESTED:
        outcome = CLAIM_OUTCOMES[claim.kind, claim.status]
        db.session.commit()
        return (reference, outcome)
    kind, provider_name, payment_ref = claim.kind, claim.provider, claim.payment_ref
    customer_ref, card_ref = claim.customer_ref, claim.card_ref
    db.session.commit()  # no transaction is open while the provider answers
    try:
        card = registry.configured_provider(provider_name)
        if kind == ClaimKind.KEEP_CARD:
            card.keep_card(customer_ref, card_ref, idempotency_key=key)
            answer = None
        else:
            answer = card.refund(payment_ref, idempotency_key=key)
    except (CardDeclined, ProviderRefused) as error:
        return (reference, _record_claim(key, order_id, refused=error))
    except ProviderError as error:
        log.warning("no answer from the provider for %s of order %s: %s", key, reference,
                    error)
        return (reference, f"error: {error}")
    return (reference, _record_claim(key, order_id, answer=answer))


def _record_claim(key, order_id, *, answer=None, refused=None):
    """The recording transaction of a claim's answer (committed); returns its outcome."""
    order = lock_order(order_id)
    claim = db.session.scalar(select(ProviderClaim).where(ProviderClaim.idempotency_key == key)
                              .execution_options(populate_existing=True))
    if claim.status == ClaimStatus.REQUESTED:  # else recorded meanwhile by a retry
        claim.transition(ClaimStatus.REFUSED if refused is not None else ClaimStatus.DONE)
        claim.result = str(refused if refused is not None else answer or "")[:500] or None
        claim.finished_at = utc_now()
        if claim.kind == ClaimKind.KEEP_CARD:
            _card_answer(order, claim, refused)
        else:
            _return_answer(order, claim, refused)
    outcome = CLAIM_OUTCOMES[claim.kind, claim.status]
    db.session.commit()
    return outcome


def _card_answer(order, claim, refused):
    if refused is not None:
        record("system", "autorenew.card_refused", order.contract.number,
               order=order.reference, error=str(refused)[:200])
    elif order.status == OrderStatus.PAID:  # not when it was refunded meanwhile
        announce(card_kept, order=order, provider_name=claim.provider,
                 customer_ref=claim.customer_ref, card_ref=claim.card_ref)
    send_payment_received(order)  # says whether automatic renewal is on


def _return_answer(order, claim, refused):
    if refused is not None:
        record(claim.actor, "payment.orphaned", order.contract.number,
               order=order.reference, provider_ref=claim.payment_ref, status=order.status,
               error=str(refused)[:200])
        return
    record(claim.actor, "payment.refund_orphan", order.contract.number,
           order=order.reference, provider_ref=claim.payment_ref, refund=claim.result,
           amount=f"{amount_string(claim.amount, claim.currency)} {claim.currency}")


def commit_and_follow_up(outcome):
    """Commit, make the provider calls the transaction claimed (``follow_up``) and return
    ``outcome``; for money claimed to be returned, what the provider answered instead."""
    db.session.commit()
    followed = follow_up()
    return followed[-1] if outcome == "returning" and followed else outcome
