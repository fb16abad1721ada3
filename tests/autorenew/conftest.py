"""Automatic-renewal fixtures: a contract with a card saved at the local Stripe emulator
(customer and attached payment method, as the checkout leaves them) and the cycle run on
simulated days."""
from datetime import timedelta

import pytest

from portal.autorenew.models import AutoRenewal
from portal.autorenew.services import run_cycle
from portal.extensions import db
from portal.payments.cards import provider
from tests import factories
from tests.payments.conftest import CARDS
from tests.selfservice.conftest import (  # noqa: F401  (shared fixtures)
    card,
    card_app,
    make_checkout,
    renewed_by_card,
    stripe_client,
    stripe_emulator,
    today,
    web,
)


@pytest.fixture
def auto_renewing(card_app, make_checkout, stripe_client, today):
    """``auto_renewing(card="ok", days_to_end=40) -> (contract, token)`` with automatic
    renewal on and fresh USD rates on every day the test may simulate."""

    def make(card="ok", days_to_end=40, **options):
        contract, _link, token = make_checkout(days_to_end=days_to_end, **options)
        for day in range(5, days_to_end + 2, 5):
            factories.rate("USD", "1.0861", today + timedelta(days=day))
        customer = stripe_client.v1.customers.create(params={"email": "buyer@example.com"})
        method = stripe_client.v1.payment_methods.create(params={
            "type": "card",
            "card": {"number": CARDS[card], "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        stripe_client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
        db.session.add(AutoRenewal(contract_id=contract.id,
                                   contact_id=contract.account.contacts[0].id,
                                   customer_ref=customer.id, card_ref=method.id, method="visa"))
        db.session.commit()
        return contract, token

    return make


@pytest.fixture
def cycle(card_app):
    """``cycle(day)``: one run of ``portal autorenew run --date day``; returns its report."""

    def run(day):
        report = run_cycle(day, provider())
        db.session.expire_all()
        return report

    return run
