"""Card payment fixtures: one loopback Stripe emulator per test session, the app pointed
at it, card orders placed through the checkout, and signed webhook events."""
import hashlib
import hmac
import json
import os
import secrets
import time

import pytest
import stripe

from portal.extensions import db
from portal.orders.models import Order
from portal.payments.emulator import Emulator
from portal.web import limiter
from tests.conftest import _database_url, own_database_app
from tests.checkout.conftest import (  # noqa: F401  (fixtures shared with the checkout)
    FreshGlobalsClient,
    csrf_token,
    field_value,
    make_checkout,
    open_checkout,
    today,
)

CARDS = {"ok": "4242424242424242", "declined": "4000000000000341", "3ds": "4000002760003184",
         # Stripe's generic decline and insufficient funds cards
         "generic decline": "4000000000000002", "insufficient funds": "4000000000009995"}


@pytest.fixture
def web(app):
    """An HTTPS test client, with rate limits counted from zero."""
    limiter.reset()
    client = FreshGlobalsClient(app, app.response_class, use_cookies=True)
    client.environ_base["wsgi.url_scheme"] = "https"
    yield client
    limiter.reset()


@pytest.fixture(scope="session")
def stripe_emulator():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def card_app(app, stripe_emulator, monkeypatch):
    """The app with card payments through the emulator."""
    for key, value in stripe_emulator.config().items():
        monkeypatch.setitem(app.config, key, value)
    monkeypatch.delitem(app.extensions, "payments_provider", raising=False)
    yield app
    app.extensions.pop("payments_provider", None)


@pytest.fixture
def live_app(backend, request, tmp_path_factory, stripe_emulator):
    """An app with card payments whose transactions really commit, so threads see each
    other's work: a database of its own per test module."""
    if backend == "postgresql" and os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs a database of its own, not the shared TEST_DATABASE_URL")
    name = "live_" + request.module.__name__.rpartition(".")[2]
    url = _database_url(backend, request, tmp_path_factory, name)
    with own_database_app(url, tmp_path_factory.mktemp(name),
                          **stripe_emulator.config()) as app:
        yield app


@pytest.fixture
def stripe_client(stripe_emulator):
    return stripe.StripeClient(stripe_emulator.secret_key,
                               base_addresses={"api": stripe_emulator.api_base})


@pytest.fixture
def card(stripe_client):
    """``card("ok"|"declined"|"3ds") -> PaymentMethod id``, made as Stripe.js would."""

    def make(kind):
        method = stripe_client.v1.payment_methods.create(params={
            "type": "card",
            "card": {"number": CARDS[kind], "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        })
        return method.id

    return make


def place_card_order(web, token, pay_currency="USD", method="visa", extra_form=None):
    """Place a card order through the quote page; returns ``(response, order)``.
    ``extra_form``: more fields for the order form (e.g. ``{"auto_renew": "y"}``)."""
    page = open_checkout(web, token).get_data(as_text=True)
    response = web.post("/renewal/order", data={
        "csrf_token": csrf_token(page), "amount_shown": None, "service_level": "basic",
        "term_months": "12", "pay_currency": pay_currency, "payment_method": method,
        "update": "1",
    }, follow_redirects=True)
    page = response.get_data(as_text=True)
    response = web.post("/renewal/order", data={
        "csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
        "service_level": "basic", "term_months": "12", "pay_currency": pay_currency,
        "payment_method": method, "place": "1", **(extra_form or {}),
    })
    order = db.session.scalars(db.select(Order).order_by(Order.id.desc())).first()
    return response, order


def signed_event(secret, event_type, intent_id, event_id=None):
    """``(payload bytes, Stripe-Signature header)`` as Stripe signs a webhook."""
    payload = json.dumps({
        "id": event_id or "evt_" + secrets.token_hex(8), "object": "event",
        "type": event_type, "created": int(time.time()),
        "data": {"object": {"id": intent_id, "object": "payment_intent"}},
    }).encode()
    return sign(secret, payload)


def sign(secret, payload):
    """``(payload, Stripe-Signature header)``: any bytes, signed as Stripe signs a body."""
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), b"%d.%s" % (timestamp, payload),
                         hashlib.sha256).hexdigest()
    return payload, f"t={timestamp},v1={signature}"
