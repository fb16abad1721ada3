"""Card payments through the Stripe SDK against the local emulator: success, decline and
recovery, 3-D Secure, zero-decimal currencies, mismatches, reconciliation."""
import socket
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.orders.models import Payment
from tests import factories
from tests.payments.conftest import place_card_order


def _csrf(web):
    page = web.get("/renewal/pay").get_data(as_text=True)
    return page.split('data-csrf-token="')[1].split('"')[0]


def _pay(web, card_ref, token=None):
    token = token or _csrf(web)
    return web.post("/renewal/pay/card", data={"card": card_ref}, headers={"X-CSRFToken": token})


def _payments(order):
    return db.session.scalar(select(func.count()).select_from(Payment)
                             .where(Payment.order_id == order.id))


def test_card_order_opens_one_intent_for_the_amount_due(card_app, web, make_checkout,
                                                        stripe_client):
    _contract, _link, token = make_checkout()
    response, order = place_card_order(web, token)
    assert response.status_code == 303 and response.headers["Location"].endswith("/renewal/pay")
    intent = stripe_client.v1.payment_intents.retrieve(order.provider_payment_id)
    assert (intent.amount, intent.currency) == (90000, "usd")
    assert intent.metadata["order"] == order.reference
    page = web.get("/renewal/pay")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-client-secret="{intent.client_secret}"' in html
    assert 'data-amount-due="900.00" data-currency="USD"' in html
    assert "js.stripe.com/v3/" in html and card_app.config["STRIPE_API_BASE"] in html
    # A reload, a second tab: the same intent, never a second one.
    web.get("/renewal/pay")
    db.session.refresh(order)
    assert order.provider_payment_id == intent.id


def test_card_method_hands_the_order_to_the_card_provider(card_app, web, make_checkout,
                                                         stripe_client):
    """Choosing a card on the quote page places a pending order and opens its payment at
    the provider; no order confirmation goes out before the payment succeeds."""
    contract, _link, token = make_checkout()
    response, order = place_card_order(web, token, method="visa")
    assert response.status_code == 303 and response.headers["Location"].endswith("/renewal/pay")
    assert (order.contract_id, order.status, order.method) == (contract.id, "pending", "visa")
    intent = stripe_client.v1.payment_intents.retrieve(order.provider_payment_id)
    assert intent.metadata["order"] == order.reference and intent.status != "succeeded"
    assert db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key == f"order-confirmation:{order.reference}")).all() == []


def test_successful_card_payment_renews_the_contract_once(card_app, web, make_checkout, card):
    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, order = place_card_order(web, token)
    csrf = _csrf(web)
    response = _pay(web, card("ok"), csrf)
    assert response.status_code == 200 and response.json["status"] == "succeeded"
    db.session.refresh(order)
    db.session.refresh(contract)
    assert order.status == "paid" and contract.end_date == order.term_end != old_end
    back = web.get("/renewal/pay/return")
    assert back.status_code == 303 and back.headers["Location"].endswith("/renewal/confirmation")
    assert "Your contract is renewed" in web.get("/renewal/confirmation").get_data(as_text=True)
    # Paying again (double click, another tab) charges nothing more.
    again = _pay(web, card("ok"), csrf)
    assert again.status_code == 303  # the order is paid: back to the confirmation
    assert _payments(order) == 1


@pytest.mark.parametrize("declined_card", ["declined", "generic decline", "insufficient funds"])
def test_declined_card_shows_the_declined_page_and_another_card_recovers(
        card_app, web, make_checkout, card, stripe_client, declined_card):
    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, order = place_card_order(web, token)
    assert _pay(web, card(declined_card)).json["status"] == "failed"
    db.session.refresh(order)
    assert order.status == "failed" and contract.end_date == old_end
    declined = web.get("/renewal/pay/return")
    html = declined.get_data(as_text=True)
    assert declined.status_code == 402
    assert "Your card was declined" in html and 'href="/renewal" data-change-method' in html
    retry = web.get("/renewal/pay").get_data(as_text=True)
    assert "data-declined" in retry
    assert _pay(web, card("ok")).json["status"] == "succeeded"
    db.session.refresh(order)
    db.session.refresh(contract)
    assert order.status == "paid" and contract.end_date == order.term_end
    assert _payments(order) == 1
    # The order keeps both attempts; the declined payment was cancelled at the provider.
    declined, paid = order.attempts
    assert (declined.state, paid.state) == ("cancelled", "succeeded")
    assert stripe_client.v1.payment_intents.retrieve(declined.provider_ref).status == "canceled"
    assert [declined.idempotency_key, paid.idempotency_key] == [
        f"renewal-order-{order.reference}-attempt-1", f"renewal-order-{order.reference}-attempt-2"]


def test_three_d_secure_waits_for_the_browser_then_renews(card_app, web, make_checkout, card,
                                                          stripe_emulator, stripe_client):
    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, order = place_card_order(web, token)
    assert _pay(web, card("3ds")).json["status"] == "requires_action"
    db.session.refresh(order)
    assert order.status == "pending" and contract.end_date == old_end
    page = web.get("/renewal/pay").get_data(as_text=True)
    assert 'data-needs-action="true"' in page
    assert web.get("/renewal/pay/return").headers["Location"].endswith("/renewal/pay")
    # What Stripe.js does once the customer completes the challenge:
    intent = stripe_client.v1.payment_intents.retrieve(order.provider_payment_id)
    request = urllib.request.Request(
        f"{stripe_emulator.api_base}/v1/payment_intents/{intent.id}/_authenticate?success=true",
        data=(f'{{"key": "{stripe_emulator.publishable_key}", '
              f'"client_secret": "{intent.client_secret}"}}').encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).read()
    assert web.get("/renewal/pay/return").headers["Location"].endswith("/renewal/confirmation")
    db.session.refresh(contract)
    assert contract.end_date == order.term_end


def test_zero_decimal_currency_goes_to_stripe_in_whole_units(card_app, web, make_checkout,
                                                              stripe_client):
    _contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token, pay_currency="JPY")
    assert order.pay_currency == "JPY"
    intent = stripe_client.v1.payment_intents.retrieve(order.provider_payment_id)
    assert intent.currency == "jpy"
    assert intent.amount == int(order.amount_due)


def test_huf_goes_to_stripe_in_hundredths(card_app, web, make_checkout, stripe_client, today):
    """The portal prices HUF in whole forints; Stripe takes HUF in hundredths."""
    factories.rate("HUF", "402.15", today - timedelta(days=1))
    _contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token, pay_currency="HUF")
    assert order.pay_currency == "HUF"
    assert order.amount_due == order.amount_due.to_integral_value()
    intent = stripe_client.v1.payment_intents.retrieve(order.provider_payment_id)
    assert intent.currency == "huf"
    assert intent.amount == int(order.amount_due) * 100


def test_amount_or_currency_mismatch_is_refused(card_app, web, make_checkout, card):
    contract, _link, token = make_checkout()
    old_end = contract.end_date
    _response, order = place_card_order(web, token)
    order.amount_due = order.amount_due + 1  # the order no longer matches what Stripe holds
    db.session.flush()
    response = _pay(web, card("ok"))
    assert response.status_code == 200
    db.session.refresh(order)
    db.session.refresh(contract)
    assert order.status == "pending" and contract.end_date == old_end and _payments(order) == 0
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "payment.mismatch"))
    # Coming back from Stripe shows a review page, and reloading the card form does not loop.
    review = web.get("/renewal/pay/return")
    assert review.status_code == 409 and "data-review" in review.get_data(as_text=True)
    assert web.get("/renewal/pay").headers["Location"].endswith("/renewal/pay/return")
    assert order.status == "pending" and _payments(order) == 0


def test_reconcile_settles_a_payment_whose_return_was_missed(card_app, web, make_checkout,
                                                             card, stripe_client, cli):
    contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token)
    # The card is charged, but the browser never comes back and no webhook arrives.
    stripe_client.v1.payment_intents.update(order.provider_payment_id,
                                            params={"payment_method": card("ok")})
    stripe_client.v1.payment_intents.confirm(order.provider_payment_id)
    assert order.status == "pending"
    result = cli("payments", "reconcile")
    assert result.exit_code == 0, result.output
    assert f"{order.reference}  renewed" in result.output
    db.session.refresh(order)
    db.session.refresh(contract)
    assert order.status == "paid" and contract.end_date == order.term_end
    assert "0 order(s) checked" in cli("payments", "reconcile").output


def test_pay_pages_without_a_link_or_card_payments(app, web, make_checkout):
    assert web.get("/renewal/pay").status_code == 403
    assert web.get("/renewal/pay/return").status_code == 403
    assert web.post("/renewal/pay/card", data={"card": "pm_x"}).status_code == 400  # no CSRF
    _contract, _link, token = make_checkout()
    response, order = place_card_order(web, token)  # no Stripe keys configured
    assert response.status_code == 503 and order is None
    assert web.get("/renewal/pay").headers["Location"].endswith("/renewal")


def test_card_reference_from_the_browser_is_checked(card_app, web, make_checkout):
    _contract, _link, token = make_checkout()
    place_card_order(web, token)
    for bad in ("", "4242424242424242", "pm_x'; drop", "tok_abc"):
        assert _pay(web, bad).status_code == 400


def test_reconcile_needs_card_payments_configured(app, cli):
    result = cli("payments", "reconcile")
    assert result.exit_code != 0 and "not configured" in (result.output + str(result.exception))


def test_provider_refund_and_supported_methods(card_app, web, make_checkout, card,
                                               stripe_client):
    from decimal import Decimal

    from portal.payments.cards import provider

    _contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token)
    assert _pay(web, card("ok")).json["status"] == "succeeded"
    stripe_provider = provider()
    refund_id = stripe_provider.refund(order.provider_payment_id, Decimal("100.00"), "USD",
                                       idempotency_key=f"refund-{order.reference}")
    assert refund_id.startswith("re_")
    refund = stripe_client.v1.refunds.retrieve(refund_id)
    assert (refund.amount, refund.currency) == (10000, "usd")
    assert stripe_provider.supports("visa", "JPY") and stripe_provider.supports("amex", "EUR")
    assert not stripe_provider.supports("bank_transfer", "USD")
    assert not stripe_provider.supports("visa", "LVL")  # a retired currency is never charged


def test_reconcile_fails_when_the_provider_cannot_be_reached(card_app, web, make_checkout,
                                                             cli, monkeypatch):
    _contract, _link, token = make_checkout()
    _response, order = place_card_order(web, token)
    with socket.socket() as closed:  # a loopback port nobody listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setitem(card_app.config, "STRIPE_API_BASE", f"http://127.0.0.1:{port}")
    card_app.extensions.pop("payments_provider", None)
    result = cli("payments", "reconcile")
    assert result.exit_code == 1
    assert "1 order(s) checked, 1 could not be read" in result.output
    assert "1 of 1 order(s) could not be read from the provider" in result.stderr
    assert order.status == "pending"
