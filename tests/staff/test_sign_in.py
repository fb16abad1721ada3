"""Staff sign-in: passwords, throttled failures, session lifetime, sign-out and a new
password that end sessions, CSRF and rate limits."""
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.staff import accounts, auth, throttle
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


def _from(client, address):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_five_failures_hold_back_that_client_not_the_staff_member(app, web, sales_user):
    stranger = _from(web, "198.51.100.7")
    for _ in range(5):
        assert sign_in(stranger, sales_user.email, "wrong password!!").status_code == 401
    # The stranger's client may not try this address again, not even with the password...
    assert sign_in(stranger, sales_user.email).status_code == 401
    assert stranger.get("/staff/").status_code == 302
    # ...but the account is not locked: the staff member signs in from their own machine.
    desk = _from(https_client(app), "203.0.113.20")
    assert sign_in(desk, sales_user.email).status_code == 303
    assert desk.get("/staff/").status_code == 200
    db.session.refresh(sales_user)
    assert sales_user.locked_until is None and sales_user.failed_attempts == 0


def test_a_client_guessing_many_addresses_is_held_back(app, sales_user):
    for number in range(19):
        throttle.count_failure(f"guess{number}@portal.example", "198.51.100.8")
    assert not throttle.held_back(sales_user.email, "198.51.100.8")
    throttle.count_failure("guess19@portal.example", "198.51.100.8")
    assert throttle.held_back(sales_user.email, "198.51.100.8")
    assert not throttle.held_back(sales_user.email, "203.0.113.20")


def test_signing_out_ends_every_copy_of_the_session(app, web, sales_user):
    sign_in(web, sales_user.email)
    page = web.get("/staff/admin/staff" if sales_user.is_admin else "/staff/")
    assert page.status_code == 200
    stolen = https_client(app)  # a copy of the session cookie, kept elsewhere
    stolen.set_cookie("__Host-portal", web.get_cookie("__Host-portal").value, domain="localhost")
    assert stolen.get("/staff/").status_code == 200
    token = csrf_token(web.get("/staff/").get_data(as_text=True))
    assert web.post("/staff/sign-out", data={"csrf_token": token}).status_code == 303
    assert stolen.get("/staff/").status_code == 302
    assert sign_in(web, sales_user.email).status_code == 303  # a new sign-in works


def test_a_new_password_ends_the_sessions(app, sales, sales_user, cli):
    assert sales.get("/staff/").status_code == 200
    result = cli("staff", "set-password", sales_user.email, "--password-stdin",
                 input="another long password\n")
    assert result.exit_code == 0, result.output
    assert sales.get("/staff/").status_code == 302
    assert sign_in(sales, sales_user.email).status_code == 401
    assert sign_in(sales, sales_user.email, "another long password").status_code == 303
    short = cli("staff", "set-password", sales_user.email, "--password-stdin", input="short\n")
    assert short.exit_code != 0 and "at least 12 characters" in short.output


def test_a_success_resets_the_failure_count(app, sales_user):
    for _ in range(4):
        assert authenticate(sales_user.email, "wrong password!!") is None
    assert authenticate(sales_user.email, PASSWORD) is sales_user
    assert authenticate(sales_user.email, "wrong password!!") is None
    assert sales_user.failed_attempts == 1


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
