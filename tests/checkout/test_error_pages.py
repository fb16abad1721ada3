"""The error pages of the checkout answer with the visitor's renewal link even when it was
refused before the checkout read the link (a stale form's CSRF token, a rate limit) or no
view matched the address (404, 405): the support contact and language are the link's. The
staff console answers its own not-found page."""
import pytest
from sqlalchemy.exc import OperationalError

from portal.checkout import routes
from tests.checkout.conftest import csrf_token, open_checkout

US_SUPPORT = 'data-support-email="renewals-us@portal.example"'
DEFAULT_SUPPORT = 'data-support-email="renewals@portal.example"'


@pytest.fixture
def us_visitor(web, make_checkout):
    """A visitor holding the link of a US contract; returns the quote page's CSRF token."""
    _contract, _link, token = make_checkout(country="US")
    return csrf_token(open_checkout(web, token).get_data(as_text=True))


def test_a_stale_form_shows_the_support_contact_of_the_link(web, us_visitor):
    response = web.post("/renewal/order", data={"csrf_token": "stale", "place": "1"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Your session has expired" in html
    assert US_SUPPORT in html and DEFAULT_SUPPORT not in html


@pytest.mark.parametrize("method, path, status", [
    ("get", "/renewal/no-such-page", 404),
    ("get", "/renewal/documents/no-such-invoice/x", 404),
    ("get", "/renewal/change-request", 405),
    ("post", "/renewal", 405),
])
def test_a_wrong_address_under_renewal_shows_the_support_contact_of_the_link(
        web, us_visitor, method, path, status):
    response = getattr(web, method)(path)
    html = response.get_data(as_text=True)
    assert response.status_code == status
    assert US_SUPPORT in html and DEFAULT_SUPPORT not in html


def test_a_rate_limited_form_shows_the_support_contact_of_the_link(web, us_visitor):
    statuses = [web.post("/renewal/order/cancel", data={"csrf_token": us_visitor}).status_code
                for _ in range(21)]
    assert statuses[:20] == [303] * 20 and statuses[20] == 429
    html = web.post("/renewal/order/cancel", data={"csrf_token": us_visitor}).get_data(
        as_text=True)
    assert "Too many requests" in html
    assert US_SUPPORT in html and DEFAULT_SUPPORT not in html


def test_the_error_page_is_in_the_language_of_the_link(web, make_checkout):
    _contract, _link, token = make_checkout(country="US", language="de")
    open_checkout(web, token)
    response = web.get("/renewal/no-such-page")
    assert response.status_code == 404
    assert '<html lang="de"' in response.get_data(as_text=True)


def test_without_a_link_the_error_page_shows_the_default_contact(web):
    response = web.post("/renewal/order", data={"csrf_token": "stale"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert DEFAULT_SUPPORT in html


def test_a_wrong_address_in_the_staff_console_answers_the_console_page(web, us_visitor):
    web.get("/renewal?lang=de")  # a visitor who chose German for the customer pages
    response = web.get("/staff/no-such-page", headers={"Accept-Language": "fr"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "data-staff-not-found" in html and '<html lang="en"' in html
    assert "Page not found" in html and 'href="/staff/"' in html
    assert "renewal email" not in html and "data-support-email" not in html


def test_an_error_page_whose_link_cannot_be_read_is_still_the_common_page(
        web, us_visitor, monkeypatch):
    def database_down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(routes.services, "usable_link", database_down)
    response = web.post("/renewal/order", data={"csrf_token": "stale"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Your session has expired" in html and DEFAULT_SUPPORT in html
