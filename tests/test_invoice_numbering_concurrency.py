"""Payments of several orders at the same moment, on a database with committed data:
each invoice gets its own number and the party's sequence has no gap."""
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import BillingDocument
from portal.orders.services import place_order, record_payment
from portal.renewals.services import issue_quote
from portal.timeutil import utc_today
from tests import factories
from tests.checkout.conftest import PRICES
from tests.payments.conftest import live_app, stripe_emulator  # noqa: F401
from tests.threads import run_together

COUNT = 4


def test_concurrent_payments_get_distinct_gapless_numbers(live_app):
    today = utc_today()
    with live_app.app_context():
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", today - timedelta(days=1))
        plist = factories.price_list("US", "USD", PRICES)
        orders = []
        for _ in range(COUNT):
            contract = factories.contract(plist, end_date=today + timedelta(days=40))
            order = place_order(issue_quote(contract, today), "basic", 12, "USD",
                                "bank_transfer", contact_id=None, today=today, actor="test")
            orders.append((order.id, str(order.amount_due)))
        db.session.commit()
        db.session.remove()
    queue = list(orders)

    def pay():
        order_id, amount = queue.pop()
        record_payment(order_id, provider="offline", provider_ref=f"BANK-RACE-{order_id}",
                       amount=amount, currency="USD", received_on=today, actor="desk")
        return order_id

    paid = run_together(live_app, pay, count=COUNT)
    assert sorted(paid) == sorted(order_id for order_id, _ in orders)
    with live_app.app_context():
        documents = db.session.scalars(select(BillingDocument)).all()
        assert sorted(d.sequence for d in documents) == list(range(1, COUNT + 1))
        assert len({d.number for d in documents}) == COUNT
        assert {d.order_id for d in documents} == set(paid)
        db.session.remove()
