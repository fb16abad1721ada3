"""Hostile input anywhere in the console is a clear refusal, never a 500, and changes nothing."""
import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.orders.services import place_order
from portal.renewals.services import issue_quote
from tests.access import post_form, sign_in

NASTY = ["\x00", "a\x00b", "x" * 5000, "²", "٣", "-0", "NaN", "<script>", "' OR 1=1 --", "%_\\"]


@pytest.fixture
def target(make_contract, today):
    contract = make_contract(number="SNS-BAD-1", days_to_end=20)
    order = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    db.session.commit()
    return contract, order


FORMS = [
    ("/staff/contracts/SNS-BAD-1/quote", ["qty-VS-ENT", "qty-VS-ADD", "notify"]),
    ("/staff/contracts/SNS-BAD-1/payment",
     ["order", "amount", "currency", "received_on", "reference"]),
    ("/staff/admin/staff", ["email", "role", "password"]),
    ("/staff/admin/markets", ["country", "launch_date", "market_group"]),
]


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("url, fields", FORMS, ids=[form[0] for form in FORMS])
def test_nasty_form_values(admin, target, url, fields, value):
    contract, order = target
    good = {"qty-VS-ENT": "2", "notify": "", "order": order.reference, "amount": "900.00",
            "currency": "USD", "received_on": order.placed_at.date().isoformat(),
            "reference": "BANK-1", "email": "n@portal.example", "role": "sales",
            "password": "long enough password", "country": "IS", "launch_date": "2027-01-01",
            "market_group": "Nordics"}
    for field in fields:
        before = db.session.scalar(select(func.count(AuditEntry.id)))
        response = post_form(admin, url, {**{f: good[f] for f in fields if f in good},
                                          field: value})
        assert response.status_code in (303, 400), (field, response.status_code)
        if response.status_code == 400 or "Not done" in admin.get(
                response.headers.get("Location", url)).get_data(as_text=True):
            continue
        # Accepted: only a value that is legitimately valid for that field.
        assert db.session.scalar(select(func.count(AuditEntry.id))) > before


@pytest.mark.parametrize("value", NASTY)
def test_nasty_urls_and_queries(admin, target, value):
    for url in (f"/staff/contracts/{value}", f"/staff/contracts/SNS-BAD-1/links/{value}/revoke"):
        response = admin.get(url) if "revoke" not in url else post_form(admin, url, {})
        assert response.status_code == 404, (url, response.status_code)
    assert admin.get("/staff/", query_string={"q": value}).status_code == 200
    assert admin.get("/staff/requests", query_string={"status": value}).status_code == 200
    assert admin.get("/staff/outbox", query_string={"view": value}).status_code == 200


@pytest.mark.parametrize("value", NASTY)
def test_nasty_sign_in(web, sales_user, value):
    for data in ({"email": value, "password": "whatever password"},
                 {"email": sales_user.email, "password": value}):
        response = post_form(web, "/staff/sign-in", data)
        assert response.status_code in (400, 401)
    assert sign_in(web, sales_user.email).status_code == 303


@pytest.mark.parametrize("number", ["0", "2147483648", "99999999999999999999999"])
def test_numeric_ids_out_of_range_are_404(admin, number):
    for url in (f"/staff/refunds/{number}/done", f"/staff/outbox/{number}/retry",
                f"/staff/requests/{number}/answer", f"/admin/staff/{number}"):
        response = post_form(admin, f"/staff{url}" if url.startswith("/admin") else url, {})
        assert response.status_code == 404, (url, response.status_code)
