"""Every response carries the security headers of the checkout: a policy that allows only
the portal's own origin and Stripe.js, no framing, HSTS, no referrer."""
import pytest

from tests.checkout.conftest import open_checkout


def _policy(response):
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize("path", ["/renewal", "/r/not-a-token", "/no-such-page", "/static/portal.css"])
def test_headers_on_every_response(web, path):
    response = web.get(path)
    response.close()  # a static file is streamed
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert policy["frame-src"] == ["'self'", "https://js.stripe.com", "https://hooks.stripe.com"]
    assert policy["connect-src"] == ["'self'", "https://api.stripe.com", "https://js.stripe.com"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert policy["form-action"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_local_emulator_replaces_the_stripe_origins(app, web, make_checkout):
    app.config.update(STRIPE_JS_ORIGIN="http://127.0.0.1:8420",
                      STRIPE_API_ORIGIN="http://127.0.0.1:8420")
    _contract, _link, token = make_checkout()
    policy = _policy(open_checkout(web, token))
    assert policy["script-src"] == ["'self'", "http://127.0.0.1:8420"]
    assert policy["frame-src"] == ["'self'", "http://127.0.0.1:8420"]
    assert "https://js.stripe.com" not in " ".join(sum(policy.values(), []))


def test_the_session_cookie_is_host_only_secure_and_not_for_scripts(web, make_checkout):
    _contract, _link, token = make_checkout()
    response = web.get(f"/r/{token}")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-portal=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain=" not in cookie
    assert token not in response.headers["Location"] and token not in cookie
