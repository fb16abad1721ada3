"""Pages under faults: a request whose database work failed still gets the portal's own
error page in the visitor's language, and the next request works (nothing poisoned);
an oversized body is a clear 413 before anything reads it."""
from sqlalchemy.exc import OperationalError

from portal.checkout import routes
from portal.extensions import db
from portal.links.models import RenewalLink
from tests.checkout.conftest import open_checkout


def _failing_flush(*_args, **_kwargs):
    """A write the database refuses half-way (read-only, full): the session is left
    needing a rollback, which is where the error handler itself used to fail."""
    db.session.add(RenewalLink(token_hash=None, contract_id=None, contact_id=None))
    db.session.flush()


def test_a_failed_transaction_gets_the_translated_error_page(web, make_checkout, monkeypatch):
    _contract, _link, token = make_checkout()
    open_checkout(web, token)
    monkeypatch.setattr(routes.services, "quote_page", _failing_flush)
    page = web.get("/renewal?lang=de")
    html = page.get_data(as_text=True)
    assert page.status_code == 500
    assert "Ein Fehler ist aufgetreten" in html and 'lang="de"' in html
    monkeypatch.undo()
    assert web.get("/renewal").status_code == 200  # the same worker, the next request


def test_the_error_page_needs_no_database(web, make_checkout, monkeypatch):
    _contract, _link, token = make_checkout()
    open_checkout(web, token)

    def database_down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(routes.services, "quote_page", database_down)
    # From here on every statement fails, as with a database that is gone.
    monkeypatch.setattr(db.session, "execute", database_down)
    monkeypatch.setattr(db.session, "get", database_down)
    page = web.get("/renewal")
    assert page.status_code == 500
    assert "Nothing was charged" in page.get_data(as_text=True)


def test_an_oversized_body_is_refused_with_413(web, make_checkout):
    _contract, _link, token = make_checkout()
    open_checkout(web, token)
    body = {"email": "x" * (2 * 1024 * 1024)}
    for path in ("/renewal/new-link", "/renewal/order", "/stripe/webhook"):
        response = web.post(path, data=body)
        assert response.status_code == 413, path
    response = web.post("/stripe/webhook", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                        content_type="application/json")
    assert response.status_code == 413
    page = web.post("/renewal/new-link?lang=de", data=body)
    assert page.status_code == 413
    assert "Was Sie gesendet haben, ist zu groß" in page.get_data(as_text=True)
    assert web.get("/renewal").status_code == 200
