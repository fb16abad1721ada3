"""Recording money that arrived outside the card provider (bank transfer, cheque), and
paying back the money that came for a cancelled or lapsed order.

The one service behind the staff console's payment form and ``portal orders
record-payment``: both pass the text they were given and show ``str(error)`` of a
refusal, so the same input gets the same answer in both places. A refusal changes
nothing except the audit entry of an amount that does not match (the caller commits it).
"""
import re

from sqlalchemy import select

from portal.audit.models import record
from portal.extensions import db
from portal.markets.methods import method as payment_method
from portal.money import CURRENCIES, MoneyError, amount_string, parse_amount
from portal.orders.models import IllegalTransition, Order, Payment, ReturnedPayment
from portal.orders.services import CLOSED_STATUSES, OrderClosed, PaymentRefused, record_payment

#: Plain digits with an optional decimal part: no sign, exponent, spaces or separators.
AMOUNT_TEXT = re.compile(r"\d{1,12}(\.\d{1,12})?")
REFERENCE_LENGTH = (2, 128)
#: Why money was paid back: required, at most this long.
REASON_LENGTH = 500
#: Order states for which money can still be recorded (a second payment of a paid order
#: is kept for a refund and renews nothing).
RECORDABLE = ("awaiting_payment", "paid")


def record_offline_payment(order_reference, amount, currency, received_on, bank_reference,
                           *, actor, today, contract=None):
    """Record ``amount`` ``currency`` received on ``received_on`` for the order
    ``order_reference`` (of ``contract`` when given), identified by the bank's
    ``bank_reference``; returns ``(order, renewed_now)`` like ``record_payment``.

    Every text argument is checked here, not by the caller: an amount with more decimals
    than its currency has ("899.995 USD") is refused, never rounded; so is a
    ``received_on`` after ``today`` or before the (UTC) day the order was placed.
    """
    order = _order(order_reference, contract)
    if _kind(order) == "card":
        raise PaymentRefused(f"order {order.reference} is a card order; its payment comes "
                             "from the card provider")
    if order.status not in RECORDABLE and order.status not in CLOSED_STATUSES:
        raise PaymentRefused(f"order {order.reference} is {order.status}: no payment can be "
                             "recorded for it; ask the customer to order again")
    code = str(currency or "").strip().upper()
    if code not in CURRENCIES:
        raise PaymentRefused(f"unknown currency {currency!r}")
    value = _amount(amount, code)
    reference = _reference(bank_reference)
    if received_on > today:
        raise PaymentRefused("the payment date is in the future")
    placed_on = order.placed_at.date()  # the UTC day, as every day in the portal
    if received_on < placed_on:  # a payment quoting the reference comes after the order
        raise PaymentRefused(f"the payment date {received_on.isoformat()} is before order "
                             f"{order.reference} was placed on {placed_on.isoformat()}")
    try:
        return record_payment(order.id, provider="offline", provider_ref=reference,
                              amount=value, currency=code, received_on=received_on, actor=actor)
    except OrderClosed as error:  # kept as a payment to return; the caller commits it
        raise PaymentRefused(str(error)) from None
    except IllegalTransition:  # the order lapsed since it was read
        raise PaymentRefused(f"order {order.reference} is {order.status}: no payment can be "
                             "recorded for it; ask the customer to order again") from None


def return_payment(payment_id, bank_reference, reason, *, actor, today):
    """Staff paid back money that came for a cancelled or lapsed order (a ``to_return``
    payment) by bank transfer or cheque ``bank_reference``, because of ``reason``. The
    caller commits; a refusal (PaymentRefused) changes nothing. Returns the
    ReturnedPayment. Two desk members at once: the second waits for the payment row,
    then is told it was paid back already."""
    payment = db.session.scalar(select(Payment).where(Payment.id == payment_id)
                                .with_for_update().execution_options(populate_existing=True))
    if payment is None or payment.kind != "to_return":
        raise PaymentRefused(f"payment {payment_id} is not one to pay back")
    done = db.session.scalar(select(ReturnedPayment).where(ReturnedPayment.payment_id
                                                          == payment.id))
    if done is not None:
        raise PaymentRefused(f"payment {payment.provider_ref} was paid back on "
                             f"{done.returned_on.isoformat()} by {done.returned_by}")
    reference = _reference(bank_reference)
    why = str(reason or "").strip()
    if not why or len(why) > REASON_LENGTH:
        raise PaymentRefused(f"say why the payment is paid back, in at most {REASON_LENGTH} "
                             "characters")
    returned = ReturnedPayment(payment_id=payment.id, reference=reference, reason=why,
                               returned_on=today, returned_by=actor)
    db.session.add(returned)
    record(actor, "payment.returned", payment.order.contract.number,
           order=payment.order.reference, payment=payment.provider_ref,
           amount=f"{amount_string(payment.amount, payment.currency)} {payment.currency}",
           reference=reference, reason=why)
    db.session.flush()
    return returned


def payments_to_return(limit=200):
    """``[(payment, ReturnedPayment or None)]`` of money that came for cancelled or lapsed
    orders, those still to pay back first, then the newest."""
    rows = db.session.execute(
        select(Payment, ReturnedPayment)
        .outerjoin(ReturnedPayment, ReturnedPayment.payment_id == Payment.id)
        .where(Payment.kind == "to_return")
        .order_by(ReturnedPayment.id.is_(None).desc(), Payment.id.desc()).limit(limit))
    return [tuple(row) for row in rows]


def _reference(text):
    reference = str(text or "").strip()
    low, high = REFERENCE_LENGTH
    if not low <= len(reference) <= high:
        raise PaymentRefused(f"the bank or cheque reference must be {low} to {high} characters")
    return reference


def _order(reference, contract):
    """The order ``reference``; with ``contract``, only an order of that contract or the
    combined order that pays for one of its orders."""
    text = str(reference or "").strip().upper()
    order = db.session.scalar(select(Order).where(Order.reference == text)) if text else None
    if order is not None and contract is not None and contract.id not in {
            each.contract_id for each in order.paid_together}:
        order = None
    if order is None:
        raise PaymentRefused(f"unknown order reference {text or reference!r}")
    return order


def _kind(order):
    try:
        return payment_method(order.method).kind
    except KeyError:
        return "offline"  # a retired method no longer in the markets file


def _amount(text, currency):
    text = str(text or "").strip()
    if not AMOUNT_TEXT.fullmatch(text):
        raise PaymentRefused(f"amount {text!r} is not written as digits, e.g. 1250.00")
    try:
        return parse_amount(text, currency, allow_zero=False)
    except MoneyError as error:
        raise PaymentRefused(str(error)) from None
