"""Assets loaded beside a page do not send the session cookie again, so one answered
late cannot put back an older session (a language chosen, a link opened meanwhile)."""
from tests.checkout.conftest import open_checkout


def _sets_cookie(response):
    sets = any(h.startswith("__Host-portal=") for h in response.headers.getlist("Set-Cookie"))
    response.close()
    return sets


def test_pages_refresh_the_session_cookie_and_assets_do_not(web, make_checkout):
    _contract, _link, token = make_checkout()
    assert _sets_cookie(web.get(f"/r/{token}"))
    assert _sets_cookie(web.get("/renewal"))  # a page: the session's lifetime slides
    assert not _sets_cookie(web.get("/brand.css"))
    assert not _sets_cookie(web.get("/static/portal.css"))
    # A stale asset answer after a language change leaves the new language in place.
    stale_cookie = web.get_cookie("__Host-portal").value
    assert _sets_cookie(web.get("/renewal?lang=de"))
    assert not _sets_cookie(web.get("/static/portal.css",
                                    headers={"Cookie": f"__Host-portal={stale_cookie}"}))
    assert 'lang="de"' in web.get("/renewal").get_data(as_text=True)
