"""Staff sign-in: passwords, lockout, session lifetime, sign-out, CSRF and rate limits."""
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.staff import accounts, auth
from portal.staff.accounts import StaffError, add_staff, authenticate
from tests.access import PASSWORD, csrf_token, https_client, sign_in


def test_password_is_stored_as_argon2id_hash(app, sales_user):
    assert sales_user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in sales_user.password_hash
    assert PasswordHasher().verify(sales_user.password_hash, PASSWORD)


def test_production_cost_is_the_rfc_9106_low_memory_profile(app, monkeypatch):
    for name in accounts.ARGON2_DEFAULTS:
        monkeypatch.delitem(app.config, name)
    user = add_staff("cost@portal.example", PASSWORD)
    assert "$m=65536,t=3,p=4$" in user.password_hash


@pytest.mark.parametrize("email, password, role, message", [
    ("not-an-email", PASSWORD, "sales", "is not an email address"),
    ("a@portal.example", "short", "sales", "at least 12 characters"),
    ("a@portal.example", PASSWORD, "boss", "unknown role"),
    ("SAM.SALES@portal.example", PASSWORD, "sales", "already exists"),
])
def test_add_staff_refuses_bad_input(app, sales_user, email, password, role, message):
    with pytest.raises(StaffError, match=message):
        add_staff(email, password, role)


def test_sign_in_and_out(web, sales_user):
    assert web.get("/staff/").status_code == 302
    response = sign_in(web, "Sam.Sales@portal.example")
    assert response.status_code == 303 and response.headers["Location"] == "/staff/"
    page = web.get("/staff/")
    assert page.status_code == 200
    assert "sam.sales@portal.example (sales)" in page.get_data(as_text=True)
    token = csrf_token(page.get_data(as_text=True))
    assert web.post("/staff/sign-out", data={"csrf_token": token}).status_code == 303
    assert web.get("/staff/").status_code == 302
    assert db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target == "sam.sales@portal.example").order_by(AuditEntry.id)).all() == [
        "staff.sign_in", "staff.sign_out"]


def test_sign_out_needs_the_csrf_token(web, sales_user):
    sign_in(web, sales_user.email)
    assert web.post("/staff/sign-out").status_code == 400
    assert web.get("/staff/").status_code == 200


def test_sign_in_needs_the_csrf_token(web, sales_user):
    response = web.post("/staff/sign-in", data={"email": sales_user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert web.get("/staff/").status_code == 302


def test_wrong_password_and_unknown_email_look_the_same(web, sales_user):
    wrong = sign_in(web, sales_user.email, "wrong password!!")
    unknown = sign_in(web, "nobody@portal.example")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data(as_text=True).count("Sign-in failed") == 1
    assert "Sign-in failed" in unknown.get_data(as_text=True)


def test_next_only_leads_inside_the_console(web, sales_user, make_contract):
    contract = make_contract()
    token = csrf_token(web.get("/staff/sign-in").get_data(as_text=True))
    data = {"email": sales_user.email, "password": PASSWORD, "csrf_token": token}
    inside = web.post(f"/staff/sign-in?next=/staff/contracts/{contract.number}", data=data)
    assert inside.headers["Location"] == f"/staff/contracts/{contract.number}"
    # Signing in starts a new session, so the form needs a new token.
    data["csrf_token"] = csrf_token(web.get("/staff/sign-in").get_data(as_text=True))
    outside = web.post("/staff/sign-in?next=//evil.example/staff/", data=data)
    assert outside.headers["Location"] == "/staff/"


def test_five_failures_lock_the_account_for_15_minutes(app, web, sales_user, monkeypatch):
    for _ in range(4):
        assert sign_in(web, sales_user.email, "wrong password!!").status_code == 401
    assert sales_user.failed_attempts == 4 and sales_user.locked_until is None
    assert sign_in(web, sales_user.email, "wrong password!!").status_code == 401
    db.session.refresh(sales_user)
    locked_until = sales_user.locked_until
    assert locked_until is not None
    assert db.session.scalar(select(AuditEntry.action).where(
        AuditEntry.target == sales_user.email)) == "staff.lockout"
    assert timedelta(minutes=14) < locked_until - accounts.now() <= timedelta(minutes=15)
    # Locked: even the right password is refused.
    assert sign_in(web, sales_user.email).status_code == 401
    assert web.get("/staff/").status_code == 302
    # Fifteen minutes later the right password works and the counter starts again.
    later = locked_until + timedelta(seconds=1)
    monkeypatch.setattr(accounts, "now", lambda: later)
    assert sign_in(web, sales_user.email).status_code == 303
    db.session.refresh(sales_user)
    assert sales_user.failed_attempts == 0 and sales_user.locked_until is None


def test_a_success_resets_the_failure_count(app, sales_user):
    for _ in range(4):
        assert authenticate(sales_user.email, "wrong password!!") is None
    assert authenticate(sales_user.email, PASSWORD) is sales_user
    assert authenticate(sales_user.email, "wrong password!!") is None
    assert sales_user.failed_attempts == 1 and sales_user.locked_until is None


def test_deactivated_user_cannot_sign_in_and_is_signed_out(app, sales, sales_user):
    assert sales.get("/staff/").status_code == 200
    sales_user.active = False
    db.session.commit()
    assert sales.get("/staff/").status_code == 302
    assert sign_in(sales, sales_user.email).status_code == 401


@pytest.mark.parametrize("idle, since_sign_in, signed_in", [
    (timedelta(minutes=29), timedelta(minutes=29), True),
    (timedelta(minutes=31), timedelta(minutes=31), False),
    # Active all along, but 8 hours after sign-in the session ends anyway.
    (timedelta(minutes=5), timedelta(hours=7, minutes=59), True),
    (timedelta(minutes=5), timedelta(hours=8, minutes=1), False),
])
def test_session_expiry(app, sales, monkeypatch, idle, since_sign_in, signed_in):
    start = accounts.now()
    # Keep the session busy until ``idle`` before the final request.
    last_seen = start + since_sign_in - idle
    moment = start
    while moment < last_seen:
        moment = min(moment + timedelta(minutes=20), last_seen)
        monkeypatch.setattr(auth, "now", lambda at=moment: at)
        if moment - start <= auth.ABSOLUTE_LIFETIME:
            assert sales.get("/staff/").status_code == 200
    monkeypatch.setattr(auth, "now", lambda: start + since_sign_in)
    assert sales.get("/staff/").status_code == (200 if signed_in else 302)


def test_sign_in_is_rate_limited(app, web, sales_user):
    token = csrf_token(web.get("/staff/sign-in").get_data(as_text=True))
    codes = [web.post("/staff/sign-in", data={"email": "x@portal.example", "password": "nope",
                                                "csrf_token": token}).status_code
             for _ in range(11)]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    assert sign_in(https_client(app), sales_user.email).status_code == 429
