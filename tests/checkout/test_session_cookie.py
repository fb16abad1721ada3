"""Assets loaded beside a page do not send the session cookie again, so one answered
late cannot put back an older session (a language chosen, a link opened meanwhile); pages
send an unchanged session again once its cookie is a minute old, so its idle timeout
slides without signing a cookie on every view."""
import time
from datetime import timedelta

from flask import request

from portal import sessions as sessions_module
from portal.timeutil import utc_now
from tests.checkout.conftest import csrf_token


def _sets_cookie(response):
    sets = any(h.startswith("__Host-portal=") for h in response.headers.getlist("Set-Cookie"))
    response.close()
    return sets


def test_pages_refresh_the_session_cookie_and_assets_do_not(web, make_checkout):
    _contract, _link, token = make_checkout()
    assert _sets_cookie(web.get(f"/r/{token}"))
    web.get("/renewal").close()  # the first form adds its CSRF secret to the session
    assert not _sets_cookie(web.get("/brand.css"))
    assert not _sets_cookie(web.get("/static/portal.css"))
    # A stale asset answer after a language change leaves the new language in place.
    stale_cookie = web.get_cookie("__Host-portal").value
    assert _sets_cookie(web.get("/renewal?lang=de"))
    assert not _sets_cookie(web.get("/static/portal.css",
                                    headers={"Cookie": f"__Host-portal={stale_cookie}"}))
    assert 'lang="de"' in web.get("/renewal").get_data(as_text=True)


def test_an_unchanged_session_is_sent_again_once_its_cookie_is_a_minute_old(
        web, make_checkout, monkeypatch):
    _contract, _link, token = make_checkout()
    assert _sets_cookie(web.get(f"/r/{token}"))
    web.get("/renewal").close()
    assert not _sets_cookie(web.get("/renewal"))  # the browser's cookie is seconds old
    later = utc_now() + sessions_module.SESSION_RESEND_AFTER + timedelta(seconds=1)
    monkeypatch.setattr(sessions_module, "utc_now", lambda: later)
    assert _sets_cookie(web.get("/renewal"))  # a page: the session's lifetime slides
    assert not _sets_cookie(web.get("/static/portal.css"))  # an asset never
    assert web.get("/renewal").status_code == 200


def test_a_session_checked_once_still_expires_and_a_forged_one_is_refused(
        web, make_checkout, monkeypatch):
    _contract, _link, token = make_checkout()
    web.get(f"/r/{token}").close()
    assert web.get("/renewal").status_code == 200
    cookie = web.get_cookie("__Host-portal").value
    # Its signature was checked and kept; one character changed is checked afresh.
    forged = cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]
    web.set_cookie("__Host-portal", forged, domain="localhost")
    assert web.get("/renewal").status_code == 403
    web.set_cookie("__Host-portal", cookie, domain="localhost")
    assert web.get("/renewal").status_code == 200
    # Past the session lifetime the kept cookie is as expired as a fresh check would say.
    lifetime = web.application.permanent_session_lifetime
    later = utc_now() + lifetime + timedelta(seconds=5)
    monkeypatch.setattr(sessions_module, "utc_now", lambda: later)
    assert web.get("/renewal").status_code == 403


def test_pages_of_the_same_minute_carry_one_signed_csrf_token_that_forms_accept(
        web, make_checkout, monkeypatch):
    monkeypatch.setattr(sessions_module, "CSRF_TOKEN_SECONDS", 10 ** 9)  # no minute ends here
    _contract, _link, token = make_checkout()
    web.get(f"/r/{token}").close()
    web.get("/renewal").close()  # the first form adds the session's CSRF value
    first = csrf_token(web.get("/renewal").get_data(as_text=True))
    time.sleep(1.1)  # a token signed again now would carry another second
    second = csrf_token(web.get("/renewal").get_data(as_text=True))
    assert first == second  # made once, not signed again for each page
    answer = web.post("/renewal/order", data={"csrf_token": second, "update": "1",
                                              "pay_currency": "USD"})
    assert answer.status_code == 303  # accepted: "Update amounts" redirects
    refused = web.post("/renewal/order", data={"csrf_token": second[:-3] + "abc",
                                               "update": "1", "pay_currency": "USD"})
    assert refused.status_code == 400


def test_a_page_read_from_the_session_varies_by_cookie_whether_or_not_it_sends_one(
        web, make_checkout):
    """A shared cache must not hand one visitor's page to another: every page that read
    the session says ``Vary: Cookie``, also when the cookie is not sent again."""
    _contract, _link, token = make_checkout()
    web.get(f"/r/{token}").close()
    web.get("/renewal").close()
    response = web.get("/renewal")
    assert not _sets_cookie(response)
    assert "Cookie" in response.vary
    response.close()


def test_without_a_secret_key_there_is_no_session(app):
    interface = sessions_module.PageSessionInterface()
    secret, app.secret_key = app.secret_key, None
    try:
        with app.test_request_context("/", headers={"Cookie": "__Host-portal=abc"}):
            assert interface.open_session(app, request) is None
    finally:
        app.secret_key = secret
