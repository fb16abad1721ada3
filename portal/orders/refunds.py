"""Refunding a renewal ("Refunds" in docs/rules.md): the amount from the pure policy
(portal/renewals/refunds.py), the money back through the provider (or a task for staff
when the payment was offline), the contract's end date, service level and term length
back to what they were before the renewal.

No request or flask.g here. A refund is one row per order (unique), so a double click,
two tabs or two staff users refund once; the provider call carries an order-derived
idempotency key, so a retry after a crash returns the same provider refund.
"""

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.audit.models import record
from portal.contracts.models import Contract
from portal.errors import PortalError
from portal.extensions import db
from portal.money import amount_string
from portal.invoices.services import issue_credit_note
from portal.orders.emails import send_refund_confirmation
from portal.orders.models import Order, OrderStatus, Payment, PaymentAttempt, Refund, RefundStatus
from portal.orders.services import lock_order
from portal.payments.provider import CardDeclined, ProviderRefused
from portal.renewals.refunds import RefundCharge, refund_decision
from portal.signals import announce, order_refunded
from portal.timeutil import utc_now


class RefundRefused(PortalError):
    """No refund: ``code`` is a refund-policy reason (``too_late``, ``channel`` ...),
    ``nothing_to_refund`` or ``amount_changed``."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def refund_idempotency_key(order):
    return f"refund-order-{order.reference}"


def refundable_order(contract):
    """The paid order that bought the contract's current term, or None."""
    return db.session.scalar(
        select(Order).where(Order.contract_id == contract.id, Order.status == OrderStatus.PAID,
                            Order.term_end == contract.end_date)
        .order_by(Order.id.desc()).limit(1)
    )


def latest_refund(contract):
    return db.session.scalar(select(Refund).where(Refund.contract_id == contract.id)
                             .order_by(Refund.id.desc()).limit(1))


def _charge_payment(order):
    """The payment that paid for ``order``: its own, or its combined order's (one payment
    for several contracts, refunded in part, one contract at a time)."""
    return db.session.scalar(
        select(Payment).where(Payment.order_id == order.payer.id, Payment.kind == "charge")
        .order_by(Payment.id).limit(1)
    )


def charged_on(order):
    """The day the money for ``order`` arrived (the refund's 60 days count from it)."""
    payment = _charge_payment(order)
    return payment.received_on if payment is not None else order.paid_at.date()


class RefundPage(NamedTuple):
    """What the customer's refund page says about a contract on a day.

    ``order``, ``decision``, ``charged_on``: the paid order that bought the current term,
    the refund it would get and the day it was paid (all None when no such order).
    ``current_refund``: the refund that made the contract what it is now (the term it
    took off was the last one bought, or its card refund is still being asked for), else
    None. ``earlier_refunds``: the contract's other refunds, newest first: history only,
    a later renewal has changed the contract since."""
    order: object
    decision: object
    charged_on: object
    current_refund: object
    earlier_refunds: list


def refund_page(contract, today):
    """The contract's refund state for the customer's page. Changes nothing."""
    order, decision = refund_offer(contract, today)
    refunds = db.session.scalars(select(Refund).where(Refund.contract_id == contract.id)
                                 .order_by(Refund.id.desc())).all()
    current = None
    if refunds:
        newest = refunds[0]
        if (newest.order_id == order.id if order is not None
                else newest.restored_end_date == contract.end_date):
            current = newest
    return RefundPage(order, decision, charged_on(order) if order is not None else None,
                      current, [each for each in refunds if each is not current])


def shown_amount(order, decision):
    """What a refund's confirm form carries back: the amount the customer or the desk saw
    ("" when nothing is refundable)."""
    if decision is None or not decision.refundable:
        return ""
    return f"{amount_string(decision.amount, order.pay_currency)} {order.pay_currency}"


def refund_offer(contract, today):
    """``(order, RefundDecision)`` for a request made on ``today``; ``(None, None)`` when
    no renewal bought through the portal holds the current term. Changes nothing."""
    order = refundable_order(contract)
    if order is None:
        return None, None
    charge = RefundCharge(
        amount=order.amount_due, currency=order.pay_currency, charged_on=charged_on(order),
        term_start=order.term_start, term_end=order.term_end, country=contract.account.country,
        region=contract.account.region, already_refunded=latest_refund(contract) is not None,
    )
    return order, refund_decision(charge, today)


def _lock_contract(contract_id):
    return db.session.scalar(select(Contract).where(Contract.id == contract_id)
                             .with_for_update().execution_options(populate_existing=True))


def refund_renewal(contract_id, today, actor, *, expected_amount=None, card_provider=None):
    """Refund the renewal that holds the contract's current term. MOVES money.

    ``expected_amount``: the amount the requester was shown; another amount is refused
    (``amount_changed``), so nobody confirms one figure and gets another.
    ``card_provider``: the payment provider for card payments (``None``: card refunds
    are refused as ``card_unavailable``). Returns ``(refund, refunded_now)``; the caller
    commits. Raises RefundRefused, and the provider's error when it refused or did not
    answer.

    Money paid by card goes back in three steps, as a card payment is opened (no lock is
    held while the provider answers): a short transaction claims the refund as a
    ``requested`` row (unique per order, so a second request finds it) and commits; the
    provider is asked with no transaction open, with the order's idempotency key; a
    second short transaction records its answer (see finish_card_refund). Offline money
    is left to staff in one transaction.
    """
    contract = db.session.get(Contract, contract_id)
    order = refundable_order(contract)
    if order is None:
        raise RefundRefused("nothing_to_refund")
    lock_order(order.id)  # two requests at once: the second waits, then finds it refunded
    contract = _lock_contract(contract_id)
    order, decision = refund_offer(contract, today)
    if order is None:
        raise RefundRefused("nothing_to_refund")
    if not decision.refundable:
        raise RefundRefused(decision.rule)
    if expected_amount is not None and expected_amount != decision.amount:
        raise RefundRefused("amount_changed")
    payment = _charge_payment(order)
    # Money taken through a provider goes back through it; offline money, by staff.
    attempt = PaymentAttempt.find(payment.provider, payment.provider_ref) if payment else None
    by_card = attempt is not None
    if by_card and (card_provider is None or card_provider.name != attempt.provider):
        raise RefundRefused("card_unavailable")
    refund = Refund(
        order_id=order.id, contract_id=contract.id, amount=decision.amount,
        currency=order.pay_currency, rule=decision.rule,
        status=RefundStatus.REQUESTED if by_card else RefundStatus.STAFF_TASK,
        requested_by=actor, requested_on=today, refunded_end_date=contract.end_date,
        restored_end_date=order.previous_end_date,
    )
    try:
        with db.session.begin_nested():
            db.session.add(refund)
    except IntegrityError:  # a concurrent request refunded this order first
        return db.session.scalar(select(Refund).where(Refund.order_id == order.id)), False
    if by_card:
        db.session.commit()  # claimed: the provider is asked with no transaction open
        return finish_card_refund(refund.id, card_provider, actor, today)
    _record_refund(refund, order, contract, actor)
    return refund, True


def finish_card_refund(refund_id, card_provider, actor, today):
    """Ask the provider to pay back a ``requested`` refund (its stored amount, the
    order's idempotency key, so asking again never refunds twice) with no transaction
    open, then record the answer in a short transaction. Returns ``(refund,
    refunded_now)``; the caller commits. A refusal (nothing was refunded) drops the claim,
    so the refund may be asked for again; no answer leaves it ``requested`` for a retry
    (reconciliation) and raises the provider's error."""
    refund = db.session.get(Refund, refund_id)
    order = refund.order
    payment = _charge_payment(order)
    charge_ref, amount, currency = payment.provider_ref, refund.amount, refund.currency
    key, order_id = refund_idempotency_key(order), order.id
    db.session.commit()  # no transaction is open while the provider answers
    try:
        provider_ref = card_provider.refund(charge_ref, amount, currency, idempotency_key=key)
    except (ProviderRefused, CardDeclined):
        _drop_claim(refund_id, order_id)
        raise
    order = lock_order(order_id)
    contract = _lock_contract(refund.contract_id)
    refund = db.session.scalar(select(Refund).where(Refund.id == refund_id)
                               .execution_options(populate_existing=True))
    if refund.status != RefundStatus.REQUESTED:  # recorded meanwhile by a retry
        return refund, False
    refund.transition(RefundStatus.REFUNDED)
    refund.provider_ref = provider_ref
    refund.completed_at = utc_now()
    refund.completed_by = actor
    db.session.add(Payment(order_id=order.id, provider=payment.provider,
                           provider_ref=provider_ref, kind="refund", amount=amount,
                           currency=currency, received_on=today, recorded_by=actor))
    _record_refund(refund, order, contract, actor)
    return refund, True


def _drop_claim(refund_id, order_id):
    """The provider refused: nothing went back, so the claim goes (committed)."""
    db.session.rollback()
    lock_order(order_id)
    refund = db.session.get(Refund, refund_id, populate_existing=True)
    if refund is not None and refund.status == RefundStatus.REQUESTED:
        db.session.delete(refund)
    db.session.commit()


def _record_refund(refund, order, contract, actor):
    """The renewal goes back to what it replaced; audit, credit note and email."""
    order.transition(OrderStatus.REFUNDED)
    contract.end_date = order.previous_end_date
    if order.previous_service_level is not None:
        contract.service_level = order.previous_service_level
    if order.previous_term_months is not None:
        contract.term_months = order.previous_term_months
    # Automatic renewal hears of it and stops (portal/autorenew/optin.py).
    announce(order_refunded, order=order, contract=contract, actor=actor)
    by_card = refund.status == RefundStatus.REFUNDED
    record(actor, "refund.issue" if by_card else "refund.staff_task", contract.number,
           order=order.reference,
           amount=f"{amount_string(refund.amount, refund.currency)} {refund.currency}",
           rule=refund.rule, end_date=contract.end_date.isoformat(),
           provider_ref=refund.provider_ref or "")
    db.session.flush()
    issue_credit_note(refund)
    send_refund_confirmation(refund)


def requested_refund_ids(before):
    """Card refunds claimed before ``before`` whose provider answer was never recorded
    (the provider did not answer, or the process stopped mid-call)."""
    return db.session.scalars(select(Refund.id).where(
        Refund.status == RefundStatus.REQUESTED, Refund.created_at < before)
        .order_by(Refund.id)).all()


def complete_offline_refund(refund, actor, reference):
    """Staff paid an offline refund back by hand (bank reference ``reference``)."""
    # Two desk members pressing "paid back" at once: the second waits and then sees it done.
    refund = db.session.scalar(select(Refund).where(Refund.id == refund.id)
                               .with_for_update().execution_options(populate_existing=True))
    if refund.status != RefundStatus.STAFF_TASK:
        return False
    refund.transition(RefundStatus.DONE)
    refund.provider_ref = reference
    refund.completed_at = utc_now()
    refund.completed_by = actor
    db.session.add(Payment(order_id=refund.order_id, provider="offline", provider_ref=reference,
                           kind="refund", amount=refund.amount, currency=refund.currency,
                           received_on=refund.completed_at.date(), recorded_by=actor))
    record(actor, "refund.complete", refund.order.contract.number,
           order=refund.order.reference, reference=reference)
    db.session.flush()
    return True
