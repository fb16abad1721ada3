"""Checkout fixtures: an HTTPS test client (the session cookie is ``__Host-`` and Secure),
a priced contract with a renewal link, and form helpers."""
import re
from datetime import timedelta
from html import unescape

import pytest
from flask import g
from flask.testing import FlaskClient

from portal.links.services import issue_link
from portal.timeutil import utc_today
from portal.web import limiter
from tests import factories

PRICES = {
    ("VS-ENT", "basic", 12): "450.00", ("VS-ENT", "basic", 36): "1200.00",
    ("VS-ENT", "production", 12): "600.00", ("VS-ENT", "production", 36): "1600.00",
}


@pytest.fixture(autouse=True)
def _fresh_rate_limits(app):
    """Rate limits are counted per address in memory; every test starts from zero."""
    limiter.reset()
    yield
    limiter.reset()


class FreshGlobalsClient(FlaskClient):
    """The ``app`` fixture keeps one app context pushed, so requests would share ``g``
    (the cached locale, the CSRF token); in production each request has its own."""

    def open(self, *args, **kwargs):
        vars(g._get_current_object()).clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def web(app):
    client = FreshGlobalsClient(app, app.response_class, use_cookies=True)
    client.environ_base["wsgi.url_scheme"] = "https"
    return client


@pytest.fixture
def today():
    return utc_today()


@pytest.fixture
def make_checkout(app, today):
    """``make_checkout(days_to_end=45, **contract options) -> (contract, link, token)``."""
    factories.launch("US", "2013-03-19")
    factories.launch("GB", "2013-04-12")
    for code, per_eur in (("USD", "1.0861"), ("GBP", "0.8412"), ("JPY", "162.35")):
        factories.rate(code, per_eur, today - timedelta(days=1))
    plists = {}

    def make(days_to_end=45, prices=None, list_code="US", currency="USD", **options):
        key = (list_code, currency)
        if key not in plists:
            plists[key] = factories.price_list(list_code, currency, prices or PRICES)
        options.setdefault("lines", [("VS-ENT", 2)])
        contract = factories.contract(plists[key], end_date=today + timedelta(days=days_to_end),
                                      **options)
        link, token = issue_link(contract, contract.account.contacts[0], purpose="test")
        return contract, link, token

    return make


def csrf_token(html):
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def field_value(html, name):
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html)
    return unescape(match.group(1)) if match else None


def amount_due(html):
    """``(amount string, currency)`` of the element that shows the amount due."""
    match = re.search(r'data-amount-due="([^"]+)" data-currency="([A-Z]{3})"', html)
    return (match.group(1), match.group(2)) if match else None


def open_checkout(web, token):
    response = web.get(f"/r/{token}")
    assert response.status_code == 303, response.status_code
    return web.get("/renewal")
