"""One order for several contracts of an account ("Orders with several contracts" in
docs/rules.md): the page that lists them, one payment, one reference, refunds per contract."""
import email
import email.policy
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from babel.numbers import format_currency
from sqlalchemy import select

from portal.checkout.services import fresh_quote, fresh_quotes
from portal.extensions import db
from portal.invoices.services import credit_note_for, invoice_for, issue_credit_note
from portal.mail.models import OutboxMessage
from portal.orders.models import Order
from portal.orders.refunds import refund_renewal
from portal.orders.services import OrderError, place_combined_order, place_order
from portal.partners.services import contract_document
from portal.renewals.services import issue_quote
from tests import factories
from tests.access import https_client, sales_user, sign_in  # noqa: F401 (a fixture)
from tests.checkout.conftest import amount_due, csrf_token, field_value, open_checkout


@pytest.fixture
def account_contracts(make_checkout, today):
    """A contract whose link is used (45 days to go), and three more of its account: one
    ending in 20 days, one lapsed 10 days ago, one not due (200 days); plus another
    account's contract ending in 20 days."""
    lead, link, token = make_checkout(45)
    plist = lead.price_list
    account = lead.account
    soon = factories.contract(plist, account=account, end_date=today + timedelta(days=20),
                              lines=[("VS-ENT", 1)], level="production")
    lapsed = factories.contract(plist, account=account, end_date=today - timedelta(days=10),
                                lines=[("VS-ENT", 1)])
    later = factories.contract(plist, account=account, end_date=today + timedelta(days=200))
    stranger = factories.contract(plist, end_date=today + timedelta(days=20))
    return {"lead": lead, "soon": soon, "lapsed": lapsed, "later": later,
            "stranger": stranger, "token": token}


def _orders(*contracts):
    return db.session.scalars(select(Order).where(
        Order.contract_id.in_([c.id for c in contracts])).order_by(Order.id)).all()


def _form(page, contracts, **values):
    data = {"csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
            "contract": [str(c.id) for c in contracts], "pay_currency": "USD",
            "payment_method": "bank_transfer", "place": "1"}
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


def _shown_total(page):
    return amount_due(page)


def _place_lead_and_soon(web, c):
    """The link's contract and the one ending in 20 days ordered together by bank
    transfer from the combined page: ``(payer, member)``."""
    open_checkout(web, c["token"])
    page = _choose(web, [c["lead"], c["soon"]])
    assert web.post("/renewal/contracts",
                    data=_form(page, [c["lead"], c["soon"]])).status_code == 303
    return _orders(c["lead"], c["soon"])


def _choose(web, contracts):
    """Tick ``contracts`` on the combined page and update the amounts: the page shown."""
    page = web.get("/renewal/contracts").get_data(as_text=True)
    response = web.post("/renewal/contracts", data=_form(page, contracts, place=None,
                                                         update="1"))
    assert response.status_code == 303, response.get_data(as_text=True)
    response = web.get(response.headers["Location"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_quote_page_mentions_the_other_due_contracts(web, account_contracts, today):
    page = open_checkout(web, account_contracts["token"]).get_data(as_text=True)
    assert 'data-other-due="2"' in page  # the 20-day and the lapsed one; not 200 days
    listing = web.get("/renewal/contracts").get_data(as_text=True)
    shown = re.findall(r'<section class="contract-row[^"]*" data-contract="([^"]+)"', listing)
    c = account_contracts
    assert shown == [c["lead"].number, c["lapsed"].number, c["soon"].number]
    assert c["later"].number not in listing and c["stranger"].number not in listing
    # Each with its own option and fees: the lapsed one carries its reinstatement fee.
    lapsed_row = listing.split(f'data-contract="{c["lapsed"].number}"')[1].split("</section>")[0]
    assert "data-reinstatement-fee" in lapsed_row and "data-backdated-fee" in lapsed_row
    assert 'data-chosen="true"' in lapsed_row and "data-term-fee" in lapsed_row
    # Paid in euros, each row shows its conversion and fee.
    in_eur = web.get("/renewal/contracts?pay_currency=EUR").get_data(as_text=True)
    rows = in_eur.split('class="summary"')[0]
    assert rows.count("data-converted=") == 3 and rows.count("data-fx-fee=") == 3
    # A contract that an open order holds is no longer counted as one to add.
    place_order(fresh_quote(c["soon"], today), "production", 12, "USD", "bank_transfer",
                contact_id=None, today=today, actor="test")
    quote_page = web.get("/renewal").get_data(as_text=True)
    assert 'data-other-due="1"' in quote_page and "Renew it together with this one" in quote_page
    # Nor one whose quote is over the online limit.
    c["lapsed"].lines[0].quantity = 50
    assert issue_quote(c["lapsed"], today).reason == "over_cap"
    assert 'data-other-due' not in web.get("/renewal").get_data(as_text=True)


def test_three_contracts_one_bank_transfer_one_reference(web, account_contracts, cli):
    c = account_contracts
    open_checkout(web, c["token"])
    page = web.get("/renewal/contracts").get_data(as_text=True)
    chosen = [c["lead"], c["soon"], c["lapsed"]]
    ends = {contract.id: contract.end_date for contract in chosen}
    response = web.post("/renewal/contracts", data=_form(page, chosen))
    assert response.status_code == 303, response.get_data(as_text=True)
    orders = _orders(*chosen)
    assert len(orders) == 3
    payer = next(o for o in orders if o.combined_into_id is None)
    assert payer.contract_id == c["lead"].id
    assert all(o.combined_into_id == payer.id for o in orders if o is not payer)
    assert {o.status for o in orders} == {"awaiting_payment"}
    total = sum(o.amount_due for o in orders)
    assert payer.amount_payable == total
    assert _shown_total(page) == (f"{total:.2f}", "USD")
    confirmation = web.get("/renewal/confirmation").get_data(as_text=True)
    assert f'data-amount-due="{total:.2f}" data-currency="USD"' in confirmation
    assert all(f'data-contract="{x.number}"' in confirmation for x in chosen)
    # The payment instructions ask for the whole amount, not the first contract's.
    whole = format_currency(total, "USD", locale="en_US")
    assert f'Please pay <bdi class="amount">{whole}</bdi> with' in confirmation.split(
        'class="instructions"')[1]
    [message] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key.like("order-confirmation:%"))).all()
    text = email.message_from_bytes(message.mime, policy=email.policy.default).get_body(
        ("plain",)).get_content()
    assert all(x.number in text for x in chosen) and payer.reference in text
    assert "Your contracts renew as soon as" in text  # one payment for all of them
    assert message.subject == (f"Order {payer.reference}: renewal of contracts "
                               + ", ".join(x.number for x in (c["lead"], c["lapsed"], c["soon"])))
    assert f"Please pay {whole} with" in text and f"Amount: {whole}\r\n" in text
    # One member's amount alone is refused; the whole amount on the one reference renews all.
    short = cli("orders", "record-payment", payer.reference, "--amount",
                f"{payer.amount_due:.2f}", "--currency", "USD", "--reference", "BANK-1")
    assert short.exit_code != 0
    assert {o.status for o in _orders(*chosen)} == {"awaiting_payment"}
    paid = cli("orders", "record-payment", payer.reference, "--amount", f"{total:.2f}",
               "--currency", "USD", "--reference", "BANK-2")
    assert paid.exit_code == 0, paid.output
    assert all(f"{x.number} renewed" in paid.output for x in chosen)
    for order in _orders(*chosen):
        db.session.refresh(order.contract)
        assert order.status == "paid"
        assert order.contract.end_date == order.term_end != ends[order.contract_id]
    assert "Your contracts are renewed" in web.get("/renewal/confirmation").get_data(
        as_text=True)
    [received] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key == f"payment-received:{payer.reference}")).all()
    assert received.subject.startswith("Payment received: contracts ")
    invoice = invoice_for(payer)
    assert [s["contract"] for s in invoice.content["contracts"]] == [  # as the page lists them
        c["lead"].number, c["lapsed"].number, c["soon"].number]
    assert Decimal(invoice.content["total_paid"]) == total == invoice.total


def test_refund_of_one_contract_is_a_part_of_the_one_payment(web, account_contracts, cli,
                                                               today):
    c = account_contracts
    payer, member = _place_lead_and_soon(web, c)
    total = payer.amount_payable
    assert cli("orders", "record-payment", payer.reference, "--amount", f"{total:.2f}",
               "--currency", "USD", "--reference", "BANK-3").exit_code == 0
    refund, refunded_now = refund_renewal(c["soon"].id, today, "customer", card_provider=None)
    assert refunded_now and refund.order_id == member.id
    assert refund.amount == member.amount_due  # within 60 days: in full, that contract only
    db.session.refresh(member)
    db.session.refresh(payer)
    assert (member.status, payer.status) == ("refunded", "paid")
    assert c["soon"].end_date == member.previous_end_date
    assert c["lead"].end_date == payer.term_end
    note = credit_note_for(refund) or issue_credit_note(refund)
    assert note.content["contract"] == c["soon"].number
    assert note.content["order"] == payer.reference  # the reference the customer paid
    assert note.content["invoice_number"] == invoice_for(payer).number
    assert "contracts" not in note.content


def test_a_contract_ordered_again_alone_cancels_the_combined_card_order(account_contracts,
                                                                          today):
    c = account_contracts
    quotes = [(fresh_quote(c["lead"], today), "basic", 12),
              (fresh_quote(c["soon"], today), "production", 12)]
    placed = place_combined_order(quotes, "USD", "visa", contact_id=None, today=today,
                                  actor="test")
    assert {o.status for o in placed} == {"pending"}
    assert place_combined_order(quotes, "USD", "visa", contact_id=None, today=today,
                                actor="test") == placed  # the same choice again: the same order
    # The 20-day contract is ordered alone (from its own link): the combined order goes,
    # so its payment, if it still came, could not renew that contract twice.
    alone = place_order(fresh_quote(c["soon"], today), "production", 12, "USD", "visa",
                        contact_id=None, today=today, actor="test")
    assert {o.status for o in placed} == {"cancelled"}
    assert alone.status == "pending" and alone.combined_into_id is None


def test_a_contract_that_cannot_be_ordered_places_nothing(account_contracts, today):
    c = account_contracts
    quotes = [(fresh_quote(c["lead"], today), "basic", 12),
              (fresh_quote(c["soon"], today), "production", 12)]
    c["soon"].end_date += timedelta(days=365)  # renewed meanwhile: its quote is stale
    with pytest.raises(OrderError) as refused:
        place_combined_order(quotes, "USD", "visa", contact_id=None, today=today, actor="test")
    assert refused.value.code == "quote_expired" and c["soon"].number in str(refused.value)
    assert _orders(c["lead"], c["soon"]) == []


@pytest.mark.parametrize("values", [
    {"contract": ["abc", "-1", "9" * 30]},
    {"option-1": "gold|99"},
    {"pay_currency": "XXX"},
    {"payment_method": "cash"},
    {"contract": []},
])
def test_bad_combined_input_changes_nothing(web, account_contracts, values):
    c = account_contracts
    open_checkout(web, c["token"])
    page = web.get("/renewal/contracts").get_data(as_text=True)
    data = _form(page, [c["lead"], c["soon"]])
    data.update(values)
    response = web.post("/renewal/contracts", data=data)
    assert response.status_code in (400, 409), response.status_code
    assert 'class="flash flash-error"' in response.get_data(as_text=True)
    assert _orders(c["lead"], c["soon"], c["lapsed"]) == []


def test_another_accounts_contract_cannot_be_added(web, account_contracts):
    c = account_contracts
    open_checkout(web, c["token"])
    page = web.get("/renewal/contracts").get_data(as_text=True)
    data = _form(page, [c["lead"], c["stranger"]])
    updated = web.post("/renewal/contracts", data=dict(data, place=None, update="1"))
    assert updated.status_code == 400  # not a contract the page offers: said so
    assert c["stranger"].number not in updated.get_data(as_text=True)
    response = web.post("/renewal/contracts", data=data)
    # The stranger's id is not among the contracts shown: the order is the lead alone,
    # and the total the visitor saw (for two of their own) no longer matches.
    assert response.status_code in (400, 409)
    assert _orders(c["stranger"]) == []


def test_staff_and_partners_see_the_combined_order_on_each_contract(web, account_contracts,
                                                                    app, sales_user, today):
    c = account_contracts
    payer, member = _place_lead_and_soon(web, c)
    total = f"{payer.amount_payable:.2f}"
    desk = https_client(app)
    assert sign_in(desk, sales_user.email).status_code == 303
    for contract in (c["lead"], c["soon"]):
        console = desk.get(f"/staff/contracts/{contract.number}").get_data(as_text=True)
        assert f'data-combined-order="{payer.reference}"' in console
        assert c["lead"].number in console and c["soon"].number in console and total in console
        shown = contract_document(contract, today)["renewal"]["open_order"]
        assert shown["combined_order"] == {
            "reference": payer.reference, "contracts": [c["lead"].number, c["soon"].number],
            "amount_due": total}
    # The desk records the one payment on the member contract's page with its reference.
    recorded = desk.post(f"/staff/contracts/{c['soon'].number}/payment", data={
        "order": payer.reference, "amount": total, "currency": "USD",
        "received_on": today.isoformat(), "reference": "BANK-900",
        "csrf_token": csrf_token(desk.get("/staff/sign-in").get_data(as_text=True))})
    assert recorded.status_code == 303
    db.session.refresh(payer)
    db.session.refresh(member)
    assert (payer.status, member.status) == ("paid", "paid")
    assert contract_document(c["soon"], today)["renewal"]["open_order"] is None


def test_update_and_a_changed_total_keep_the_method_and_billing_details(web, account_contracts):
    c = account_contracts
    open_checkout(web, c["token"])
    page = web.get("/renewal/contracts").get_data(as_text=True)
    kept = re.compile(r'checked id="payment_method-\d+" name="payment_method" type="radio" '
                      r'value="bank_transfer"')
    data = _form(page, [c["lead"], c["soon"]], po_number="PO-31")
    updated = web.post("/renewal/contracts", data=dict(data, place=None, update="1"))
    # Shown by a page of its own: reloading it or going Back to it never posts the form.
    assert updated.status_code == 303
    shown = web.get(updated.headers["Location"]).get_data(as_text=True)
    assert kept.search(shown) and 'value="PO-31"' in shown
    assert 'value="PO-31"' not in web.get(updated.headers["Location"]).get_data(as_text=True)
    changed = web.post("/renewal/contracts", data=data)  # shown for three, two ticked
    assert changed.status_code == 409
    assert kept.search(changed.get_data(as_text=True)) and 'value="PO-31"' in changed.get_data(
        as_text=True)
    assert _orders(c["lead"], c["soon"], c["lapsed"]) == []


def test_changing_the_method_of_a_combined_card_order_opens_the_combined_page(
        app, account_contracts, today):
    from urllib.parse import parse_qs, urlsplit

    from portal.checkout.routes import change_method_url

    c = account_contracts
    quotes = [(fresh_quote(c["lead"], today), "basic", 12),
              (fresh_quote(c["soon"], today), "production", 36)]
    payer, member = place_combined_order(quotes, "USD", "visa", contact_id=None, today=today,
                                         actor="test")
    alone = place_order(fresh_quote(c["lapsed"], today), "basic", 12, "USD", "visa",
                        contact_id=None, today=today, actor="test")
    with app.test_request_context():
        for order in (payer, member):  # the same from either order of it
            url = urlsplit(change_method_url(order))
            assert url.path == "/renewal/contracts"
            assert parse_qs(url.query) == {
                "contract": [str(c["lead"].id), str(c["soon"].id)], "pay_currency": ["USD"],
                f"option-{c['lead'].id}": ["basic|12"],
                f"option-{c['soon'].id}": ["production|36"]}
        assert change_method_url(alone) == "/renewal"


def test_quotes_of_many_contracts_are_fresh_as_each_alone(account_contracts, today,
                                                           make_checkout):
    """The combined page reads the quotes of all its contracts at once: each is the one
    the contract's own page shows (a stale one is issued again)."""
    c = account_contracts
    stale = fresh_quote(c["soon"], today)
    c["soon"].end_date += timedelta(days=1)  # moved on since its quote
    fresh_quote(c["lapsed"], today)  # a valid quote, kept
    awaiting, _link, _token = make_checkout(30)
    place_order(fresh_quote(awaiting, today), "basic", 12, "USD", "bank_transfer",
                contact_id=None, today=today, actor="test")
    cancelled, _link, _token = make_checkout(30, status="cancelled")
    contracts = [c["lead"], c["soon"], c["lapsed"], awaiting, cancelled]
    batch = fresh_quotes(contracts, today)
    assert batch[c["soon"].id].id != stale.id
    for contract in contracts:
        assert fresh_quote(contract, today).id == batch[contract.id].id, contract.number
    assert (batch[awaiting.id].reason, batch[cancelled.id].reason) == (
        "already_renewed", "cancelled")
    assert batch[c["lapsed"].id].eligible and batch[c["lead"].id].eligible


def _decimals(html, attribute, inside=""):
    """The decimal values of ``attribute`` in ``html`` (after the marker ``inside``)."""
    part = html.split(inside, 1)[1] if inside else html
    return [Decimal(value) for value in re.findall(rf'{attribute}="([0-9.]+)"', part)]


def test_paying_in_another_currency_the_summary_shows_the_conversion_fees(
        web, account_contracts):
    c = account_contracts
    chosen = [c["lead"], c["soon"], c["lapsed"]]
    open_checkout(web, c["token"])
    query = "&".join(f"contract={x.id}" for x in chosen)
    page = web.get(f"/renewal/contracts?{query}&pay_currency=EUR").get_data(as_text=True)
    rows, summary = page.split('class="summary"', 1)
    row_fees = _decimals(rows, "data-fx-fee")
    assert len(row_fees) == 3 and all(row_fees)
    [summary_fee] = _decimals(summary, "data-fx-fee")
    assert summary_fee == sum(row_fees)  # each contract's fee, rounded on its own
    converted = _decimals(summary, "data-summary-amount")
    total = Decimal(amount_due(page)[0])
    assert len(converted) == 3 and sum(converted) + summary_fee == total
    assert web.post("/renewal/contracts", data=_form(page, chosen, pay_currency="EUR")
                    ).status_code == 303
    orders = _orders(*chosen)
    assert sum(o.fx_fee for o in orders) == summary_fee  # what the order charges
    assert sum(o.amount_due for o in orders) == total


def test_paying_in_the_quote_currency_the_summary_has_no_conversion_fee(
        web, account_contracts):
    c = account_contracts
    open_checkout(web, c["token"])
    page = web.get("/renewal/contracts").get_data(as_text=True)
    summary = page.split('class="summary"', 1)[1]
    assert "data-fx-fee" not in page
    assert sum(_decimals(summary, "data-summary-amount")) == Decimal(amount_due(page)[0])


def test_the_combined_page_groups_the_payment_methods_as_the_quote_page(
        web, account_contracts):
    open_checkout(web, account_contracts["token"])
    single = web.get("/renewal").get_data(as_text=True)
    combined = web.get("/renewal/contracts").get_data(as_text=True)

    def groups(html):
        """``[(group title id, [method codes])]`` of the methods fieldset."""
        fieldset = re.search(r'<fieldset class="methods">.*?</fieldset>', html, re.S).group(0)
        return [(re.search(r'id="([a-z-]+)"', group).group(1),
                 re.findall(r'name="payment_method" type="radio" value="([a-z_]+)"', group))
                for group in fieldset.split('<div class="method-group')[1:]]

    assert [name for name, _ in groups(combined)] == ["card-methods", "other-methods"]
    card, other = dict(groups(combined))["card-methods"], dict(groups(combined))["other-methods"]
    assert "visa" in card and "bank_transfer" in other and "bank_transfer" not in card
    assert 'class="method card-brand card-brand-visa"' in combined
    assert groups(combined) == groups(single)  # the same markup, the same methods


def test_back_to_the_combined_page_after_paying_shows_it_as_it_is_now(web, account_contracts,
                                                                      cli):
    """The address an update led to, opened again after the order was paid (Back, a
    bookmark): no error, the paid contracts no longer in the order."""
    c = account_contracts
    open_checkout(web, c["token"])
    page = web.get("/renewal/contracts").get_data(as_text=True)
    updated = web.post("/renewal/contracts", data=_form(page, [c["lead"], c["soon"]],
                                                        place=None, update="1"))
    address = updated.headers["Location"]
    page = web.get(address).get_data(as_text=True)
    assert web.post("/renewal/contracts",
                    data=_form(page, [c["lead"], c["soon"]])).status_code == 303
    payer = _orders(c["lead"], c["soon"])[0].payer
    assert cli("orders", "record-payment", payer.reference, "--amount",
               f"{payer.amount_payable:.2f}", "--currency", "USD",
               "--reference", "BANK-BACK").exit_code == 0
    assert 'novalidate autocomplete="off" data-combined-order' in page
    assert "<bdi>2 × " in page  # each product of a row isolated (quantity, name)
    again = web.get(address)
    html = again.get_data(as_text=True)
    assert again.status_code == 200
    assert 'class="flash flash-error"' not in html
    assert f'data-contract="{c["lead"].number}" data-chosen="false"' in html
    assert _orders(c["lead"], c["soon"]) == [payer, *payer.combined_orders]
    # Posted now, the same choice is refused and said so.
    refused = web.post("/renewal/contracts", data=_form(page, [c["lead"], c["soon"]]))
    assert refused.status_code in (400, 409)


def test_a_combined_order_placed_after_the_link_contract_was_renewed_is_the_one_confirmed(
        web, account_contracts, cli):
    """The link's own contract is paid; the visitor then orders two others together from
    the same link: the confirmation shows that new order and how to pay it."""
    c = account_contracts
    page = open_checkout(web, c["token"]).get_data(as_text=True)
    placed = web.post("/renewal/order", data={
        "csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
        "service_level": field_value(page, "service_level"),
        "term_months": field_value(page, "term_months"), "pay_currency": "USD",
        "payment_method": "bank_transfer", "place": "1"})
    assert placed.status_code == 303, placed.get_data(as_text=True)
    [own] = _orders(c["lead"])
    assert cli("orders", "record-payment", own.reference, "--amount", f"{own.amount_due:.2f}",
               "--currency", "USD", "--reference", "BANK-OWN").exit_code == 0
    others = [c["soon"], c["lapsed"]]
    page = _choose(web, others)
    assert web.post("/renewal/contracts", data=_form(page, others)).status_code == 303
    [payer] = [o for o in _orders(*others) if o.combined_into_id is None]
    confirmation = web.get("/renewal/confirmation").get_data(as_text=True)
    assert payer.reference in confirmation
    assert own.reference not in confirmation
    assert all(f'data-contract="{x.number}"' in confirmation for x in others)
    assert 'class="instructions"' in confirmation  # how to pay the new order
    # The link's own order is shown again once this visitor's newer order is gone.
    with web.session_transaction() as session:
        del session["order_id"]
    assert own.reference in web.get("/renewal/confirmation").get_data(as_text=True)
