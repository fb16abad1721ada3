"""The renewals desk's work through the console, end to end through the test client."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.checkout.models import QuoteChangeRequest
from portal.contracts.models import Contact, Partner
from portal.extensions import db
from portal.links.models import RenewalLink
from portal.links.services import find_link, is_usable, issue_link
from portal.mail.models import OutboxMessage
from portal.mail.outbox import stage_email
from portal.markets.models import MarketLaunch
from portal.notices.models import NoticeRecord
from portal.orders.models import Payment
from portal.renewals.services import issue_quote, latest_quote
from portal.staff.accounts import find_staff
from tests.access import PASSWORD, email_text, https_client, post_form, sign_in


def _text(response):
    return response.get_data(as_text=True)


def _actions(contract, action):
    return db.session.scalars(select(AuditEntry).where(
        AuditEntry.target == contract.number, AuditEntry.action == action)).all()


# --- search ---


@pytest.fixture
def searchable(make_contract):
    first = make_contract(number="SNS-100200", email="eva@muster.example")
    first.account.name = "Muster GmbH"
    second = make_contract(number="SNS-100300")
    second.partner = Partner(code="RESELL-9", name="Reseller Nine")
    db.session.flush()
    return first, second


@pytest.mark.parametrize("query, found", [
    ("SNS-1002", ["SNS-100200"]),
    ("muster gmbh", ["SNS-100200"]),
    ("EVA@MUSTER", ["SNS-100200"]),
    ("resell-9", ["SNS-100300"]),
    ("SNS-100", ["SNS-100200", "SNS-100300"]),
    ("%", []),
    ("_", []),
    ("nothing like it", []),
])
def test_search(sales, searchable, query, found):
    page = _text(sales.get("/staff/", query_string={"q": query}))
    shown = re.findall(r'href="/staff/contracts/([^"]+)"', page)
    assert shown == found
    if not found:
        assert "No contract matches" in page


def test_contract_page_shows_the_whole_story(sales, make_contract, today):
    contract = make_contract(number="SNS-PAGE-1", email="pat@page.example")
    issue_quote(contract, today)
    db.session.add(NoticeRecord(contract_id=contract.id, end_date=contract.end_date,
                                milestone=60, run_date=today, recipients=1))
    notice = stage_email("pat@page.example", kind="notice", subject="Renew", body="B",
                         contract=contract)
    notice.status, notice.last_error = "retry", "421 try later"
    page = _text(sales.get("/staff/contracts/SNS-PAGE-1"))
    for expected in ("pat@page.example", "VS-ENT", "Current quote", "900.00 USD",
                     "Renewal links", "R-", "Audit log", "Regenerate the quote", "60 days",
                     "421 try later", "Emails and their delivery"):
        assert expected in page
    assert "Record an offline payment" not in page  # no order awaits payment
    assert sales.get("/staff/contracts/NO-SUCH").status_code == 404
    # Times to the minute, in UTC, said so (not "2026-11-29 22:46:43.893999").
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", page)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d{6}", page)


# --- regenerating quotes ---


def test_regenerate_supersedes_and_emails_a_fresh_link(app, sales, make_contract, today):
    contract = make_contract(number="SNS-REGEN-1", email="buyer@regen.example")
    old = issue_quote(contract, today)
    links_before = db.session.scalar(select(func.count(RenewalLink.id)))
    response = post_form(sales, "/staff/contracts/SNS-REGEN-1/quote",
                         {"qty-VS-ENT": "3", "qty-VS-ADD": "2", "notify": "y"})
    assert response.status_code == 303
    page = _text(sales.get(response.headers["Location"]))
    assert "New quote issued and emailed to buyer@regen.example" in page

    new = latest_quote(contract)
    assert new.id != old.id and new.issued_by == "sam.sales@portal.example"
    assert new.document["lines"] == [{"product_code": "VS-ADD", "quantity": 2},
                                     {"product_code": "VS-ENT", "quantity": 3}]
    basic_12 = new.document["quote"]["options"][0]
    assert (basic_12["service_level"], basic_12["term_months"], basic_12["total"]) == (
        "basic", 12, "1550.00")  # 3 x 450 + 2 x 100
    # The contract's own lines are untouched: the edit lives in the quote.
    assert [(line.product_code, line.quantity) for line in contract.lines] == [("VS-ENT", 2)]
    assert re.search(rf"Current quote #{new.id}:", page)
    assert re.search(rf"Superseded quote #{old.id}:", page)

    # One fresh link, emailed once, that opens the checkout.
    assert db.session.scalar(select(func.count(RenewalLink.id))) == links_before + 1
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "quote_regenerated"))
    assert message.to == "buyer@regen.example" and message.contract_id == contract.id
    body = email_text(message)
    assert "$1,550.00" in body and "Basic, 12 months" in body
    token = re.search(r"/r/([A-Za-z0-9_-]+)", body).group(1)
    link = find_link(token)
    assert link.contract_id == contract.id and link.purpose == "staff"
    assert is_usable(link, today)
    assert https_client(app).get(f"/r/{token}").status_code == 303

    actions = [e.action for e in db.session.scalars(select(AuditEntry).where(
        AuditEntry.target == contract.number, AuditEntry.actor == "sam.sales@portal.example"))]
    assert {"quote.regenerate", "link.issue", "email.stage"} <= set(actions)


def test_regenerate_without_email(sales, make_contract):
    contract = make_contract(number="SNS-REGEN-2")
    response = post_form(sales, "/staff/contracts/SNS-REGEN-2/quote", {"qty-VS-ENT": "2"})
    assert "no email was sent" in _text(sales.get(response.headers["Location"]))
    assert latest_quote(contract).document["lines"] == [{"product_code": "VS-ENT",
                                                         "quantity": 2}]
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


@pytest.mark.parametrize("form, message", [
    ({"qty-VS-ENT": "0"}, "a quote needs at least one product"),
    ({"qty-VS-ENT": "-1"}, "enter a whole number"),
    ({"qty-VS-ENT": "2.5"}, "enter a whole number"),
    ({"qty-VS-ENT": "99999999999"}, "enter a whole number"),
])
def test_regenerate_refuses_bad_quantities(sales, make_contract, form, message):
    contract = make_contract(number="SNS-REGEN-3")
    response = post_form(sales, "/staff/contracts/SNS-REGEN-3/quote", form)
    assert response.status_code == 303
    assert message in _text(sales.get(response.headers["Location"]))
    assert latest_quote(contract) is None
    assert not _actions(contract, "quote.regenerate")


def test_a_product_outside_the_price_list_cannot_be_quoted(sales, make_contract):
    contract = make_contract(number="SNS-REGEN-4")
    post_form(sales, "/staff/contracts/SNS-REGEN-4/quote", {"qty-VS-ENT": "1", "qty-OTHER": "5"})
    assert latest_quote(contract).document["lines"] == [{"product_code": "VS-ENT",
                                                         "quantity": 1}]


# --- offline payments ---


def _pay(client, contract, order, amount, currency="USD", reference="BANK-67", day=None):
    return post_form(client, f"/staff/contracts/{contract.number}/payment", {
        "order": order.reference, "amount": amount, "currency": currency,
        "received_on": (day or order.placed_at.date()).isoformat(), "reference": reference})


def _payments(order):
    return db.session.scalar(select(func.count(Payment.id)).where(Payment.order_id == order.id))


@pytest.mark.parametrize("amount, currency", [("899.99", "USD"), ("900.00", "EUR"),
                                              ("9000.00", "USD")])
def test_payment_mismatch_is_refused_and_alerts(sales, offline_order, amount, currency):
    contract, order = offline_order
    end = contract.end_date
    response = _pay(sales, contract, order, amount, currency)
    page = _text(sales.get(response.headers["Location"]))
    assert "Not done" in page and "expects 900.00 USD" in page
    db.session.refresh(contract)
    assert contract.end_date == end and order.status == "awaiting_payment"
    assert _payments(order) == 0
    mismatch = _actions(contract, "payment.mismatch")
    assert len(mismatch) == 1 and mismatch[0].actor == "sam.sales@portal.example"


def test_payment_renews_exactly_once(sales, offline_order):
    contract, order = offline_order
    response = _pay(sales, contract, order, "900.00")
    db.session.refresh(contract)
    assert contract.end_date == order.term_end
    assert f"the contract now runs until {order.term_end.isoformat()}" in _text(
        sales.get(response.headers["Location"]))
    # Submitted twice (a double click, a reload): nothing more happens.
    again = _pay(sales, contract, order, "900.00")
    assert "already recorded" in _text(sales.get(again.headers["Location"]))
    db.session.refresh(contract)
    assert contract.end_date == order.term_end
    assert _payments(order) == 1
    assert len(_actions(contract, "contract.renew")) == 1
    payment = db.session.scalar(select(Payment).where(Payment.order_id == order.id))
    assert (payment.amount, payment.currency, payment.provider_ref, payment.recorded_by) == (
        Decimal("900.00"), "USD", "BANK-67", "sam.sales@portal.example")
    page = _text(sales.get(f"/staff/contracts/{contract.number}"))
    assert '<td class="amount">900.00 USD</td>' in page
    assert "charge 900.00 USD" in page and "BANK-67" in page


def test_staff_cancel_an_offline_order_and_its_late_payment_waits_to_be_returned(
        sales, offline_order):
    contract, order = offline_order
    end = contract.end_date
    page = _text(sales.get(f"/staff/contracts/{contract.number}"))
    assert f"/orders/{order.reference}/cancel" in page
    url = f"/staff/contracts/{contract.number}/orders/{order.reference}/cancel"
    refused = post_form(sales, url, {"reason": ""})  # the reason is required
    assert "Not done" in _text(sales.get(refused.headers["Location"]))
    db.session.refresh(order)
    assert order.status == "awaiting_payment"
    done = post_form(sales, url, {"reason": "Customer will pay through their reseller"})
    assert f"Order {order.reference} cancelled." in _text(sales.get(done.headers["Location"]))
    db.session.refresh(order)
    assert (order.status, order.cancelled_by, order.cancel_reason) == (
        "cancelled", "sam.sales@portal.example", "Customer will pay through their reseller")
    assert len(_actions(contract, "order.cancel")) == 1
    # The customer is told, once, with the reason.
    [told] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key == f"order-cancelled:{order.reference}")).all()
    text = email_text(told)
    assert told.to == contract.account.contacts[0].email and order.reference in told.subject
    assert "Reason: Customer will pay through their reseller" in text
    assert contract.number in text and "Nothing is due for this order" in text
    again = post_form(sales, url, {"reason": "twice"})
    assert "only an order awaiting payment" in _text(sales.get(again.headers["Location"]))
    # The bank transfer arrives anyway: refused clearly, kept for the desk to pay back.
    response = _pay(sales, contract, order, "900.00", reference="BANK-LATE")
    page = _text(sales.get(response.headers["Location"]))
    assert "Not done" in page and "is cancelled" in page and "paid back" in page
    db.session.refresh(contract)
    assert contract.end_date == end
    payment = db.session.scalar(select(Payment).where(Payment.order_id == order.id))
    assert (payment.kind, payment.provider_ref) == ("to_return", "BANK-LATE")
    refunds = _text(sales.get("/staff/refunds"))
    assert 'data-to-return="BANK-LATE"' in refunds and order.reference in refunds
    _pay(sales, contract, order, "900.00", reference="BANK-LATE")  # recorded twice: once
    assert _payments(order) == 1
    assert len(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.key == f"order-cancelled:{order.reference}")).all()) == 1


@pytest.mark.parametrize("field, value, message", [
    ("amount", "abc", "not written as digits"),
    ("amount", "NaN", "not written as digits"),
    ("amount", "1e5", "not written as digits"),
    ("amount", "899.995", "more decimals than USD allows"),
    ("received_on", "2026-02-30", "Not a valid date"),
    ("currency", "XXX", "unknown currency"),
    ("reference", "", "This field is required"),
    ("reference", "B", "must be 2 to 128 characters"),
    ("order", "RN-NOPE", "unknown order reference"),
])
def test_payment_form_errors_change_nothing(sales, offline_order, field, value, message):
    contract, order = offline_order
    data = {"order": order.reference, "amount": "900.00", "currency": "USD",
            "received_on": order.placed_at.date().isoformat(), "reference": "BANK-1", field: value}
    response = post_form(sales, f"/staff/contracts/{contract.number}/payment", data)
    assert response.status_code == 303
    assert message in _text(sales.get(response.headers["Location"]))
    assert order.status == "awaiting_payment" and _payments(order) == 0


def test_payment_dated_in_the_future_is_refused(sales, offline_order, today):
    contract, order = offline_order
    response = _pay(sales, contract, order, "900.00", day=today + timedelta(days=2))
    assert "in the future" in _text(sales.get(response.headers["Location"]))
    assert _payments(order) == 0


# --- links ---


def test_revoke_link(app, sales, make_contract, today):
    contract = make_contract(number="SNS-LINK-1")
    link, token = issue_link(contract, contract.account.contacts[0], purpose="test")
    db.session.commit()
    url = f"/staff/contracts/SNS-LINK-1/links/{link.reference}/revoke"
    response = post_form(sales, url, {})
    assert f"Link {link.reference} revoked" in _text(sales.get(response.headers["Location"]))
    assert not is_usable(link, today)
    assert https_client(app).get(f"/r/{token}").status_code == 404
    again = post_form(sales, url, {})
    assert "already revoked" in _text(sales.get(again.headers["Location"]))
    assert len(_actions(contract, "link.revoke")) == 1
    # A link of another contract is not reachable through this one.
    other = make_contract(number="SNS-LINK-2")
    other_link, _ = issue_link(other, other.account.contacts[0])
    assert post_form(sales, f"/staff/contracts/SNS-LINK-1/links/{other_link.reference}/revoke",
                     {}).status_code == 404
    assert other_link.revoked_at is None


def test_resend_link_emails_a_fresh_one(sales, make_contract, today):
    contract = make_contract(number="SNS-LINK-3", email="again@resend.example")
    link = db.session.scalar(select(RenewalLink).where(RenewalLink.contract_id == contract.id))
    response = post_form(sales, f"/staff/contracts/SNS-LINK-3/links/{link.reference}/resend", {})
    assert "A fresh link was emailed to again@resend.example" in _text(
        sales.get(response.headers["Location"]))
    fresh = db.session.scalar(select(RenewalLink).where(RenewalLink.purpose == "resend"))
    assert fresh.contact_id == link.contact_id and fresh.id != link.id
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to == "again@resend.example"))
    assert fresh.reference in email_text(message)


# --- quote change requests and the outbox ---


def test_answer_a_change_request(sales, make_contract):
    contract = make_contract(number="SNS-ASK-1", email="asker@ask.example")
    contact = db.session.scalar(select(Contact).where(Contact.email == "asker@ask.example"))
    item = QuoteChangeRequest(contract_id=contract.id, contact_id=contact.id, kind="term",
                              message="Can we have 36 months?", status="open")
    db.session.add(item)
    db.session.commit()
    assert "Can we have 36 months?" in _text(sales.get("/staff/requests"))
    response = post_form(sales, f"/staff/requests/{item.id}/answer",
                         {"answer": "Yes: a new quote is on its way."})
    assert "Answer sent for contract SNS-ASK-1" in _text(sales.get(response.headers["Location"]))
    assert item.status == "answered" and item.answer == "Yes: a new quote is on its way."
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "request_answered"))
    assert message.to == "asker@ask.example"
    assert "Yes: a new quote is on its way." in email_text(message)
    assert "Can we have 36 months?" not in _text(sales.get("/staff/requests"))
    assert "Can we have 36 months?" in _text(sales.get("/staff/requests?status=answered"))
    again = post_form(sales, f"/staff/requests/{item.id}/answer", {"answer": "Twice?"})
    assert "already answered" in _text(sales.get(again.headers["Location"]))
    assert item.answer == "Yes: a new quote is on its way."
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 1
    assert post_form(sales, "/staff/requests/999999/answer", {"answer": "x"}).status_code == 404


def test_retry_a_failed_email(sales, make_contract):
    contract = make_contract(number="SNS-MAIL-1")
    failed = stage_email("bounce@mail.example", kind="notice", subject="S", body="B",
                         contract=contract)
    failed.status, failed.attempts, failed.last_error = "failed", 12, "550 no such user"
    db.session.commit()
    page = _text(sales.get("/staff/outbox"))
    assert "bounce@mail.example" in page and "550 no such user" in page
    assert "bounce@mail.example" in _text(sales.get("/staff/contracts/SNS-MAIL-1"))
    post_form(sales, f"/staff/outbox/{failed.id}/retry", {})
    assert (failed.status, failed.attempts) == ("retry", 0)
    assert failed.next_attempt_at is not None
    again = post_form(sales, f"/staff/outbox/{failed.id}/retry", {})
    assert "not failed" in _text(sales.get(again.headers["Location"]))


# --- admin ---


def test_admin_adds_and_deactivates_staff(app, admin):
    response = post_form(admin, "/staff/admin/staff", {
        "email": "new.desk@portal.example", "role": "sales", "password": PASSWORD})
    assert response.status_code == 303
    user = find_staff("new.desk@portal.example")
    assert user.role == "sales"
    desk = https_client(app)
    assert sign_in(desk, "new.desk@portal.example").status_code == 303
    assert desk.get("/staff/admin/staff").status_code == 403
    post_form(admin, f"/staff/admin/staff/{user.id}", {"role": "admin", "active": "y"})
    assert user.role == "admin"
    assert desk.get("/staff/admin/staff").status_code == 200
    post_form(admin, f"/staff/admin/staff/{user.id}", {"role": "admin"})  # unticked: inactive
    assert user.active is False
    assert desk.get("/staff/").status_code == 302
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.target == "new.desk@portal.example",
        AuditEntry.actor == "ada.admin@portal.example")) == 3


def test_admin_cannot_lock_themselves_out(admin, admin_user):
    response = post_form(admin, f"/staff/admin/staff/{admin_user.id}", {"role": "sales"})
    assert "cannot change your own role" in _text(admin.get(response.headers["Location"]))
    assert admin_user.role == "admin" and admin_user.active


@pytest.mark.parametrize("data", [
    {"email": "bad", "role": "sales", "password": PASSWORD},
    {"email": "short@portal.example", "role": "sales", "password": "short"},
    {"email": "role@portal.example", "role": "owner", "password": PASSWORD},
])
def test_admin_add_staff_refuses_bad_input(admin, data):
    assert post_form(admin, "/staff/admin/staff", data).status_code == 400
    assert find_staff(data["email"]) is None


def test_admin_edits_launch_dates(admin, today):
    response = post_form(admin, "/staff/admin/markets",
                         {"country": "is", "launch_date": "2027-03-01", "market_group": "Nordics"})
    assert response.status_code == 303
    row = db.session.get(MarketLaunch, "IS")
    assert row.launch_date.isoformat() == "2027-03-01" and row.market_group == "Nordics"
    post_form(admin, "/staff/admin/markets", {"country": "IS", "launch_date": "2026-01-01"})
    assert row.launch_date.isoformat() == "2026-01-01" and row.market_group == "Nordics"
    assert "2026-01-01" in _text(admin.get("/staff/admin/markets"))
    for bad in ({"country": "ZZ", "launch_date": "2027-01-01"},
                {"country": "XYZ", "launch_date": "2027-01-01"},
                {"country": "FR", "launch_date": "2027-13-01"}):
        assert post_form(admin, "/staff/admin/markets", bad).status_code == 400
    assert db.session.get(MarketLaunch, "ZZ") is None


def test_regenerated_quantities_hold_on_the_page_the_order_the_pdf_and_the_renewal(
        app, sales, make_contract, today):
    from portal.notices.services import notice_context
    from portal.orders.services import record_payment
    from portal.timeutil import utc_today
    from tests.payments.conftest import place_card_order

    contract = make_contract(number="SNS-REGEN-6", email="buyer@regen6.example")
    issue_quote(contract, today)
    post_form(sales, "/staff/contracts/SNS-REGEN-6/quote", {"qty-VS-ENT": "6"})
    quote = latest_quote(contract)
    total = Decimal(quote.document["quote"]["options"][0]["total"])
    assert total == 6 * Decimal("450.00")  # 6 x the basic 12-month price
    link, token = issue_link(contract, contract.account.contacts[0], purpose="test")
    db.session.commit()
    customer = https_client(app)
    customer.get(f"/r/{token}")
    page = _text(customer.get("/renewal"))
    assert re.search(r'data-product="VS-ENT"><td>[^<]*</td><td class="amount">6<', page)
    _response, order = place_card_order(customer, token, method="bank_transfer")
    assert order.quote_id == quote.id and order.total == total
    shown = _text(customer.get("/renewal/confirmation"))
    assert 'data-product="VS-ENT" data-quantity="6"' in shown
    confirmation = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.key == f"order-confirmation:{order.reference}"))
    assert "6 x " in email_text(confirmation)
    pdf_products = notice_context(contract, quote, 30, contract.account.contacts[0], link,
                                  "https://portal.example/r/x")["products"]
    assert [(code, quantity) for _name, code, quantity in pdf_products] == [("VS-ENT", 6)]
    record_payment(order.id, provider="offline", provider_ref="BANK-6", amount=order.amount_due,
                   currency=order.pay_currency, received_on=utc_today(), actor="desk")
    db.session.commit()
    db.session.refresh(contract)
    assert [(line.product_code, line.quantity) for line in contract.lines] == [("VS-ENT", 6)]


def test_a_requote_on_a_later_day_keeps_the_desks_quantities(sales, make_contract, today):
    contract = make_contract(number="SNS-REGEN-8")
    post_form(sales, "/staff/contracts/SNS-REGEN-8/quote", {"qty-VS-ENT": "6"})
    later = issue_quote(contract, today + timedelta(days=1))
    assert later.document["lines"] == [{"product_code": "VS-ENT", "quantity": 6}]


def test_an_unknown_contract_answers_the_console_not_found_page(sales):
    response = sales.get("/staff/contracts/NO-SUCH-CONTRACT")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "data-staff-not-found" in html and '<html lang="en"' in html
    assert "renewal email" not in html
