"""Who gets what: every staff console and partner API route against every kind of caller.

Callers: nobody, a customer holding a renewal link session, sales staff, an admin,
partner A's key, partner B's key and a revoked key. A denied request changes nothing.
"""
import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.checkout.models import QuoteChangeRequest
from portal.extensions import db
from portal.links.services import issue_link
from portal.mail.outbox import stage_email
from portal.orders.services import place_order
from portal.renewals.services import issue_quote
from portal.staff.accounts import add_staff
from tests.access import PASSWORD, bearer, csrf_token, https_client, sign_in

CALLERS = ("anonymous", "customer", "sales", "admin", "partner_a", "partner_b", "revoked")
SIGN_IN = "sign-in"  # redirected to the staff sign-in page
STAFF = {"sales": "ok", "admin": "ok"}
ADMIN = {"sales": 403, "admin": "ok"}
PUBLIC = dict.fromkeys(CALLERS, "ok")


@pytest.fixture
def world(app, make_contract, partners, admin_user, sales_user, today):
    """Contracts of partners A and B, a change request, a failed email, a second user."""
    partner_a, _ = partners["A"]
    partner_b, _ = partners["B"]
    contract_a = make_contract(partner=partner_a, number="SNS-PA-1")
    contract_b = make_contract(partner=partner_b, number="SNS-PB-1")
    link, token = issue_link(contract_a, contract_a.account.contacts[0], purpose="test")
    change = QuoteChangeRequest(contract_id=contract_a.id,
                                contact_id=contract_a.account.contacts[0].id,
                                kind="quantities", message="We need 3 seats", status="open")
    message = stage_email("buyer@example.com", kind="test", subject="Hello", body="Hi",
                          contract=contract_a)
    message.status = "failed"
    other = add_staff("other@portal.example", PASSWORD, "sales")
    order = place_order(issue_quote(contract_a, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="test")
    db.session.add(change)
    db.session.commit()
    return {"a": contract_a, "b": contract_b, "link": link, "token": token, "change": change,
            "message": message, "other": other, "order": order, "today": today,
            "keys": partners}


def caller_client(app, caller, world):
    client = https_client(app)
    headers = {}
    if caller == "customer":
        assert client.get(f"/r/{world['token']}").status_code == 303
    elif caller in ("sales", "admin"):
        email = "sam.sales@portal.example" if caller == "sales" else "ada.admin@portal.example"
        assert sign_in(client, email).status_code == 303
    elif caller == "partner_a":
        headers = bearer(world["keys"]["A"][1])
    elif caller == "partner_b":
        headers = bearer(world["keys"]["B"][1])
    elif caller == "revoked":
        headers = bearer(world["keys"]["revoked"])
    return client, headers


# (name, method, path, form data, who is allowed, status when allowed)
STAFF_ROUTES = [
    ("sign-in page", "GET", "/staff/sign-in", None, PUBLIC, 200),
    ("sign-out", "POST", "/staff/sign-out", {}, PUBLIC, 303),
    ("search", "GET", "/staff/?q=SNS", None, STAFF, 200),
    ("contract", "GET", "/staff/contracts/{a}", None, STAFF, 200),
    ("requests", "GET", "/staff/requests", None, STAFF, 200),
    ("outbox", "GET", "/staff/outbox", None, STAFF, 200),
    ("webhooks", "GET", "/staff/webhooks", None, STAFF, 200),
    ("refunds", "GET", "/staff/refunds", None, STAFF, 200),
    ("refund", "GET", "/staff/contracts/{a}/refund", None, STAFF, 200),
    ("regenerate", "POST", "/staff/contracts/{a}/quote",
     {"qty-VS-ENT": "3", "notify": "y"}, STAFF, 303),
    ("payment", "POST", "/staff/contracts/{a}/payment",
     {"order": "{order}", "amount": "900.00", "currency": "USD", "received_on": "{today}",
      "reference": "BANK-1"}, STAFF, 303),
    ("revoke", "POST", "/staff/contracts/{a}/links/{link}/revoke", {}, STAFF, 303),
    ("resend", "POST", "/staff/contracts/{a}/links/{link}/resend", {}, STAFF, 303),
    ("answer", "POST", "/staff/requests/{change}/answer", {"answer": "Done: 3 seats"},
     STAFF, 303),
    ("retry", "POST", "/staff/outbox/{message}/retry", {}, STAFF, 303),
    ("staff users", "GET", "/staff/admin/staff", None, ADMIN, 200),
    ("add staff", "POST", "/staff/admin/staff",
     {"email": "new@portal.example", "role": "sales", "password": PASSWORD}, ADMIN, 303),
    ("update staff", "POST", "/staff/admin/staff/{other}", {"role": "admin", "active": "y"},
     ADMIN, 303),
    ("markets", "GET", "/staff/admin/markets", None, ADMIN, 200),
    ("save market", "POST", "/staff/admin/markets",
     {"country": "IS", "launch_date": "2027-01-01", "market_group": "Nordics"}, ADMIN, 303),
]


def _path(template, world):
    return template.format(a=world["a"].number, link=world["link"].reference,
                           change=world["change"].id, message=world["message"].id,
                           other=world["other"].id, order=world["order"].reference,
                           today=world["today"].isoformat())


def _audit_count():
    return db.session.scalar(select(func.count(AuditEntry.id)))


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name, method, path, data, allowed, ok_status", STAFF_ROUTES,
                         ids=[route[0] for route in STAFF_ROUTES])
def test_staff_routes(app, world, caller, name, method, path, data, allowed, ok_status):
    client, headers = caller_client(app, caller, world)
    url = _path(path, world)
    expected = allowed.get(caller, SIGN_IN)
    before = _audit_count()
    if method == "GET":
        response = client.get(url, headers=headers)
    else:
        # A valid CSRF token for this client, so only authorization decides.
        token = csrf_token(client.get("/staff/sign-in").get_data(as_text=True))
        form = {name: _path(value, world) for name, value in data.items()}
        response = client.post(url, data={**form, "csrf_token": token}, headers=headers)
    if expected == "ok":
        assert response.status_code == ok_status, response.get_data(as_text=True)[:500]
        if method == "POST" and caller in ("sales", "admin"):
            assert _audit_count() > before
            assert db.session.scalar(select(AuditEntry.actor).order_by(AuditEntry.id.desc())
                                     .limit(1)).endswith("@portal.example")
        elif method == "POST":
            assert _audit_count() == before
        return
    if expected == SIGN_IN:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/staff/sign-in")
    else:
        assert response.status_code == expected
    assert _audit_count() == before


API_ROUTES = [
    ("list", "/api/partner/v1/contracts"),
    ("own A", "/api/partner/v1/contracts/{a}"),
    ("own B", "/api/partner/v1/contracts/{b}"),
    ("openapi", "/api/partner/v1/openapi.json"),
    ("quote A", "/api/partner/v1/contracts/{a}/quote"),
    ("quote B", "/api/partner/v1/contracts/{b}/quote"),
    ("events", "/api/partner/v1/events"),
    ("webhooks", "/api/partner/v1/webhooks"),
]
API_EXPECTED = {
    "list": {"partner_a": 200, "partner_b": 200},
    "own A": {"partner_a": 200, "partner_b": 404},
    "own B": {"partner_a": 404, "partner_b": 200},
    "openapi": dict.fromkeys(CALLERS, 200),
    "quote A": {"partner_a": 200, "partner_b": 404},
    "quote B": {"partner_a": 404, "partner_b": 200},
    "events": {"partner_a": 200, "partner_b": 200},
    "webhooks": {"partner_a": 200, "partner_b": 200},
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name, path", API_ROUTES, ids=[route[0] for route in API_ROUTES])
def test_partner_routes(app, world, caller, name, path):
    client, headers = caller_client(app, caller, world)
    response = client.get(path.format(a=world["a"].number, b=world["b"].number),
                          headers=headers)
    expected = API_EXPECTED[name].get(caller, 401)
    assert response.status_code == expected
    assert response.is_json
    body = response.get_json()
    if expected == 401:
        assert body["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    elif expected == 404:
        assert body == {"error": "not_found", "status": 404, "message": "no such contract"}
    elif name == "list":
        own = "a" if caller == "partner_a" else "b"
        assert [c["number"] for c in body["contracts"]] == [world[own].number]


def test_console_is_english_with_its_own_not_allowed_page(sales):
    page = sales.get("/staff/?lang=de", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert '<html lang="en"' in page and "language-picker" not in page
    refused = sales.get("/staff/admin/staff")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "data-not-allowed" in text
    assert "Something went wrong" not in text and "language-picker" not in text
    assert "Sign out" in text  # still the console, with its navigation
