"""A payment provider that accepts connections and never answers (a paused Stripe): every
call ends at the configured deadline, the customer gets the portal's own page saying that
nothing was charged, and the order can be paid once the provider is back."""
import socket
import time

import pytest

from portal.extensions import db
from portal.orders.models import AttemptState
from tests.payments.conftest import place_card_order

#: Connect 1 s, read 1 s, one repeat: a silent provider costs a call about 2.5 s.
DEADLINE_SECONDS = 6


@pytest.fixture
def silent_provider():
    """A loopback port that completes TCP handshakes (the kernel's backlog) and never
    reads or answers: Stripe's SDK waits for its read deadline."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


@pytest.fixture
def deadlines(card_app, monkeypatch):
    for key, value in (("PROVIDER_CONNECT_TIMEOUT_SECONDS", 1),
                       ("PROVIDER_READ_TIMEOUT_SECONDS", 1), ("PROVIDER_MAX_RETRIES", 1)):
        monkeypatch.setitem(card_app.config, key, value)
    card_app.extensions.pop("payments_provider", None)
    return card_app


def _go_silent(app, monkeypatch, address):
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", address)
    app.extensions.pop("payments_provider", None)


def test_a_silent_provider_gives_the_unavailable_page_within_the_deadline(
        deadlines, web, make_checkout, monkeypatch, silent_provider, stripe_client):
    _contract, _link, token = make_checkout()
    placed, order = place_card_order(web, token)  # the provider still answers here
    assert placed.status_code == 303 and order.provider_payment_id
    emulator = deadlines.config["STRIPE_API_BASE"]
    _go_silent(deadlines, monkeypatch, silent_provider)

    started = time.monotonic()
    page = web.get("/renewal/pay")
    took = time.monotonic() - started
    assert page.status_code == 503 and took < DEADLINE_SECONDS, took
    assert "Nothing was charged" in page.get_data(as_text=True)
    back = web.get("/renewal/pay/return")
    assert back.status_code == 503 and "Nothing was charged" in back.get_data(as_text=True)
    assert order.status == "pending"

    # The provider is back: the same order opens the same payment, nothing twice.
    _go_silent(deadlines, monkeypatch, emulator)
    again = web.get("/renewal/pay")
    intent = stripe_client.v1.payment_intents.retrieve(order.provider_payment_id)
    assert again.status_code == 200
    assert f'data-client-secret="{intent.client_secret}"' in again.get_data(as_text=True)


def test_placing_a_card_order_against_a_silent_provider_ends_within_the_deadline(
        deadlines, web, make_checkout, monkeypatch, silent_provider, stripe_client):
    """The order is placed and its attempt recorded before the provider is asked; the
    answer that never came leaves the attempt unknown, nothing charged, and the next
    visit asks again with the same idempotency key."""
    _contract, _link, token = make_checkout()
    emulator = deadlines.config["STRIPE_API_BASE"]
    _go_silent(deadlines, monkeypatch, silent_provider)
    started = time.monotonic()
    response, order = place_card_order(web, token)
    took = time.monotonic() - started
    assert response.status_code == 503 and took < 2 * DEADLINE_SECONDS, took
    assert "Card payments are not available at the moment" in response.get_data(as_text=True)
    assert order.status == "pending" and order.payments == []
    (attempt,) = order.attempts
    assert attempt.state == AttemptState.UNKNOWN and attempt.provider_ref is None

    _go_silent(deadlines, monkeypatch, emulator)
    page = web.get("/renewal/pay")
    db.session.refresh(attempt)
    assert page.status_code == 200 and attempt.state == AttemptState.OPEN
    assert order.attempts == [attempt]  # the same attempt, asked again with its key
    intent = stripe_client.v1.payment_intents.retrieve(attempt.provider_ref)
    assert intent.metadata["order"] == order.reference
    assert f'data-client-secret="{intent.client_secret}"' in page.get_data(as_text=True)
