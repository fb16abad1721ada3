"""Orders with several contracts as a customer makes them, from the quote page's "Renew
them together" link: two contracts paid by card (3-D Secure too) with one payment at the
emulator for the sum; a declined card that renews none; three contracts by one bank
transfer recorded on its one reference; the combined page at phone width. Each checks
the database and the emulator afterwards."""
import re
from decimal import Decimal

import pytest
import stripe

from portal.timeutil import utc_today
from tests.browser import screenshot
from tests.journeys.conftest import contract_state, enter_card, in_app
from tests.journeys.test_card_journeys import year_after
from tests.journeys.test_screens import overflow

#: The link's contract (2 x basic, 900.00), one more ending in 20 days (1 x production,
#: 600.00) and one lapsed 10 days ago (1 x basic 450.00, back-dated 12.33 and its
#: reinstatement fee 2.47).
LEAD = {"days_to_end": 40}
SOON = {"days_to_end": 20, "lines": [("VS-ENT", 1)], "level": "production"}
LAPSED = {"days_to_end": -10, "lines": [("VS-ENT", 1)]}
AMOUNTS = {"lead": Decimal("900.00"), "soon": Decimal("600.00"), "lapsed": Decimal("464.80")}

#: The confirmation's heading when one payment renewed several contracts.
ALL_RENEWED = "Your contracts are renewed"


def open_combined(page, url, count):
    """Open the renewal link and follow the quote page's link to the combined page, which
    lists the link's contract and ``count`` more."""
    page.goto(url)
    page.wait_for_url("**/renewal")
    follow_mention(page, count)


def follow_mention(page, count):
    """From the quote page, follow its mention of the ``count`` other due contracts."""
    mention = page.locator(".other-contracts")
    assert mention.get_attribute("data-other-due") == str(count)
    mention.get_by_role("link").click()
    page.wait_for_url("**/renewal/contracts")
    assert page.locator(".contract-row").count() == count + 1


def shown(page):
    """``({contract number: amount due}, total)`` as the combined page shows them."""
    rows = {}
    for row in page.locator(".contract-row[data-chosen=true]").all():
        amount = row.locator("[data-contract-amount]").get_attribute("data-contract-amount")
        rows[row.get_attribute("data-contract")] = Decimal(amount)
    return rows, Decimal(page.locator("[data-amount-due]").get_attribute("data-amount-due"))


def intents_for(stripe_emulator, numbers):
    """The emulator's payment intents for any of the contracts ``numbers``."""
    client = stripe.StripeClient(stripe_emulator.secret_key,
                                 base_addresses={"api": stripe_emulator.api_base})
    intents = [i.to_dict() for i in client.v1.payment_intents.list(params={"limit": 100}).data]
    return [i for i in intents if (i.get("metadata") or {}).get("contract") in numbers]


def renewed_end(end):
    """The new end of a contract renewed for 12 months: after its end, or from today when
    it had lapsed (reinstated)."""
    return year_after(max(end, utc_today()))


def states(app, numbers):
    return {number: contract_state(app, number) for number in numbers}


def card_order(page, journey_app, account_links, card, *contracts):
    """A new account with ``contracts``, all ordered together on the combined page by card
    with ``card`` typed on the card page: ``(link, numbers, states before, total shown)``."""
    url, numbers = account_links(*contracts)
    before = states(journey_app, numbers)
    return url, numbers, before, pay_combined_by_card(page, url, numbers, card)


def pay_combined_by_card(page, url, numbers, card):
    """Place the order for every contract on the combined page by card and type ``card``
    on the card page; returns the total shown."""
    open_combined(page, url, len(numbers) - 1)
    amounts, total = shown(page)
    assert sorted(amounts) == sorted(numbers) and total == sum(amounts.values())
    page.check("input[name=payment_method][value=visa]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/pay")
    assert Decimal(page.locator(".amount-due").get_attribute("data-amount-due")) == total
    assert all(page.locator(f'.order [data-contract="{n}"]').count() == 1 for n in numbers)
    enter_card(page, card)
    return total


def assert_renewed_once(app, stripe_emulator, numbers, before, total,
                        emails=("payment-received",)):
    after = states(app, numbers)
    lead = numbers[0]
    for number in numbers:
        assert after[number]["end_date"] == renewed_end(before[number]["end_date"]), number
        assert [status for status, *_ in after[number]["orders"]].count("paid") == 1, number
    # One payment, carried by the link's contract's order, for the sum of the orders.
    assert after[lead]["payments"] == [(total, "USD")]
    assert all(after[number]["payments"] == [] for number in numbers[1:])
    paid = [due for number in numbers for status, _m, due in after[number]["orders"]
            if status == "paid"]
    assert sum(paid) == total
    succeeded = [i for i in intents_for(stripe_emulator, numbers) if i["status"] == "succeeded"]
    assert [(i["amount"], i["currency"], i["metadata"]["contract"]) for i in succeeded] == [
        (int(total * 100), "usd", lead)]
    assert after[lead]["emails"] == list(emails)
    receipt = after[lead]["email_text"]["payment-received"]
    assert all(number in receipt for number in numbers)
    return after


def test_two_contracts_paid_with_one_card_payment(page, journey_app, account_links,
                                                  stripe_emulator):
    url, numbers, before, total = card_order(page, journey_app, account_links, "ok",
                                             LEAD, SOON)
    assert total == AMOUNTS["lead"] + AMOUNTS["soon"]
    page.wait_for_url("**/renewal/confirmation")
    assert page.get_by_role("heading", name=ALL_RENEWED).is_visible()
    assert_renewed_once(journey_app, stripe_emulator, numbers, before, total)
    # Opened again, the link shows the paid order with both contracts, not a second one.
    page.goto(url)
    page.wait_for_url("**/renewal*")
    assert all(page.locator(f'[data-contract="{n}"]').count() for n in numbers)
    assert page.locator("button[name=place]").count() == 0


def test_two_contracts_with_three_d_secure(page, journey_app, account_links, stripe_emulator):
    _url, numbers, before, total = card_order(page, journey_app, account_links, "3ds",
                                              LEAD, LAPSED)
    assert total == AMOUNTS["lead"] + AMOUNTS["lapsed"]
    challenge = page.get_by_role("button", name="Complete authentication")
    challenge.wait_for()
    assert all(not s["payments"] for s in states(journey_app, numbers).values())
    challenge.click()
    page.wait_for_url("**/renewal/confirmation")
    after = assert_renewed_once(journey_app, stripe_emulator, numbers, before, total)
    assert after[numbers[1]]["end_date"] == year_after(utc_today())  # reinstated from today


def test_a_declined_card_renews_none_then_another_card_renews_each_once(
        page, journey_app, account_links, stripe_emulator):
    _url, numbers, before, total = card_order(page, journey_app, account_links, "declined",
                                              LEAD, SOON)
    page.wait_for_url("**/renewal/pay/return")
    assert page.get_by_role("heading", name="Your card was declined").is_visible()
    declined = states(journey_app, numbers)
    for number in numbers:
        assert declined[number]["end_date"] == before[number]["end_date"], number
        assert declined[number]["payments"] == [] and declined[number]["emails"] == []
        assert [status for status, *_ in declined[number]["orders"]] == ["failed"], number
    assert not [i for i in intents_for(stripe_emulator, numbers) if i["status"] == "succeeded"]
    page.locator("[data-retry]").click()  # "Try another card": the same order
    page.wait_for_url("**/renewal/pay")
    assert Decimal(page.locator(".amount-due").get_attribute("data-amount-due")) == total
    enter_card(page, "ok")
    page.wait_for_url("**/renewal/confirmation")
    assert_renewed_once(journey_app, stripe_emulator, numbers, before, total)


def test_three_contracts_one_bank_transfer(page, journey_app, account_links):
    url, numbers = account_links(LEAD, SOON, LAPSED)
    before = states(journey_app, numbers)
    open_combined(page, url, 2)
    amounts, total = shown(page)
    assert amounts == {numbers[0]: AMOUNTS["lead"], numbers[1]: AMOUNTS["soon"],
                       numbers[2]: AMOUNTS["lapsed"]}
    assert total == sum(AMOUNTS.values())
    page.check("input[name=payment_method][value=bank_transfer]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    reference = page.locator("[data-payment-reference]").get_attribute("data-payment-reference")
    assert page.locator("[data-payment-reference]").count() == 1
    assert Decimal(page.locator("[data-amount-due]").get_attribute("data-amount-due")) == total
    # The payment instructions ask for the whole amount on the one reference.
    instructions = page.locator('.instructions[data-method="bank_transfer"]')
    assert "$1,964.80" in instructions.inner_text()
    placed = states(journey_app, numbers)
    assert all([status for status, *_ in placed[n]["orders"]] == ["awaiting_payment"]
               for n in numbers)
    assert placed[numbers[0]]["emails"] == ["order-confirmation"]
    mail = placed[numbers[0]]["email_text"]["order-confirmation"]
    assert reference in mail and "$1,964.80" in mail
    assert all(placed[n]["emails"] == [] for n in numbers[1:])  # one email for the order

    run = journey_app.test_cli_runner().invoke(args=[
        "orders", "record-payment", reference, "--amount", f"{total:.2f}", "--currency", "USD",
        "--reference", "BANK-COMBINED-1"])
    assert run.exit_code == 0, run.output
    after = states(journey_app, numbers)
    for number in numbers:
        assert after[number]["end_date"] == renewed_end(before[number]["end_date"]), number
    assert all([status for status, *_ in after[n]["orders"]] == ["paid"] for n in numbers)
    assert after[numbers[0]]["payments"] == [(total, "USD")]
    assert all(after[n]["payments"] == [] for n in numbers[1:])
    again = journey_app.test_cli_runner().invoke(args=[
        "orders", "record-payment", reference, "--amount", f"{total:.2f}", "--currency", "USD",
        "--reference", "BANK-COMBINED-1"])
    assert states(journey_app, numbers) == after, again.output  # recorded once only


def _inside(page, locator, width):
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.mark.parametrize("locale", ["en", "de", "ar"])
def test_combined_page_at_phone_width(page, journey_app, account_links, locale):
    url, numbers = account_links(LEAD, SOON, LAPSED)
    page.goto(url)
    page.wait_for_url("**/renewal")
    page.goto(page.url + f"?lang={locale}")
    assert page.locator(".other-contracts").is_visible()
    assert overflow(page) == {}, f"quote page mentioning the other contracts in {locale}"
    page.set_viewport_size({"width": 390, "height": 844})
    follow_mention(page, 2)
    page.goto(page.url + f"?lang={locale}")
    assert page.locator("html").get_attribute("lang").startswith(locale)
    assert overflow(page) == {}, f"combined page in {locale}"
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "screens", f"contracts-1280-{locale}")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "screens", f"contracts-390-{locale}")
    boxes = page.locator(".contract-row input[type=checkbox]")
    selects = page.locator(".contract-row select")
    assert boxes.count() == selects.count() == 3
    for control in (*boxes.all(), *selects.all()):
        assert _inside(page, control, 390), control
    for box in boxes.all():  # a box a finger can hit (WCAG's 24 px target size)
        assert min(box.bounding_box()["width"], box.bounding_box()["height"]) >= 24, box
    _amounts, total = shown(page)
    # Each option's amount is isolated, so it keeps its order ("900.00 US$") in ar.
    for option in page.locator(".contract-row select option").all_inner_texts():
        assert re.search(r"\u2066[^\u2066\u2069]*\d[^\u2066\u2069]*\u2069$", option), option

    # Untick the lapsed contract, choose 36 months for the other one, update.
    page.locator(f'.contract-row[data-contract="{numbers[2]}"] input[type=checkbox]').click()
    soon = page.locator(f'.contract-row[data-contract="{numbers[1]}"] select')
    soon.select_option("production|36")
    page.locator("button[name=update]").click()
    page.wait_for_url("**/renewal/contracts?*")
    page.locator(f'.contract-row[data-contract="{numbers[2]}"][data-chosen=false]').wait_for()
    amounts, new_total = shown(page)
    assert sorted(amounts) == sorted(numbers[:2])
    assert amounts[numbers[1]] == Decimal("1600.00") and amounts[numbers[0]] == AMOUNTS["lead"]
    assert new_total == Decimal("2500.00") != total
    page.reload()  # the updated amounts are a page of their own: nothing is posted again
    assert shown(page) == (amounts, new_total)
    assert overflow(page) == {}, f"combined page after an update in {locale}"

    page.check("input[name=payment_method][value=bank_transfer]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    assert overflow(page) == {}, f"combined confirmation in {locale}"
    placed = states(journey_app, numbers)
    assert [(s, due) for s, _m, due in placed[numbers[1]]["orders"]] == [
        ("awaiting_payment", Decimal("1600.0000"))]
    assert placed[numbers[2]]["orders"] == []


def test_another_payment_option_after_a_decline_keeps_the_combined_choice(
        page, journey_app, account_links, stripe_emulator):
    url, numbers = account_links(LEAD, SOON, LAPSED)
    before = states(journey_app, numbers)
    open_combined(page, url, 2)
    row = lambda number: page.locator(f'.contract-row[data-contract="{number}"]')  # noqa: E731
    row(numbers[2]).locator("input[type=checkbox]").uncheck()
    row(numbers[1]).locator("select").select_option("production|36")
    page.locator("button[name=update]").click()
    row(numbers[2]).and_(page.locator("[data-chosen=false]")).wait_for()
    amounts, total = shown(page)
    assert amounts == {numbers[0]: AMOUNTS["lead"], numbers[1]: Decimal("1600.00")}
    page.check("input[name=payment_method][value=visa]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/pay")
    enter_card(page, "declined")
    page.wait_for_url("**/renewal/pay/return")

    # "Change payment option" leads back to the same two contracts, options and currency,
    # not to the link's contract alone.
    page.locator("[data-change-method]").click()
    page.wait_for_url("**/renewal/contracts?*")
    assert shown(page) == (amounts, total)
    assert row(numbers[1]).locator("select").input_value() == "production|36"
    assert row(numbers[2]).get_attribute("data-chosen") == "false"
    page.check("input[name=payment_method][value=mastercard]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/pay")
    enter_card(page, "ok")
    page.wait_for_url("**/renewal/confirmation")
    after = states(journey_app, numbers)
    lead_end, soon_end = (before[number]["end_date"] for number in numbers[:2])
    assert after[numbers[0]]["end_date"] == year_after(lead_end)
    assert after[numbers[1]]["end_date"] == year_after(year_after(year_after(soon_end)))
    for number in numbers[:2]:
        assert [(status, method) for status, method, _due in after[number]["orders"]] == [
            ("cancelled", "visa"), ("paid", "mastercard")], number
    assert after[numbers[2]] == before[numbers[2]]  # unticked: not ordered, not renewed
    assert after[numbers[0]]["payments"] == [(total, "USD")]
    succeeded = [i for i in intents_for(stripe_emulator, numbers) if i["status"] == "succeeded"]
    assert [i["amount"] for i in succeeded] == [int(total * 100)]


def link_for(app, number):
    """A renewal link of contract ``number`` for its account's primary contact."""
    from sqlalchemy import select

    from portal.contracts.models import Contract
    from portal.extensions import db
    from portal.links.services import issue_link

    def issue():
        contract = db.session.scalar(select(Contract).where(Contract.number == number))
        _link, token = issue_link(contract, contract.account.contacts[0], purpose="test")
        db.session.commit()
        return f"{app.config['PORTAL_BASE_URL']}/r/{token}"

    return in_app(app, issue)


def test_one_contract_of_a_card_order_refunded_from_its_own_link(
        page, journey_app, account_links, stripe_emulator):
    _url, numbers, before, total = card_order(page, journey_app, account_links, "ok",
                                              LEAD, SOON)
    page.wait_for_url("**/renewal/confirmation")
    paid = states(journey_app, numbers)

    # The other contract's own link shows it renewed by the combined order.
    page.goto(link_for(journey_app, numbers[1]))
    page.wait_for_url("**/renewal*")
    assert all(page.locator(f'[data-contract="{n}"]').count() for n in numbers)
    page.goto(page.url.split("/renewal")[0] + "/renewal/refund")
    offer = page.locator(".refund-offer")
    assert offer.get_attribute("data-refund-amount") == f"{AMOUNTS['soon']:.2f}"
    page.get_by_role("button", name="Confirm the refund").click()
    page.locator('[data-refund-status="refunded"]').wait_for()

    after = states(journey_app, numbers)
    assert after[numbers[1]]["end_date"] == before[numbers[1]]["end_date"]
    assert after[numbers[1]]["refunds"] == [(AMOUNTS["soon"], "USD")]
    assert [status for status, *_ in after[numbers[1]]["orders"]] == ["refunded"]
    assert after[numbers[0]] == paid[numbers[0]]  # still renewed, its order still paid
    [intent] = [i for i in intents_for(stripe_emulator, numbers) if i["status"] == "succeeded"]
    assert intent["amount"] == int(total * 100)
    client = stripe.StripeClient(stripe_emulator.secret_key,
                                 base_addresses={"api": stripe_emulator.api_base})
    refunds = [r.to_dict() for r in client.v1.refunds.list(params={"limit": 100}).data]
    assert [r["amount"] for r in refunds if r.get("payment_intent") == intent["id"]] == [
        int(AMOUNTS["soon"] * 100)]


def test_a_changed_choice_is_shown_with_its_total_before_it_is_placed(
        page, journey_app, account_links):
    url, numbers = account_links(LEAD, SOON, LAPSED)
    page.set_viewport_size({"width": 390, "height": 844})
    open_combined(page, url, 2)
    page.check("input[name=payment_method][value=bank_transfer]")
    page.locator("details.billing summary").click()
    page.fill("input[name=po_number]", "PO-7731")
    page.locator(f'.contract-row[data-contract="{numbers[2]}"] input[type=checkbox]').uncheck()
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("button[name=place]")  # without "Update amounts"
    assert answer.value.status == 409
    page.locator(".flash-error").wait_for()
    amounts, total = shown(page)
    assert amounts == {numbers[0]: AMOUNTS["lead"], numbers[1]: AMOUNTS["soon"]}
    assert total == AMOUNTS["lead"] + AMOUNTS["soon"]
    assert all(s["orders"] == [] for s in states(journey_app, numbers).values())
    assert overflow(page) == {}
    # What was chosen to pay with, and the billing details typed, stay.
    assert page.locator("input[name=payment_method][value=bank_transfer]").is_checked()
    assert page.locator("input[name=po_number]").input_value() == "PO-7731"

    page.click("button[name=place]")  # the total now shown
    page.wait_for_url("**/renewal/confirmation")
    assert Decimal(page.locator("[data-amount-due]").get_attribute("data-amount-due")) == total
    placed = states(journey_app, numbers)
    assert [len(placed[n]["orders"]) for n in numbers] == [1, 1, 0]
    assert in_app(journey_app, lambda: _po_numbers(numbers[:2])) == ["PO-7731", "PO-7731"]


def _po_numbers(numbers):
    from sqlalchemy import select

    from portal.contracts.models import Contract
    from portal.extensions import db
    from portal.orders.models import Order

    return list(db.session.scalars(select(Order.po_number).join(Contract).where(
        Contract.number.in_(numbers)).order_by(Contract.number)))


def test_a_combined_bank_transfer_paid_by_card_instead(page, journey_app, account_links,
                                                       stripe_emulator):
    url, numbers = account_links(LEAD, SOON, LAPSED)
    before = states(journey_app, numbers)
    open_combined(page, url, 2)
    _amounts, total = shown(page)
    page.check("input[name=payment_method][value=bank_transfer]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    page.get_by_role("button", name="Pay by card instead").click()
    page.wait_for_url("**/renewal/pay")
    assert Decimal(page.locator(".amount-due").get_attribute("data-amount-due")) == total
    enter_card(page, "ok")
    page.wait_for_url("**/renewal/confirmation")
    after = assert_renewed_once(journey_app, stripe_emulator, numbers, before, total,
                                emails=("order-confirmation", "payment-received"))
    for number in numbers:  # the transfer order went, with all three contracts
        assert [status for status, *_ in after[number]["orders"]] == ["cancelled", "paid"]


@pytest.mark.parametrize("currency", ["EUR", "JPY"])
def test_three_contracts_paid_in_another_currency(page, journey_app, account_links, currency):
    url, numbers = account_links(LEAD, SOON, LAPSED)
    before = states(journey_app, numbers)
    open_combined(page, url, 2)
    page.select_option("#pay_currency", currency)
    page.locator("button[name=update]").click()
    page.locator(f'[data-amount-due][data-currency="{currency}"]').wait_for()
    amounts, total = shown(page)
    assert page.locator(".contract-row [data-fx-fee]").count() == 3  # each its own fee
    assert total == sum(amounts.values())
    page.check("input[name=payment_method][value=bank_transfer]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    reference = page.locator("[data-payment-reference]").get_attribute("data-payment-reference")
    run = journey_app.test_cli_runner().invoke(args=[
        "orders", "record-payment", reference, "--amount", str(total), "--currency", currency,
        "--reference", f"BANK-{currency}"])
    assert run.exit_code == 0, run.output
    after = states(journey_app, numbers)
    for number in numbers:
        assert after[number]["end_date"] == renewed_end(before[number]["end_date"]), number
        assert [(status, due) for status, _m, due in after[number]["orders"]] == [
            ("paid", amounts[number])], number
    assert after[numbers[0]]["payments"] == [(total, currency)]
