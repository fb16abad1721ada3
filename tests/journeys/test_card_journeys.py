"""Card journeys as a customer makes them, Stripe.js included: paid; declined, another
payment option, paid; 3-D Secure passed and failed; a lapsed contract with its
reinstatement fee; automatic renewal chosen on the page, charged by ``portal autorenew
run`` and turned off again; a refund. Each checks the database and the outbox after."""
from datetime import timedelta
from decimal import Decimal

from portal.timeutil import utc_today
from tests.journeys.conftest import choose, contract_state, enter_card, in_app, place

RENEWED = "Your contract is renewed"


def year_after(end):
    """The end of a 12-month term that follows a term ending on ``end``."""
    start = end + timedelta(days=1)
    return start.replace(year=start.year + 1) - timedelta(days=1)


def _card_page(page, journey_app, renewal_link, card, **contract):
    """Open a fresh contract's link, place a card order and type ``card`` on the card page;
    returns the contract number and what the database held before."""
    url, number = renewal_link(**contract)
    before = contract_state(journey_app, number)
    choose(page, url, "visa")
    place(page)
    enter_card(page, card)
    return number, before


def _renewed(page):
    page.wait_for_url("**/renewal/confirmation")
    assert page.get_by_role("heading", name=RENEWED).is_visible()


def test_card_paid_with_the_card_typed_on_the_quote_page(page, journey_app, renewal_link):
    url, number = renewal_link()
    before = contract_state(journey_app, number)
    choose(page, url, "visa")
    assert page.locator("#inline-card").is_visible()
    visited = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    enter_card(page, "ok", pay="button[name=place]")
    _renewed(page)
    assert not any(url.endswith("/renewal/pay") for url in visited), visited
    after = contract_state(journey_app, number)
    assert after["end_date"] == year_after(before["end_date"])
    assert after["orders"] == [("paid", "visa", Decimal("900.0000"))]
    assert after["payments"] == [(Decimal("900.0000"), "USD")]
    assert after["emails"] == ["payment-received"]
    assert "Automatic renewal" not in after["email_text"]["payment-received"]


def test_declined_then_another_payment_option_then_paid(page, journey_app, renewal_link):
    number, before = _card_page(page, journey_app, renewal_link, "declined")
    page.wait_for_url("**/renewal/pay/return")
    assert page.get_by_role("heading", name="Your card was declined").is_visible()
    declined = contract_state(journey_app, number)
    assert declined["end_date"] == before["end_date"] and declined["payments"] == []
    assert declined["orders"][-1][0] == "failed" and declined["emails"] == []
    page.get_by_role("link", name="Change payment option").click()
    page.wait_for_url("**/renewal")
    page.check("input[name=payment_method][value=mastercard]")
    place(page)
    enter_card(page, "ok")
    _renewed(page)
    after = contract_state(journey_app, number)
    assert after["end_date"] > before["end_date"]
    assert [status for status, *_ in after["orders"]].count("paid") == 1
    assert len(after["payments"]) == 1 and after["emails"] == ["payment-received"]


def test_card_paid_on_the_card_page(page, journey_app, renewal_link):
    # No card typed next to the order: the card page takes it.
    number, _before = _card_page(page, journey_app, renewal_link, "ok")
    _renewed(page)
    assert len(contract_state(journey_app, number)["payments"]) == 1


def test_three_d_secure_on_the_quote_page(page, journey_app, renewal_link):
    url, number = renewal_link()
    choose(page, url, "visa")
    enter_card(page, "3ds", pay="button[name=place]")
    page.get_by_role("button", name="Complete authentication").click()
    _renewed(page)
    assert len(contract_state(journey_app, number)["payments"]) == 1


def test_three_d_secure_passed(page, journey_app, renewal_link):
    number, before = _card_page(page, journey_app, renewal_link, "3ds")
    challenge = page.get_by_role("button", name="Complete authentication")
    challenge.wait_for()
    assert contract_state(journey_app, number)["payments"] == []  # nothing before it
    challenge.click()
    _renewed(page)
    after = contract_state(journey_app, number)
    assert after["end_date"] > before["end_date"] and len(after["payments"]) == 1
    assert after["emails"] == ["payment-received"]


def test_three_d_secure_failed(page, journey_app, renewal_link):
    number, before = _card_page(page, journey_app, renewal_link, "3ds")
    page.get_by_role("button", name="Fail authentication").click()
    page.wait_for_url("**/renewal/pay/return")
    assert page.get_by_role("heading", name="Your card was declined").is_visible()
    after = contract_state(journey_app, number)
    assert after["end_date"] == before["end_date"] and after["payments"] == []
    assert after["orders"][-1][0] == "failed" and after["emails"] == []


def test_lapsed_contract_pays_the_reinstatement_fee(page, journey_app, renewal_link):
    url, number = renewal_link(days_to_end=-10)
    choose(page, url, "visa")
    summary = page.locator(".summary")
    assert summary.locator("[data-reinstatement-fee]").is_visible()
    assert summary.locator("[data-backdated-fee]").is_visible()
    due = Decimal(page.locator("[data-amount-due]").get_attribute("data-amount-due"))
    # 2 x 450.00 for the term; back-dated 2 x 450.00 x 10 / 365 = 24.66; 20 % of it 4.93
    assert due == Decimal("929.59")
    place(page)
    enter_card(page, "ok")
    _renewed(page)
    after = contract_state(journey_app, number)
    assert after["end_date"] == year_after(utc_today())
    assert after["payments"] == [(Decimal("929.5900"), "USD")]
    assert after["orders"] == [("paid", "visa", Decimal("929.5900"))]


def test_automatic_renewal_chosen_on_the_page_charged_then_turned_off(
        page, journey_app, renewal_link):
    from tests import factories

    url, number = renewal_link(days_to_end=40)
    end = contract_state(journey_app, number)["end_date"]
    choose(page, url, "visa")
    page.check("input[name=auto_renew]")
    enter_card(page, "ok", pay="button[name=place]")  # the page's own card flow
    _renewed(page)
    assert page.locator('[data-auto-renew="on"]').is_visible()
    paid = contract_state(journey_app, number)
    assert "Automatic renewal is on." in paid["email_text"]["payment-received"]

    new_end = paid["end_date"]
    charge_day = new_end - timedelta(days=14)

    def fresh_rates():
        factories.rate("USD", "1.0861", charge_day)
        from portal.extensions import db
        db.session.commit()

    in_app(journey_app, fresh_rates)
    run = journey_app.test_cli_runner().invoke(
        args=["autorenew", "run", "--date", charge_day.isoformat()])
    assert run.exit_code == 0, run.output
    charged = contract_state(journey_app, number)
    assert charged["end_date"] == year_after(new_end) and new_end == year_after(end)
    assert len(charged["payments"]) == 2
    assert charged["emails"].count("payment-received") == 2

    page.goto(url + "?to=auto-renew")  # the pre-charge notice's link
    page.wait_for_url("**/renewal/auto-renew")
    page.get_by_role("button", name="Turn automatic renewal off").click()
    page.locator("[data-auto-renew-result=off]").wait_for()
    off = contract_state(journey_app, number)
    assert off["emails"].count("autorenew-off") == 1
    later = journey_app.test_cli_runner().invoke(
        args=["autorenew", "run", "--date", (off["end_date"] - timedelta(days=14)).isoformat()])
    assert later.exit_code == 0
    assert len(contract_state(journey_app, number)["payments"]) == 2  # never charged again


def test_refund_request(page, journey_app, renewal_link):
    number, before = _card_page(page, journey_app, renewal_link, "ok")
    _renewed(page)
    page.goto(page.url.replace("/renewal/confirmation", "/renewal/refund"))
    offer = page.locator(".refund-offer")
    assert offer.get_attribute("data-refund-amount") == "900.00"
    page.get_by_role("button", name="Confirm the refund").click()
    page.locator('[data-refund-status="refunded"]').wait_for()
    after = contract_state(journey_app, number)
    assert after["end_date"] == before["end_date"]
    assert after["orders"][0][0] == "refunded"
    assert after["emails"] == ["payment-received", "refund"]
    assert after["payments"] == after["refunds"] == [(Decimal("900.0000"), "USD")]
