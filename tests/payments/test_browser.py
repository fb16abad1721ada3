"""End to end in headless Chromium (Debian's package): follow a renewal link, pay by card
through Stripe.js served by the local emulator, with 3-D Secure, and recover from a
decline. Screenshots go to test-artifacts/payments/."""
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.pricing.models import PriceList
from portal.extensions import db
from portal.links.services import issue_link
from portal.markets.services import seed_launch_dates
from portal.payments.emulator import LOOPBACK, free_port
from portal.timeutil import utc_today
from tests import factories
from tests.browser import (  # noqa: F401  (browser and page are fixtures)
    browser,
    needs_chromium,
    page,
    screenshot,
    serving,
)
from tests.checkout.conftest import PRICES
from tests.conftest import make_app

CARDS = {"ok": "4242424242424242", "declined": "4000000000000341", "3ds": "4000002760003184"}

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory, stripe_emulator):
    """The portal served over HTTP on loopback, paying through the emulator, which
    delivers its signed webhooks to it."""
    port = free_port()
    folder = tmp_path_factory.mktemp("browser")
    app = make_app(f"sqlite:///{folder / 'portal.db'}", folder, TESTING=False,
                   PORTAL_BASE_URL=f"http://{LOOPBACK}:{port}",
                   **stripe_emulator.config())
    with app.app_context():
        db.create_all()
        seed_launch_dates()
        today = utc_today()
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", today - timedelta(days=1))
        db.session.commit()
    with serving(app, port):
        stripe_emulator.register_webhook(f"http://{LOOPBACK}:{port}/stripe/webhook")
        yield app


@pytest.fixture
def renewal_link(portal_server):
    """``renewal_link() -> (url, contract id)`` for a fresh contract ending in 40 days."""

    def make():
        with portal_server.app_context():
            plist = db.session.scalar(select(PriceList).where(PriceList.code == "US"))
            contract = factories.contract(plist or factories.price_list("US", "USD", PRICES),
                                          end_date=utc_today() + timedelta(days=40))
            _link, token = issue_link(contract, contract.account.contacts[0], purpose="test")
            db.session.commit()
            return f"{portal_server.config['PORTAL_BASE_URL']}/r/{token}", contract.id

    return make


def _shot(page, name):
    screenshot(page, "payments", name)


def _place_card_order(page, url):
    page.goto(url)
    page.wait_for_url("**/renewal")
    page.check("input[name=payment_method][value=visa]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/pay")


def _enter_card(page, kind):
    fields = {"number": CARDS[kind], "exp_month": "12", "exp_year": "34", "cvc": "123",
              "postal_code": "10001"}
    for field, value in fields.items():
        page.fill(f"#card-element input[placeholder={field}]", value)
    page.click("#pay-button")


def _contract_end(app, contract_id):
    from portal.contracts.models import Contract

    with app.app_context():
        end = db.session.get(Contract, contract_id).end_date
        db.session.remove()
        return end


def test_pay_by_card_renews_the_contract(page, portal_server, renewal_link):
    url, contract_id = renewal_link()
    before = _contract_end(portal_server, contract_id)
    _place_card_order(page, url)
    assert "/r/" not in page.url
    _shot(page, "1-card-form")
    _enter_card(page, "ok")
    page.wait_for_url("**/renewal/confirmation")
    assert page.get_by_role("heading", name="Your contract is renewed").is_visible()
    _shot(page, "2-renewed")
    assert _contract_end(portal_server, contract_id) > before
    # The emulator also delivers its signed event; the portal verifies and records it.
    # (The emulator is shared by the session's payment tests and sends their events here
    # too; the portal records those as unknown payments.)
    assert _wait_for_event(portal_server, "payment_intent.succeeded",
                           {"already_paid", "renewed"})


def _wait_for_event(app, event_type, outcomes, seconds=15):
    """True once an event of ``event_type`` was processed with one of ``outcomes``."""
    from portal.payments.models import ProcessedEvent

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with app.app_context():
            found = db.session.scalar(select(ProcessedEvent.id).where(
                ProcessedEvent.type == event_type, ProcessedEvent.outcome.in_(outcomes)))
            db.session.remove()
        if found:
            return True
        time.sleep(0.1)
    return False


def test_three_d_secure_is_completed_in_the_browser(page, portal_server, renewal_link):
    url, contract_id = renewal_link()
    before = _contract_end(portal_server, contract_id)
    _place_card_order(page, url)
    _enter_card(page, "3ds")
    challenge = page.get_by_role("button", name="Complete authentication")
    challenge.wait_for()
    _shot(page, "3-three-d-secure")
    assert _contract_end(portal_server, contract_id) == before  # nothing before the challenge
    challenge.click()
    page.wait_for_url("**/renewal/confirmation")
    assert page.get_by_role("heading", name="Your contract is renewed").is_visible()
    assert _contract_end(portal_server, contract_id) > before


def test_declined_card_then_another_card(page, portal_server, renewal_link):
    url, contract_id = renewal_link()
    before = _contract_end(portal_server, contract_id)
    _place_card_order(page, url)
    _enter_card(page, "declined")
    page.wait_for_url("**/renewal/pay/return")
    assert page.get_by_role("heading", name="Your card was declined").is_visible()
    assert page.get_by_role("link", name="Change payment option").get_attribute("href") == (
        "/renewal")
    _shot(page, "4-declined")
    assert _contract_end(portal_server, contract_id) == before
    page.get_by_role("link", name="Try another card").click()
    page.wait_for_url("**/renewal/pay")
    _enter_card(page, "ok")
    page.wait_for_url("**/renewal/confirmation")
    _shot(page, "5-recovered")
    assert _contract_end(portal_server, contract_id) > before
