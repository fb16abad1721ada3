"""The visitor's session: a signed cookie (``__Host-portal``), checked once per process
and signed again only when it changed or once a minute, and the CSRF token of its forms,
signed once a minute."""
import copy
import time
from datetime import timedelta

from flask import g, has_request_context, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.dataversion import VersionedCache
from portal.timeutil import as_utc, utc_now

#: (setting, Flask's default, the portal's value): a secure ``__Host-`` session cookie.
SESSION_COOKIE_SETTINGS = (
    ("SESSION_COOKIE_NAME", "session", "__Host-portal"),
    ("SESSION_COOKIE_SECURE", False, True),
    ("SESSION_COOKIE_HTTPONLY", True, True),
    ("SESSION_COOKIE_SAMESITE", None, "Lax"),
    ("PERMANENT_SESSION_LIFETIME", timedelta(days=31), timedelta(hours=2)),
)

#: Endpoints of what a page loads beside it (stylesheets, scripts, images): they do not
#: refresh the session cookie.
ASSET_ENDPOINTS = frozenset({"static", "brand_css"})


#: An unchanged session's cookie is signed and sent again (moving its expiry on by the
#: session lifetime) once it is this old; sooner, the cookie the browser holds is as good.
SESSION_RESEND_AFTER = timedelta(minutes=1)
#: Session cookies kept per process with their checked contents (the least recently used
#: dropped first).
VERIFIED_COOKIES = 4096


class PageSession(SecureCookieSession):
    #: When the cookie this session came from was signed (None: a new session).
    signed_at = None


class PageSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions whose cookie is sent again by pages, not by the assets a
    page loads at the same time: a stylesheet or icon answered after the visitor's next
    page (which changed the session: a language, a placed order) would otherwise put the
    older cookie back. An unchanged session is signed again only once its cookie is
    ``SESSION_RESEND_AFTER`` old: the idle timeout still slides, by the minute, and a
    page view does not pay for signing a cookie the browser already has."""

    session_class = PageSession

    def __init__(self):
        #: Cookies whose signature was checked, with what they hold and when they were
        #: signed: a visitor sends the same cookie with every page until it changes.
        self._verified = VersionedCache(size=VERIFIED_COOKIES)

    def open_session(self, app, request):
        if not app.secret_key:
            return None  # as Flask's: no sessions without a secret key
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())

        def checked():
            return self.get_signing_serializer(app).loads(value, max_age=max_age,
                                                          return_timestamp=True)

        try:
            data, signed_at = self._verified.get(app.secret_key, value, checked)
        except BadSignature:
            return self.session_class()
        age = utc_now() - as_utc(signed_at)
        if not timedelta(0) <= age <= app.permanent_session_lifetime:
            return self.session_class()  # expired since it was checked (as loads would say)
        # Each request gets its own copy; the kept value stays as read.
        flat = all(item is None or isinstance(item, (str, int, float))
                   for item in data.values())
        session = self.session_class(dict(data) if flat else copy.deepcopy(data))
        session.signed_at = signed_at
        return session

    def save_session(self, app, session, response):
        # The usual page view: a session that is kept as the browser holds it. Flask's
        # own save works out every cookie setting first, to use them in a Set-Cookie.
        if session and not self.should_set_cookie(app, session):
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)

    def should_set_cookie(self, app, session):
        if session.modified:
            return True
        if has_request_context() and request.endpoint in ASSET_ENDPOINTS:
            return False
        signed_at = getattr(session, "signed_at", None)
        if signed_at is not None and utc_now() - as_utc(signed_at) < SESSION_RESEND_AFTER:
            return False
        return super().should_set_cookie(app, session)


#: A visitor's signed CSRF token is made once per this many seconds and reused meanwhile
#: (it is accepted for ``WTF_CSRF_TIME_LIMIT``, hours).
CSRF_TOKEN_SECONDS = 60


def install_csrf_token_reuse(app):
    """Templates' ``csrf_token()`` (and the kept pieces of ``fragment``) give the visitor's
    signed CSRF token made earlier in the same minute, as Flask-WTF would make it (the
    same secret, salt and session value), instead of signing it again for every page."""
    field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    signed = VersionedCache(size=VERIFIED_COOKIES)

    def page_csrf_token():
        raw = session.get(field)
        if field not in g and isinstance(raw, str) and raw:
            secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
            minute = int(time.time() // CSRF_TOKEN_SECONDS)
            setattr(g, field, signed.get(secret, (raw, minute), lambda: URLSafeTimedSerializer(
                secret, salt="wtf-csrf-token").dumps(raw)))
        return generate_csrf()  # the first form of a session makes the value (Flask-WTF)

    app.jinja_env.globals["csrf_token"] = page_csrf_token
    app.extensions["page_csrf_token"] = page_csrf_token
