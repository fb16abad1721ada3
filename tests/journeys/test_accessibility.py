"""Accessibility of every customer page: axe-core (pinned, tests/assets/) finds no serious
or critical violation, and a whole card payment is made with the keyboard alone."""
import hashlib
from pathlib import Path

import pytest

from tests.journeys.conftest import CARDS, choose, needs_chromium, place

pytestmark = needs_chromium

AXE = Path(__file__).resolve().parents[1] / "assets" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"


def test_the_pinned_axe_is_the_one_documented():
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256
    assert AXE.read_text()[:40].startswith(f"/*! axe v{AXE_VERSION}")


@pytest.fixture
def axe_page(browser):
    """A page whose Content-Security-Policy lets the test inject axe (the portal's own
    policy is left as it is for every other test)."""
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30000)
    yield page
    context.close()


def serious_violations(page):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [node["target"] for node in v["nodes"]][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def _check(page, name):
    found = serious_violations(page)
    assert found == [], f"{name}: {found}"


@pytest.mark.parametrize("locale", ["en", "ar", "ja"])
def test_customer_pages_have_no_serious_violations(axe_page, renewal_link, journey_app, locale):
    page = axe_page
    lapsed, _number = renewal_link(days_to_end=-10)
    choose(page, lapsed, "bank_transfer", lang=locale)
    page.goto(page.url.split("?")[0] + "?service_level=basic&term_months=12&pay_currency=EUR")
    _check(page, "quote page, lapsed and converted")
    page.check("input[name=payment_method][value=bank_transfer]")
    place(page, card=False)
    _check(page, "offline order confirmation")

    active, _number = renewal_link()
    choose(page, active, "visa", lang=locale)
    _check(page, "quote page")
    place(page)
    page.locator("#card-element input").first.wait_for()
    _check(page, "card page")

    oem, _number = renewal_link(channel="oem")
    page.goto(oem)
    page.wait_for_url("**/renewal")
    _check(page, "OEM page")
    page.goto(journey_app.config["PORTAL_BASE_URL"] + "/r/not-a-real-link")
    _check(page, "invalid link page")


def test_self_service_pages_have_no_serious_violations(axe_page, renewal_link, journey_app):
    from tests.journeys.conftest import enter_card

    page = axe_page
    page.goto(journey_app.config["PORTAL_BASE_URL"] + "/")
    _check(page, "root page")
    url, _number = renewal_link()
    choose(page, url, "visa")
    page.check("input[name=auto_renew]")
    enter_card(page, "ok", pay="button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    _check(page, "card confirmation")
    page.goto(url + "?to=auto-renew")
    page.wait_for_url("**/renewal/auto-renew")
    _check(page, "automatic renewal page")
    page.goto(page.url.replace("/renewal/auto-renew", "/renewal/refund"))
    _check(page, "refund page")

    declined, _number = renewal_link()
    choose(page, declined, "visa")
    enter_card(page, "declined", pay="button[name=place]")
    page.wait_for_url("**/renewal/pay/return")
    _check(page, "declined page")

    change, _number = renewal_link()
    page.goto(change)
    page.wait_for_url("**/renewal")
    page.locator("#change-request textarea").fill("Five more units, please.")
    page.locator("#change-request [type=submit]").click()
    page.wait_for_url("**/renewal/change-request")
    _check(page, "change request sent")


@pytest.mark.parametrize("locale", ["en", "ar"])
def test_combined_order_pages_have_no_serious_violations(axe_page, account_links, locale):
    page = axe_page
    url, _numbers = account_links({"days_to_end": 40}, {"days_to_end": 20},
                                  {"days_to_end": -10}, {"days_to_end": 30, "channel": "oem"})
    page.goto(url)
    page.wait_for_url("**/renewal")
    page.goto(page.url.split("?")[0] + f"/contracts?lang={locale}")
    assert page.locator(".contract-row.not-addable").count() == 1  # with its reason
    _check(page, "combined page")
    page.check("input[name=payment_method][value=bank_transfer]")
    place(page, card=False)
    _check(page, "combined offline order confirmation")


def _tab_to(page, selector, limit=120):
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the keyboard")


def test_a_card_payment_with_the_keyboard_alone(page, journey_app, renewal_link):
    from tests.journeys.conftest import contract_state

    url, number = renewal_link()
    before = contract_state(journey_app, number)["end_date"]
    page.goto(url)
    page.wait_for_url("**/renewal")
    _tab_to(page, "input[name=payment_method][value=visa]")
    page.keyboard.press("Space")
    _tab_to(page, "button[name=place]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/renewal/pay")
    page.locator("#card-element input").first.wait_for()
    values = {"number": CARDS["ok"], "exp_month": "12", "exp_year": "34", "cvc": "123",
              "postal_code": "10001"}
    for field, value in values.items():
        _tab_to(page, f"#card-element input[placeholder={field}]")
        page.keyboard.type(value)
    _tab_to(page, "#pay-button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/renewal/confirmation")
    assert contract_state(journey_app, number)["end_date"] > before
