"""Fixtures shared by the staff console and partner API tests: staff users, signed-in
HTTPS clients (the session cookie is ``__Host-`` and Secure), partners with API keys and
priced contracts. The conftest files of tests/staff and tests/partners import them."""
import re
from email import message_from_bytes
from email import policy as email_policy
from datetime import timedelta

import pytest
from flask import g
from flask.testing import FlaskClient

from portal.links.services import issue_link
from portal.orders.services import place_order
from portal.renewals.services import issue_quote
from portal.extensions import db
from portal.partners.keys import ensure_partner, issue_key, revoke_key
from portal.staff.accounts import add_staff
from portal.timeutil import utc_today
from portal.web import limiter
from tests import factories

__all__ = ["_cheap_password_hashing", "_fresh_rate_limits", "today", "web", "sales_user",
           "admin_user", "sales", "admin", "make_contract", "offline_order", "partners"]

PASSWORD = "correct horse battery"
PRICES = {
    ("VS-ENT", "basic", 12): "450.00", ("VS-ENT", "basic", 36): "1200.00",
    ("VS-ENT", "production", 12): "600.00", ("VS-ENT", "production", 36): "1600.00",
    ("VS-ADD", "basic", 12): "100.00", ("VS-ADD", "production", 12): "150.00",
}


@pytest.fixture(autouse=True)
def _fresh_rate_limits(app):
    """Rate limits are counted in memory; every test starts from zero."""
    limiter.reset()
    yield
    limiter.reset()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(app, monkeypatch):
    """Argon2id at its lowest cost: same code path, milliseconds instead of half a second."""
    for name, value in (("ARGON2_TIME_COST", 1), ("ARGON2_MEMORY_COST", 64),
                        ("ARGON2_PARALLELISM", 1)):
        monkeypatch.setitem(app.config, name, value)


@pytest.fixture
def today():
    return utc_today()


class HttpsClient(FlaskClient):
    """A browser on https (the session cookie is ``__Host-`` and Secure).

    Tests run inside one app context, so ``g`` outlives a request; Flask-WTF caches the
    CSRF token there, which must not leak from one client's request into another's.
    """

    def open(self, *args, **kwargs):
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


def https_client(app):
    client = HttpsClient(app, app.response_class, use_cookies=True)
    client.environ_base["wsgi.url_scheme"] = "https"
    return client


@pytest.fixture
def web(app):
    return https_client(app)


def csrf_token(html):
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def sign_in(client, email, password=PASSWORD):
    token = csrf_token(client.get("/staff/sign-in").get_data(as_text=True))
    return client.post("/staff/sign-in", data={"email": email, "password": password,
                                               "csrf_token": token})


def post_form(client, url, data):
    """Post ``data`` with the session's CSRF token, as the console's forms do."""
    token = csrf_token(client.get("/staff/sign-in").get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def email_text(message):
    """The plain-text body of a staged OutboxMessage."""
    parsed = message_from_bytes(message.mime, policy=email_policy.default)
    return parsed.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def sales_user(app):
    user = add_staff("sam.sales@portal.example", PASSWORD, "sales")
    db.session.commit()
    return user


@pytest.fixture
def admin_user(app):
    user = add_staff("ada.admin@portal.example", PASSWORD, "admin")
    db.session.commit()
    return user


@pytest.fixture
def sales(app, sales_user):
    client = https_client(app)
    assert sign_in(client, sales_user.email).status_code == 303
    return client


@pytest.fixture
def admin(app, admin_user):
    client = https_client(app)
    assert sign_in(client, admin_user.email).status_code == 303
    return client


@pytest.fixture
def make_contract(app, today):
    """``make_contract(days_to_end=45, partner=None, **factory options)``: a priced USD
    contract (two VS-ENT) with a renewal link for its primary contact."""
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", today - timedelta(days=1))
    plist = factories.price_list("US", "USD", PRICES)

    def make(days_to_end=45, partner=None, **options):
        options.setdefault("lines", [("VS-ENT", 2)])
        contract = factories.contract(plist, end_date=today + timedelta(days=days_to_end),
                                      **options)
        if partner is not None:
            contract.partner = partner
            contract.channel = "partner"
        db.session.flush()
        issue_link(contract, contract.account.contacts[0], purpose="test")
        return contract

    return make


@pytest.fixture
def offline_order(make_contract, today):
    """``(contract, order)``: SNS-PAY-1 with a bank-transfer order of 900.00 USD awaiting
    its payment, committed."""
    contract = make_contract(number="SNS-PAY-1", days_to_end=20)
    quote = issue_quote(contract, today)
    order = place_order(quote, "basic", 12, "USD", "bank_transfer", contact_id=None,
                        today=today, actor="customer")
    db.session.commit()
    return contract, order


@pytest.fixture
def partners(app):
    """Partners A and B with one API key each, and a revoked key of A:
    ``{"A": (partner, key), "B": (partner, key), "revoked": key}``."""
    partner_a, partner_b = ensure_partner("PA", "Partner A"), ensure_partner("PB", "Partner B")
    _, key_a = issue_key(partner_a)
    _, key_b = issue_key(partner_b)
    revoked_row, revoked = issue_key(partner_a)
    revoke_key(revoked_row.prefix)
    db.session.flush()
    return {"A": (partner_a, key_a), "B": (partner_b, key_b), "revoked": revoked}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}
