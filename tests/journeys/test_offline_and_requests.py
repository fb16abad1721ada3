"""Offline payment journeys in four countries (each offline method the country is offered,
with its instructions), quote change requests, an over-cap quote request, and the pages of
contracts that cannot be renewed online (OEM, not launched). Each checks the database and
the outbox afterwards."""
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.journeys.conftest import choose, contract_state, in_app, place

#: Country, its price list, and the offline methods its customers are offered.
OFFLINE = {
    "US": ("US", ["paypal", "paynearme", "bank_transfer", "check"]),
    "NL": ("EMEA-EUR", ["ideal", "paypal", "bank_transfer"]),
    "CN": ("EMEA-EUR", ["alipay", "bank_transfer"]),
    "RU": ("EMEA-EUR", ["paypal", "webmoney", "bank_transfer"]),
}


def _change_requests(app, number):
    from portal.checkout.models import QuoteChangeRequest
    from portal.contracts.models import Contract
    from portal.extensions import db

    def read():
        contract = db.session.scalar(select(Contract).where(Contract.number == number))
        return [(r.kind, r.message, r.status) for r in db.session.scalars(
            select(QuoteChangeRequest).where(QuoteChangeRequest.contract_id == contract.id))]

    return in_app(app, read)


def _offered(page):
    return sorted(page.eval_on_selector_all(
        ".method-group:not(.method-group-card) input[name=payment_method]",
        "inputs => inputs.map(input => input.value)"))


@pytest.mark.parametrize("country", sorted(OFFLINE))
def test_offline_methods_and_their_instructions(page, journey_app, renewal_link, country):
    list_code, methods = OFFLINE[country]
    for method in methods:
        url, number = renewal_link(country=country, list_code=list_code)
        choose(page, url, method)
        assert _offered(page) == sorted(methods)
        place(page, card=False)
        instructions = page.locator(f'.instructions[data-method="{method}"]')
        assert instructions.is_visible()
        reference = page.locator("[data-payment-reference]").inner_text().strip()
        state = contract_state(journey_app, number)
        assert state["orders"] == [("awaiting_payment", method, Decimal("900.0000"))]
        assert state["payments"] == []
        assert state["emails"] == ["order-confirmation"]
        mail = state["email_text"]["order-confirmation"]
        assert reference in mail


def test_change_request(page, journey_app, renewal_link):
    url, number = renewal_link()
    page.goto(url)
    page.wait_for_url("**/renewal")
    form = page.locator("#change-request form")
    form.locator("select[name=kind]").select_option("quote")
    form.locator("textarea[name=message]").fill("Please quote 5 units for three years.")
    form.locator("[type=submit]").click()
    page.wait_for_url("**/renewal/change-request")
    assert _change_requests(journey_app, number) == [
        ("quote", "Please quote 5 units for three years.", "open")]
    assert contract_state(journey_app, number)["emails"] == ["change-request-received"]


def test_over_cap_option_asks_for_a_quote(page, journey_app, renewal_link):
    url, number = renewal_link()
    page.goto(url)
    page.wait_for_url("**/renewal")
    card = page.locator('[data-option="production-36"]')
    assert card.get_attribute("data-within-cap") == "false"
    card.get_by_role("button", name="Request a quote").click()
    page.wait_for_url("**/renewal/change-request")

    assert _change_requests(journey_app, number) == [
        ("quote", "[production, 36 months]", "open")]
    state = contract_state(journey_app, number)
    assert state["orders"] == [] and state["emails"] == ["change-request-received"]


@pytest.mark.parametrize("options, heading", [
    ({"channel": "oem"}, "Please renew through your OEM partner"),
    ({"country": "AQ"}, "Online renewal is not available in your country yet"),
])
def test_contracts_that_are_not_renewed_online(page, journey_app, renewal_link, options,
                                               heading):
    url, number = renewal_link(**options)
    page.goto(url)
    page.wait_for_url("**/renewal")
    assert page.get_by_role("heading", name=heading).is_visible()
    assert page.locator("button[name=place]").count() == 0
    state = contract_state(journey_app, number)
    assert state["orders"] == [] and state["emails"] == []


def test_an_open_offline_order_switched_to_a_card(page, journey_app, renewal_link):
    from tests.journeys.conftest import enter_card

    url, number = renewal_link()
    choose(page, url, "bank_transfer")
    place(page, card=False)
    page.get_by_role("button", name="Pay by card instead").click()
    page.wait_for_url("**/renewal/pay")
    switched = contract_state(journey_app, number)
    assert [(status, method) for status, method, _due in switched["orders"]] == [
        ("cancelled", "bank_transfer"), ("pending", "visa")]
    enter_card(page, "ok")
    page.wait_for_url("**/renewal/confirmation")
    after = contract_state(journey_app, number)
    assert [status for status, *_ in after["orders"]] == ["cancelled", "paid"]
    assert after["payments"] == [(Decimal("900.0000"), "USD")]
    assert after["emails"] == ["order-confirmation", "payment-received"]


def test_returning_to_an_unfinished_card_payment(page, journey_app, renewal_link):
    url, number = renewal_link()
    choose(page, url, "visa")
    place(page)
    page.goto(url)  # the customer leaves the card page and opens the link again
    page.wait_for_url("**/renewal")
    notice = page.locator("[data-open-card-order]")
    assert notice.is_visible()
    reference = notice.get_attribute("data-open-card-order")
    assert contract_state(journey_app, number)["orders"][0][0] == "pending"
    page.get_by_role("link", name="Finish the payment").click()
    page.wait_for_url("**/renewal/pay")
    assert reference in page.locator(".order").inner_text()
