"""Switching an offline order awaiting payment to another method: one transaction that
cancels the old order and places the new one, never two open orders, never none."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.orders.models import OPEN_STATUSES, Order
from portal.orders.services import (
    OrderClosed,
    OrderError,
    place_order,
    record_payment,
    switch_offline_order,
)
from portal.renewals.services import issue_quote
from portal.timeutil import utc_today
from tests import factories
from tests.checkout.conftest import PRICES
from tests.payments.conftest import stripe_emulator  # noqa: F401
from tests.payments.conftest import live_app  # noqa: F401
from tests.threads import run_together


def _offline_order(today, method="bank_transfer"):
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", today - timedelta(days=1))
    contract = factories.contract(factories.price_list("US", "USD", PRICES),
                                  end_date=today + timedelta(days=40))
    return place_order(issue_quote(contract, today), "production", 36, "USD", method,
                       contact_id=None, today=today, actor="customer:1")


def _orders(contract_id):
    return db.session.scalars(select(Order).where(Order.contract_id == contract_id)
                              .order_by(Order.id).execution_options(populate_existing=True)).all()


def _today_quote(today):
    return lambda contract: issue_quote(contract, today)


def test_a_switch_cancels_the_offline_order_and_places_the_new_one(app):
    today = utc_today()
    offline = _offline_order(today)
    offline.po_number, offline.tax_id, offline.billing_address = (
        "PO-77", "12-3456789", "Buyer Inc\nAccounts Payable")
    switched = switch_offline_order(offline.id, "check", _today_quote(today), contact_id=None,
                                    today=today, actor="customer:1")
    db.session.commit()
    old, new = _orders(offline.contract_id)
    assert (old.id, old.status, old.cancelled_by, old.cancel_reason) == (
        offline.id, "cancelled", "customer:1", "switched to check")
    assert new.id == switched.id and (new.status, new.method) == ("awaiting_payment", "check")
    assert (new.service_level, new.term_months, new.pay_currency, new.amount_due) == (
        old.service_level, old.term_months, old.pay_currency, old.amount_due)
    assert (new.po_number, new.tax_id, new.billing_address) == (
        "PO-77", "12-3456789", "Buyer Inc\nAccounts Payable")  # the same purchase
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "order.switch"))
    assert [(e.details["order"], e.details["new_order"]) for e in entries] == [
        (old.reference, new.reference)]
    # The same method again changes nothing; the cancelled order cannot be switched.
    assert switch_offline_order(new.id, "check", _today_quote(today), contact_id=None,
                                today=today, actor="customer:1").id == new.id
    with pytest.raises(OrderError) as refused:
        switch_offline_order(old.id, "paypal", _today_quote(today), contact_id=None,
                             today=today, actor="customer:1")
    assert refused.value.code == "nothing_to_switch"
    assert len(_orders(offline.contract_id)) == 2


@pytest.mark.parametrize(("method", "quote_days_ago", "code"), [
    ("ideal", 0, "method_not_offered"),  # iDEAL is for the Netherlands, in euros
    ("check", 40, "quote_expired"),  # the new order would be placed from a stale quote
])
def test_when_the_new_order_cannot_be_placed_the_offline_order_stays_open(
        app, method, quote_days_ago, code):
    today = utc_today()
    offline = _offline_order(today)
    with pytest.raises(OrderError) as refused:
        switch_offline_order(offline.id, method,
                             _today_quote(today - timedelta(days=quote_days_ago)),
                             contact_id=None, today=today, actor="customer:1")
    assert refused.value.code == code
    db.session.commit()  # even a caller that commits after the refusal keeps the order
    [order] = _orders(offline.contract_id)
    assert (order.status, order.method, order.cancelled_at) == (
        "awaiting_payment", "bank_transfer", None)
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action.in_(
        ("order.cancel", "order.switch")))) is None


def test_two_switches_at_once_leave_exactly_one_open_order(live_app):
    today = utc_today()
    with live_app.app_context():
        offline = _offline_order(today)
        db.session.commit()
        order_id, contract_id = offline.id, offline.contract_id
    methods = ["check", "paypal"]

    def switch():
        method = methods.pop()
        try:
            return switch_offline_order(order_id, method, _today_quote(today), contact_id=None,
                                        today=today, actor="customer:1").method
        except OrderError as error:
            return error.code

    outcomes = run_together(live_app, switch)
    assert sorted(outcomes, key=len) in (["check", "nothing_to_switch"],
                                         ["paypal", "nothing_to_switch"])
    with live_app.app_context():
        orders = _orders(contract_id)
        assert [o.status for o in orders if o.status in OPEN_STATUSES] == ["awaiting_payment"]
        assert [o.status for o in orders] == ["cancelled", "awaiting_payment"]
        db.session.remove()


def test_a_switch_and_a_payment_at_once_never_renew_and_replace_both(live_app):
    today = utc_today()
    with live_app.app_context():
        offline = _offline_order(today)
        db.session.commit()
        order_id, contract_id, amount = offline.id, offline.contract_id, str(offline.amount_due)
    jobs = ["switch", "pay"]

    def work():
        if jobs.pop() == "pay":
            try:
                _order, renewed = record_payment(
                    order_id, provider="offline", provider_ref="BANK-RACE", amount=amount,
                    currency="USD", received_on=today, actor="desk")
            except OrderClosed:
                return "kept to return"
            return "renewed" if renewed else "not renewed"
        try:
            switch_offline_order(order_id, "check", _today_quote(today), contact_id=None,
                                 today=today, actor="customer:1")
            return "switched"
        except OrderError as error:
            return error.code

    outcomes = set(run_together(live_app, work))
    with live_app.app_context():
        orders = _orders(contract_id)
        statuses = [o.status for o in orders]
        kinds = [p.kind for o in orders for p in o.payments]
        db.session.remove()
    # Either the payment came first (renewed; nothing left to switch) or the switch did
    # (the payment is refused and kept to be paid back): never both, never neither.
    assert (outcomes, statuses, kinds) in (
        ({"renewed", "nothing_to_switch"}, ["paid"], ["charge"]),
        ({"switched", "kept to return"}, ["cancelled", "awaiting_payment"], ["to_return"]),
    )
