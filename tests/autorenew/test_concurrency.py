"""Two cycle runs at the same moment on a database with committed data: one attempt row,
one charge, one renewal."""
from datetime import timedelta

from sqlalchemy import func, select

from portal.autorenew.models import AutoRenewAttempt, AutoRenewal
from portal.autorenew.services import run_cycle
from portal.contracts.models import Contract
from portal.extensions import db
from portal.orders.models import Payment
from portal.payments.cards import provider
from portal.timeutil import utc_today
from tests import factories
from tests.checkout.conftest import PRICES
from tests.payments.conftest import card, live_app, stripe_client, stripe_emulator  # noqa: F401
from tests.threads import run_together


def test_two_runs_at_once_charge_once(live_app, stripe_client):
    today = utc_today()
    with live_app.app_context():
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", today)
        contract = factories.contract(factories.price_list("US", "USD", PRICES),
                                      end_date=today + timedelta(days=14))
        customer = stripe_client.v1.customers.create(params={"email": "b@example.com"})
        method = stripe_client.v1.payment_methods.create(params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034,
                     "cvc": "123"}})
        stripe_client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
        db.session.add(AutoRenewal(contract_id=contract.id, customer_ref=customer.id,
                                   card_ref=method.id, method="visa",
                                   contact_id=contract.account.contacts[0].id))
        db.session.commit()
        contract_id, end = contract.id, contract.end_date
        db.session.remove()

    reports = run_together(live_app, lambda: run_cycle(today, provider()))
    assert sum(len(report.charged) for report in reports) == 1
    with live_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AutoRenewAttempt)) == 1
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
        assert db.session.get(Contract, contract_id).end_date > end
        db.session.remove()
