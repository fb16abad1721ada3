"""Placing orders and recording payments: the one write path that renews a contract."""
from datetime import date
from decimal import Decimal

import pytest

from portal.orders.models import IllegalTransition, Order
from portal.orders.services import OrderError, PaymentMismatch, place_order, record_payment
from portal.renewals.services import issue_quote
from tests import factories

TODAY = date(2026, 11, 22)


@pytest.fixture
def quote(app):
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", "2026-11-20")
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00",
                                               ("VS-ENT", "production", 12): "600.00"})
    contract = factories.contract(plist, lines=[("VS-ENT", 2)], end_date="2026-12-31")
    return issue_quote(contract, TODAY)


def test_offline_order_then_payment_renews_once(quote):
    order = place_order(quote, "basic", 12, "USD", "bank_transfer", contact_id=None,
                        today=TODAY, actor="test")
    assert order.status == "awaiting_payment"
    assert order.amount_due == Decimal("900.00")
    assert order.expires_on == date(2026, 12, 22)
    again = place_order(quote, "basic", 12, "USD", "bank_transfer", contact_id=None,
                        today=TODAY, actor="test")
    assert again.id == order.id
    with pytest.raises(PaymentMismatch):
        record_payment(order.id, provider="offline", provider_ref="B-1", amount="899.99",
                       currency="USD", received_on=TODAY, actor="staff@x")
    paid, renewed = record_payment(order.id, provider="offline", provider_ref="B-1",
                                   amount="900.00", currency="USD", received_on=TODAY,
                                   actor="staff@x")
    assert renewed and paid.status == "paid"
    assert paid.contract.end_date == date(2027, 12, 31)
    _, renewed_again = record_payment(order.id, provider="offline", provider_ref="B-1",
                                      amount="900.00", currency="USD", received_on=TODAY,
                                      actor="staff@x")
    assert not renewed_again
    assert paid.contract.end_date == date(2027, 12, 31)


def test_option_over_cap_or_unknown_is_refused(quote):
    with pytest.raises(OrderError) as error:
        place_order(quote, "production", 36, "USD", "visa", contact_id=None, today=TODAY,
                    actor="test")
    assert error.value.code == "option_not_offered"
    with pytest.raises(OrderError) as error:
        place_order(quote, "basic", 12, "USD", "ideal", contact_id=None, today=TODAY,
                    actor="test")
    assert error.value.code == "method_not_offered"


@pytest.mark.parametrize("start, target, allowed", [
    ("pending", "paid", True), ("pending", "failed", True), ("failed", "pending", True),
    ("awaiting_payment", "paid", True), ("awaiting_payment", "expired", True),
    ("paid", "refunded", True), ("paid", "pending", False), ("expired", "paid", False),
    ("refunded", "paid", False), ("cancelled", "pending", False),
])
def test_order_transitions(start, target, allowed):
    order = Order(status=start, reference="RN-T")
    if allowed:
        order.transition(target)
        assert order.status == target
    else:
        with pytest.raises(IllegalTransition):
            order.transition(target)
