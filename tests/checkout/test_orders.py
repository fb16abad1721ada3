"""Placing orders from the quote page, offline payment, change requests, CSRF."""
import email
import email.policy
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.checkout.models import QuoteChangeRequest
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.orders.models import Order
from tests.checkout.conftest import csrf_token, field_value, open_checkout
from tests.conftest import make_app


def _order_form(page, **choices):
    data = {"csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
            "service_level": "basic", "term_months": "12", "pay_currency": "USD",
            "payment_method": "bank_transfer", "place": "1"}
    data.update(choices)
    return {key: value for key, value in data.items() if value is not None}


def _orders(contract):
    return db.session.scalars(select(Order).where(Order.contract_id == contract.id)).all()


def _confirmations(order):
    return db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key == f"order-confirmation:{order.reference}")).all()


def test_offline_order_then_recorded_payment_renews_the_contract(web, make_checkout, cli):
    contract, _, token = make_checkout()
    old_end = contract.end_date
    page = open_checkout(web, token).get_data(as_text=True)
    response = web.post("/renewal/order", data=_order_form(page))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/renewal/confirmation")
    [order] = _orders(contract)
    assert (order.status, order.method, str(order.amount_due)) == (
        "awaiting_payment", "bank_transfer", "900.0000")
    confirmation = web.get("/renewal/confirmation").get_data(as_text=True)
    assert order.reference in confirmation
    # A US customer pays the US company's account, which has a routing number, no IBAN.
    assert 'data-method="bank_transfer"' in confirmation and "Routing number" in confirmation
    assert "IBAN" not in confirmation
    assert "$900.00" in confirmation
    assert f'data-term-end="{order.term_end.isoformat()}"' in confirmation
    [message] = _confirmations(order)
    mail = email.message_from_bytes(message.mime, policy=email.policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert order.reference in mail["Subject"] and message.to == contract.account.contacts[0].email
    assert "$900.00" in text and "payment reference " + order.reference in text
    # The email carries the whole instructions, not a pointer to the order page.
    html = mail.get_body(("html",)).get_content()
    payee = ("Account holder", "Renewal Portal, Inc. (demo)", "Routing number", "000000000",
             "Account number", "000123456789", "Example National Bank")
    for body in (text, html):
        assert all(part in body for part in payee), body
        assert "are on your order page" not in body
    # Reopening the quote page shows the order waiting for payment, not a new quote.
    waiting = web.get("/renewal").get_data(as_text=True)
    assert 'data-reason="already_renewed"' in waiting and order.reference in waiting

    result = cli("orders", "record-payment", order.reference, "--amount", "900.00",
                 "--currency", "USD", "--reference", "BANK-77")
    assert result.exit_code == 0, result.output
    assert "renewed" in result.output
    db.session.refresh(contract)
    assert contract.end_date == old_end + (order.term_end - order.term_start) + timedelta(days=1)
    renewed = web.get("/renewal").get_data(as_text=True)
    assert 'data-reason="already_renewed"' in renewed
    assert 'data-status="paid"' in renewed and "Your contract is renewed" in renewed
    again = cli("orders", "record-payment", order.reference, "--amount", "900.00",
                "--currency", "USD", "--reference", "BANK-77")
    assert again.exit_code == 0 and "nothing changed" in again.output


@pytest.mark.parametrize("method, text", [
    ("check", "memo line"), ("paypal", "PayPal account"), ("paynearme", "PayNearMe store"),
])
def test_each_offline_method_has_its_instructions(web, make_checkout, method, text):
    _, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    web.post("/renewal/order", data=_order_form(page, payment_method=method))
    confirmation = web.get("/renewal/confirmation").get_data(as_text=True)
    assert f'data-method="{method}"' in confirmation and text in confirmation


def test_double_submit_places_one_order_and_one_email(web, make_checkout):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    form = _order_form(page)
    assert web.post("/renewal/order", data=form).status_code == 303
    assert web.post("/renewal/order", data=form).status_code == 303
    [order] = _orders(contract)
    assert len(_confirmations(order)) == 1


def test_update_button_and_get_never_place_an_order(web, make_checkout):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    web.get("/renewal?service_level=basic&term_months=12&pay_currency=USD"
            "&payment_method=bank_transfer&place=1")
    form = _order_form(page, term_months="36")
    del form["place"]
    form.update({"update": "1", "payment_method": "bank_transfer", "po_number": "PO-7",
                 "tax_id": "", "auto_renew": "y"})
    response = web.post("/renewal/order", data=form)
    # The amounts are shown by a page of their own (reloading it or going Back to it never
    # posts the form), with what the visitor chose and typed, once.
    assert response.status_code == 303
    assert response.headers["Location"] == (
        "/renewal?service_level=basic&term_months=36&pay_currency=USD")
    shown = web.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-amount-due="2400.00"' in shown
    assert re.search(r'checked id="payment_method-\d+" name="payment_method" type="radio" '
                     r'value="bank_transfer"', shown)
    assert 'value="PO-7"' in shown and 'checked id="auto_renew"' in shown
    again = web.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-amount-due="2400.00"' in again and 'value="PO-7"' not in again
    assert _orders(contract) == []


def test_update_with_a_bad_selection_is_shown_at_once(web, make_checkout):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    form = {**_order_form(page, term_months="99"), "update": "1"}
    del form["place"]
    response = web.post("/renewal/order", data=form)
    assert response.status_code == 400
    assert "data-amount-due" in response.get_data(as_text=True)
    assert _orders(contract) == []


def test_a_changed_amount_is_shown_again_not_ordered(web, make_checkout):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    response = web.post("/renewal/order", data=_order_form(page, term_months="36"))
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "amount due has changed" in body and 'data-amount-due="2400.00"' in body
    assert _orders(contract) == []


def test_card_method_without_card_payments_is_a_clear_error(web, make_checkout):
    """No provider configured (the test app has no card settings)."""
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    response = web.post("/renewal/order", data=_order_form(page, payment_method="visa"))
    assert response.status_code == 503
    assert "Card payments are not available" in response.get_data(as_text=True)
    assert _orders(contract) == []


@pytest.mark.parametrize("choices", [
    {"payment_method": "ideal"},  # offered in NL only
    {"payment_method": "solo"},
    {"payment_method": None},
    {"service_level": "production", "term_months": "36"},  # over the cap
    {"service_level": "gold"},
    {"term_months": "-12"},
    {"pay_currency": "XXX"},
    {"service_level": "x" * 200000},
    {"auto_renew": "y" * 10000},
])
def test_bad_order_input_changes_nothing(web, make_checkout, choices):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    response = web.post("/renewal/order", data=_order_form(page, **choices))
    if choices.get("auto_renew"):
        assert response.status_code == 303  # a ticked box, whatever its value
        return
    assert response.status_code == 400, (choices, response.status_code)
    assert "flash-error" in response.get_data(as_text=True)
    assert _orders(contract) == []


def test_posts_need_a_csrf_token(web, make_checkout):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    form = _order_form(page)
    del form["csrf_token"]
    assert web.post("/renewal/order", data=form).status_code == 400
    assert web.post("/renewal/order", data={**form, "csrf_token": "forged"}).status_code == 400
    assert web.post("/renewal/change-request",
                    data={"kind": "other", "message": "hi"}).status_code == 400
    assert _orders(contract) == []
    assert db.session.scalars(select(QuoteChangeRequest)).all() == []


def test_a_change_request_is_stored_and_acknowledged(web, make_checkout):
    contract, link, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "kind": "quantities",
            "message": "We need 5 licences instead of 2."}
    response = web.post("/renewal/change-request", data=data)
    assert response.status_code == 200
    assert "We have your request" in response.get_data(as_text=True)
    web.post("/renewal/change-request", data=data)  # a double click stores one request
    [change] = db.session.scalars(select(QuoteChangeRequest)).all()
    assert (change.contract_id, change.contact_id, change.link_reference, change.kind,
            change.message, change.status) == (contract.id, link.contact_id, link.reference,
                                               "quantities", data["message"], "open")


def test_quote_request_for_an_over_cap_option(web, make_checkout):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    response = web.post("/renewal/change-request", data={
        "csrf_token": csrf_token(page), "kind": "quote", "service_level": "production",
        "term_months": "36"})
    assert response.status_code == 200
    [change] = db.session.scalars(select(QuoteChangeRequest)).all()
    assert change.kind == "quote" and "production, 36 months" in change.message


@pytest.mark.parametrize("data", [
    {"kind": "other", "message": ""},
    {"kind": "bogus", "message": "x"},
    {"kind": "other", "message": "x" * 5000},
    # The option a quote request names must be one the quote offers (tampered fields).
    {"kind": "quote", "service_level": "zzz", "term_months": "999"},
    {"kind": "quote", "service_level": "production", "term_months": "999"},
    {"kind": "quote", "service_level": "zzz"},
    {"kind": "quote", "term_months": "36"},
])
def test_bad_change_requests_are_refused(web, make_checkout, data):
    _, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    response = web.post("/renewal/change-request", data={"csrf_token": csrf_token(page), **data})
    assert response.status_code == 400
    assert 'class="error"' in response.get_data(as_text=True)
    assert db.session.scalars(select(QuoteChangeRequest)).all() == []


def test_checkout_pages_need_the_link_session(web, make_checkout):
    for path in ("/renewal", "/renewal/confirmation"):
        assert web.get(path).status_code == 403
    assert web.post("/renewal/order", data={}).status_code == 400  # no CSRF token


def test_an_expired_offline_order_lets_the_customer_order_again(web, make_checkout, cli, today):
    contract, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    web.post("/renewal/order", data=_order_form(page))
    assert 'data-reason="already_renewed"' in web.get("/renewal").get_data(as_text=True)
    result = cli("orders", "expire", "--date", (today + timedelta(days=31)).isoformat())
    assert result.exit_code == 0
    again = web.get("/renewal").get_data(as_text=True)
    assert "data-reason" not in again and 'data-amount-due="900.00"' in again


def test_order_posts_are_rate_limited(web, make_checkout):
    _, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    form = {**_order_form(page), "update": "1"}
    del form["place"]
    responses = [web.post("/renewal/order", data=form) for _ in range(21)]
    assert [r.status_code for r in responses[:20]] == [303] * 20
    refused = responses[20]
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60  # the minute's window


def test_customers_behind_one_address_do_not_share_their_form_limit(web, app, make_checkout):
    """An office behind one NAT address: one customer's many posts do not block another's
    first order (each renewal link counts its own)."""
    _, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    form = {**_order_form(page), "update": "1"}
    del form["place"]
    assert [web.post("/renewal/order", data=form).status_code for _ in range(21)][-1] == 429
    colleague = app.test_client()
    colleague.environ_base["wsgi.url_scheme"] = "https"
    _, _, other_token = make_checkout()
    other_page = open_checkout(colleague, other_token).get_data(as_text=True)
    other_form = {**_order_form(other_page), "update": "1"}
    del other_form["place"]
    assert colleague.post("/renewal/order", data=other_form).status_code == 303


def test_the_confirmation_email_is_in_the_contact_email_language(web, make_checkout):
    contract, _, token = make_checkout(language="ko")
    page = open_checkout(web, token).get_data(as_text=True)
    assert '<html lang="ko"' in page
    web.post("/renewal/order", data=_order_form(page))
    [order] = _orders(contract)
    [message] = _confirmations(order)
    assert message.locale == "ko"


def test_switching_to_a_card_without_an_offline_order_changes_nothing(web, make_checkout):
    _contract, _link, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    assert web.post("/renewal/order/card", data={}).status_code == 400  # no CSRF token
    response = web.post("/renewal/order/card", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 409  # no offline order to switch
    assert db.session.scalars(select(Order)).all() == []


def test_the_order_form_address_opened_again_leads_to_the_quote_page(web, make_checkout):
    """After a refused order the address bar shows /renewal/order: opening it (a bookmark,
    Enter in the address bar) is the quote page, not an error."""
    _, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    # The browser does not put back on Back what the visitor had chosen before an update
    # (the page's amounts are for the choice in its address).
    assert 'class="order-form" novalidate autocomplete="off"' in page
    response = web.get("/renewal/order")
    assert response.status_code == 303 and response.headers["Location"] == "/renewal"


def test_pages_without_a_limit_stay_open_once_the_forms_are_limited(web, make_checkout):
    """Limits are set on the views that take forms; the quote page itself is not counted."""
    _, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    form = {**_order_form(page), "update": "1"}
    del form["place"]
    assert [web.post("/renewal/order", data=form).status_code for _ in range(21)][-1] == 429
    assert {web.get("/renewal").status_code for _ in range(25)} == {200}


def test_an_app_set_up_without_limits_leaves_the_others_limited(web, make_checkout, tmp_path):
    """One limiter serves every app of a process: an app that turns limits off (the
    browser journeys) does not turn them off for the others."""
    unlimited = make_app("sqlite://", tmp_path, RATELIMIT_ENABLED=False)
    assert unlimited.config["RATELIMIT_ENABLED"] is False
    _, _, token = make_checkout()
    page = open_checkout(web, token).get_data(as_text=True)
    form = {**_order_form(page), "update": "1"}
    del form["place"]
    assert [web.post("/renewal/order", data=form).status_code for _ in range(21)][-1] == 429
