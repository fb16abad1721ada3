"""Recording money that arrived outside the card provider (bank transfer, cheque).

The one service behind the staff console's payment form and ``portal orders
record-payment``: both pass the text they were given and show ``str(error)`` of a
refusal, so the same input gets the same answer in both places. A refusal changes
nothing except the audit entry of an amount that does not match (the caller commits it).
"""
import re

from sqlalchemy import select

from portal.extensions import db
from portal.markets.methods import method as payment_method
from portal.money import CURRENCIES, MoneyError, parse_amount
from portal.orders.models import IllegalTransition, Order
from portal.orders.services import CLOSED_STATUSES, OrderClosed, PaymentRefused, record_payment

#: Plain digits with an optional decimal part: no sign, exponent, spaces or separators.
AMOUNT_TEXT = re.compile(r"\d{1,12}(\.\d{1,12})?")
REFERENCE_LENGTH = (2, 128)
#: Order states for which money can still be recorded (a second payment of a paid order
#: is kept for a refund and renews nothing).
RECORDABLE = ("awaiting_payment", "paid")


def record_offline_payment(order_reference, amount, currency, received_on, bank_reference,
                           *, actor, today, contract=None):
    """Record ``amount`` ``currency`` received on ``received_on`` for the order
    ``order_reference`` (of ``contract`` when given), identified by the bank's
    ``bank_reference``; returns ``(order, renewed_now)`` like ``record_payment``.

    Every text argument is checked here, not by the caller: an amount with more decimals
    than its currency has ("899.995 USD") is refused, never rounded.
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
    reference = str(bank_reference or "").strip()
    low, high = REFERENCE_LENGTH
    if not low <= len(reference) <= high:
        raise PaymentRefused(f"the bank or cheque reference must be {low} to {high} characters")
    if received_on > today:
        raise PaymentRefused("the payment date is in the future")
    try:
        return record_payment(order.id, provider="offline", provider_ref=reference,
                              amount=value, currency=code, received_on=received_on, actor=actor)
    except OrderClosed as error:  # kept as a payment to return; the caller commits it
        raise PaymentRefused(str(error)) from None
    except IllegalTransition:  # the order lapsed since it was read
        raise PaymentRefused(f"order {order.reference} is {order.status}: no payment can be "
                             "recorded for it; ask the customer to order again") from None


def _order(reference, contract):
    text = str(reference or "").strip().upper()
    statement = select(Order).where(Order.reference == text)
    if contract is not None:
        statement = statement.where(Order.contract_id == contract.id)
    order = db.session.scalar(statement) if text else None
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
