"""Self-service fixtures: a contract renewed by card through the checkout (against the
local Stripe emulator) or by an offline payment recorded by staff."""
import pytest

from portal.extensions import db
from portal.orders.services import record_payment
from portal.timeutil import utc_today
from tests.checkout.conftest import csrf_token, open_checkout  # noqa: F401
from tests.payments.conftest import (  # noqa: F401  (fixtures shared with the payments)
    card,
    card_app,
    place_card_order,
    stripe_client,
    stripe_emulator,
    web,
)
from tests.checkout.conftest import make_checkout, today  # noqa: F401


def pay_by_card(web, card_ref, card_token=None):
    """Pay on the card page as its script does with the emulator: the card's id, and the
    Stripe.js token it was made from when there is one."""
    page = web.get("/renewal/pay").get_data(as_text=True)
    token = page.split('data-csrf-token="')[1].split('"')[0]
    form = {"card": card_ref, **({"token": card_token} if card_token else {})}
    return web.post("/renewal/pay/card", data=form, headers={"X-CSRFToken": token})


@pytest.fixture
def renewed_by_card(card_app, web, make_checkout, card):
    """``renewed_by_card(**contract options) -> (contract, order)``: paid with a good card."""

    def make(extra_form=None, **options):
        contract, _link, token = make_checkout(**options)
        _response, order = place_card_order(web, token, extra_form=extra_form)
        assert pay_by_card(web, card("ok")).json["status"] == "succeeded"
        db.session.refresh(order)
        db.session.refresh(contract)
        assert order.status == "paid"
        return contract, order

    return make


@pytest.fixture
def renewed_offline(app, web, make_checkout):
    """``renewed_offline(**contract options) -> (contract, order)``: a bank transfer order
    placed through the checkout and recorded as paid."""

    def make(**options):
        contract, _link, token = make_checkout(**options)
        _response, order = place_card_order(web, token, method="bank_transfer")
        assert order.status == "awaiting_payment"
        record_payment(order.id, provider="offline", provider_ref=f"BANK-{order.reference}",
                       amount=order.amount_due, currency=order.pay_currency,
                       received_on=utc_today(), actor="desk@example.com")
        db.session.commit()  # as the console does: a later refusal rolls back to here
        db.session.refresh(contract)
        return contract, order

    return make
