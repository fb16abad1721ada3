"""Web plumbing shared by every blueprint: locale, CSRF, rate limits, security headers,
error pages (the session and its CSRF token: ``portal.sessions``). Each piece is one small
function called from ``create_app``."""
import inspect
from functools import lru_cache

from flask import (
    Flask,
    abort,
    current_app,
    g,
    has_app_context,
    has_request_context,
    render_template,
    request,
    session,
)
from flask_babel import Babel, get_locale, get_translations, gettext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import pass_context
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from portal import assets, i18n, logs
from portal.i18n import tools as catalog_tools
from portal.checkout.labels import inline_amount, inline_code, inline_text, join_list
from portal.extensions import WriteLockNeeded, db, reading_request, write_intent
from portal.errors import api_error_body
from portal.dataversion import VersionedCache
from portal.ratelimits.storage import SCHEME as DATABASE_STORAGE
from portal.sessions import (
    SESSION_COOKIE_SETTINGS,
    PageSessionInterface,
    install_csrf_token_reuse,
)

babel = Babel()
csrf = CSRFProtect()


class ViewLimiter(Limiter):
    """Flask-Limiter for limits set on views (``rate_limited``), the only ones the portal
    sets: a limited view checks its limits when it is called. The check Flask-Limiter
    also runs before every request looks for default, application and blueprint limits,
    of which there are none, so it is not run."""

    def _check_request_limit(self, callable_name=None, in_middleware=True):
        if not in_middleware:
            super()._check_request_limit(callable_name=callable_name,
                                         in_middleware=in_middleware)

    # The one limiter serves every app of the process (the tests', the demo's): whether
    # limits apply is each app's ``RATELIMIT_ENABLED``, read when a request is checked,
    # not the setting of the app that happened to be set up last.
    @property
    def enabled(self):
        return not has_app_context() or current_app.config.get("RATELIMIT_ENABLED", True)

    @enabled.setter
    def enabled(self, _value):
        pass  # Flask-Limiter records each app's setting in its config (init_app)


#: Counters live where every worker sees them: the database (``portal-db://``, the default)
#: or Redis (``RATELIMIT_STORAGE_URI=redis://...``). A fault of the store lets the request
#: through rather than failing it.
limiter = ViewLimiter(key_func=get_remote_address, default_limits=[], swallow_errors=True)


def rate_limited(limit, **options):
    """``limiter.limit`` for a view: the portal's limits are set on views only
    (``ViewLimiter``)."""
    return limiter.limit(limit, **options)


def utc_minute(value):
    """A stored time (naive UTC) as the staff console shows it: "2026-11-29 22:46 UTC"."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def visitor_key():
    """The rate-limit key of a customer's form: the renewal link in their session, else
    their address. Customers behind one office address (NAT) do not share their limits;
    a visitor without a link (a stale one, asking for a new one) is counted by address."""
    link_id = session.get("link_id")
    return f"link:{link_id}" if isinstance(link_id, int) else get_remote_address()

STRIPE_JS_ORIGIN = "https://js.stripe.com"
#: The largest request body read (forms, webhooks, partner API calls): 1 MiB, answered 413.
MAX_REQUEST_BYTES = 1024 * 1024
#: Methods that only read; their requests open reading transactions.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PortalFlask(Flask):
    """Flask, with each request's database transactions opened as reading (GET, HEAD) or
    writing (every other method). A reading request that turns out to write (on SQLite:
    while another connection holds the write lock; on PostgreSQL: at all) is run once
    more, from the start, as a writer."""

    def full_dispatch_request(self):
        view = self.view_functions.get(request.endpoint)
        reading = request.method in SAFE_METHODS and not getattr(view, "writes", False)
        with write_intent(not reading), reading_request(reading):
            try:
                return super().full_dispatch_request()
            except WriteLockNeeded:
                discard_transaction()
        with write_intent(True):
            return super().full_dispatch_request()

    def ensure_sync(self, func):
        # Flask asks this of every hook and view of every request; whether a function
        # is a coroutine function does not change, so the answer is kept.
        return self.async_to_sync(func) if _is_coroutine_function(func) else func


#: Kept answers of ``inspect.iscoroutinefunction`` (the hooks and views: a few dozen).
_is_coroutine_function = lru_cache(maxsize=512)(inspect.iscoroutinefunction)


def writes(view):
    """Mark a view answering GET that always writes (opening a renewal link records when
    it was opened): it runs as a writer from the start rather than twice."""
    view.writes = True
    return view


def discard_transaction():
    """Roll the request's session back so the next statement starts afresh; a database
    that cannot even roll back (gone, full) loses the connection, never the worker."""
    try:
        db.session.rollback()
    except Exception as error:  # noqa: BLE001  (whatever the driver raises, start clean)
        logs.LOGGER.warning("rollback failed: %s", error)
        db.session.remove()


def select_page_locale():
    """Explicit choice, then the link's contact, then Accept-Language, then English. The
    staff console is English whatever the visitor asks for."""
    if request and request.blueprint == "staff":
        return "en"
    chosen = i18n.page_locale(request.args.get("lang")) if request else None
    if chosen:
        session["lang"] = chosen
        return chosen
    if session.get("lang") in i18n.PAGE_LOCALES:
        return session["lang"]
    contact_language = i18n.page_locale(getattr(g, "contact_language", None))
    if contact_language:
        return contact_language
    for language, _quality in request.accept_languages:
        matched = i18n.page_locale(language)
        if matched:
            return matched
    return "en"


def greeting(contact):
    """An email's first line: the contact's name if we have one, never the address."""
    name = (getattr(contact, "name", None) or "").strip()
    return gettext("Hello %(name)s,", name=name) if name else gettext("Hello,")


def compile_catalogs():
    """In a checkout, compile any catalog whose ``.mo`` is missing or older than its
    ``.po`` (cheap when nothing changed), so emails never fall back to English because
    nobody ran ``portal translations compile``. An installed wheel ships them compiled."""
    try:
        catalog_tools.compile_all()
    except OSError:
        pass  # a read-only checkout: whatever is compiled stays in use


def init_i18n(app):
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(assets.folder("translations")))
    if assets.is_source_tree():
        compile_catalogs()
    babel.init_app(app, locale_selector=select_page_locale)
    install_template_gettext(app)
    app.jinja_env.globals["greeting"] = greeting
    app.jinja_env.filters["join_list"] = join_list
    app.jinja_env.filters["code"] = inline_code
    app.jinja_env.filters["amount_in_text"] = inline_amount
    app.jinja_env.filters["isolated"] = inline_text
    app.jinja_env.filters["utc"] = utc_minute
    init_company(app)

    #: (code, own name) of every page language, and the picker's markup per page locale:
    #: both depend on nothing but the locale, so each is built once per process.
    page_languages = tuple((code, i18n.language_name(code)) for code in i18n.PAGE_LOCALES)
    pickers = {}

    def language_picker():
        """The language picker (templates/_language_picker.html) in the page's locale."""
        locale = str(get_locale() or "en")
        if locale not in pickers:
            template = app.jinja_env.get_template("_language_picker.html")
            pickers[locale] = Markup(template.render(page_languages=page_languages,
                                                     page_locale=locale))
        return pickers[locale]

    app.jinja_env.globals["language_picker"] = language_picker
    install_fragment_cache(app)

    @app.context_processor
    def locale_context():
        locale = str(get_locale() or "en")
        return {
            "page_locale": locale,
            "html_lang": locale.replace("_", "-"),
            "text_direction": i18n.text_direction(locale),
            "page_languages": page_languages,
        }


def install_template_gettext(app):
    """Templates' ``_``, ``gettext`` and ``ngettext`` take the catalog of the locale the
    template is rendered in (``page_locale``, set once per render by ``locale_context``)
    from a dictionary. Flask-Babel's own callables find the locale and the catalog again
    for every string, a good part of the time a page takes to render. A template rendered
    without ``page_locale`` (no context processors) asks Flask-Babel as before."""
    catalogs = {}

    def catalog(context):
        locale = context.get("page_locale")
        if locale is None:
            return get_translations()
        if locale not in catalogs:
            catalogs[locale] = get_translations()
        return catalogs[locale]

    @pass_context
    def template_gettext(context, string):
        return catalog(context).ugettext(string)

    @pass_context
    def template_ngettext(context, singular, plural, number):
        return catalog(context).ungettext(singular, plural, number)

    app.jinja_env.install_gettext_callables(template_gettext, template_ngettext, newstyle=True)


#: Rendered page pieces kept per process (the least recently used go first).
FRAGMENT_CACHE_SIZE = 2048
#: Stands for the visitor's CSRF token in a stored piece; it cannot occur in escaped markup.
CSRF_MARK = "\x00csrf\x00"
#: The one token the pieces are kept under: a piece depends on its key alone.
PIECES = "pieces"


def install_fragment_cache(app, size=FRAGMENT_CACHE_SIZE):
    """``{% call fragment(name, *values) %}...{% endcall %}`` in a template: the body's
    markup, rendered once per process for the same name, values, page locale and script
    root, and reused. ``values`` must be everything the body shows (compared by their
    ``repr``, so 1.0 and 1.00 stay apart); nothing tied to a visitor may be among them or
    in the body, except the CSRF token, which each visitor gets back in place of a mark.
    ``cache=False`` renders the body every time (a form showing a visitor's input)."""
    pieces = VersionedCache(size=size)

    @pass_context
    def fragment(context, name, *values, caller, cache=True):
        if not cache:
            return caller()

        def render():
            markup = caller()
            # The token the body wrote, if any (Flask-WTF keeps the request's token in g).
            token = g.get(app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
            return str(markup).replace(token, CSRF_MARK) if token else str(markup)

        root = request.script_root if has_request_context() else ""
        key = (name, context.get("page_locale"), root, repr(values))
        piece = pieces.get(PIECES, key, render)
        if CSRF_MARK in piece:
            return Markup(piece.replace(CSRF_MARK, app.extensions["page_csrf_token"]()))
        return Markup(piece)

    app.jinja_env.globals["fragment"] = fragment
    app.extensions["page_fragments"] = pieces


def init_company(app):
    """The company of ``PORTAL_CONFIG`` in every template: ``company`` (brand, terms),
    ``party_for(country)`` (the contracting party) and ``support_for(country)``."""
    settings = app.extensions["company"]
    app.jinja_env.globals.update(company=settings, party_for=settings.party_for,
                                 support_for=settings.support_for)
    brand = settings.brand
    stylesheet = (f":root {{ --accent: {brand.primary_colour}; "
                  f"--good: {brand.accent_colour}; }}\n")

    @app.get("/brand.css")
    def brand_css():
        """The brand's colours (the stylesheet reads them as custom properties)."""
        response = app.response_class(stylesheet, mimetype="text/css")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def init_security(app):
    app.session_interface = PageSessionInterface()
    # Flask ships its own defaults for these, so setdefault would never apply ours:
    # replace each value that is still Flask's default.
    for key, flask_default, ours in SESSION_COOKIE_SETTINGS:
        if app.config.get(key) == flask_default:
            app.config[key] = ours
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 4 * 60 * 60)
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default: no limit at all
        app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    # A refused request says when to try again (Retry-After), as do the X-RateLimit
    # headers of a limited form's answers.
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config["RATELIMIT_STORAGE_URI"] = (app.config.get("RATELIMIT_STORAGE_URI")
                                           or f"{DATABASE_STORAGE}://")

    @app.before_request
    def refuse_oversized_body():
        """Before the CSRF check reads the form: a declared length over the limit is a 413
        at once (a body without one is cut off by Werkzeug at the same limit)."""
        if (request.content_length or 0) > app.config["MAX_CONTENT_LENGTH"]:
            abort(413)

    csrf.init_app(app)
    install_csrf_token_reuse(app)
    limiter.init_app(app)

    logo = app.extensions["company"].brand.logo or ""
    logo_origin = " " + "/".join(logo.split("/")[:3]) if logo.startswith("https://") else ""

    def content_security_policy():
        stripe_js = app.config.get("STRIPE_JS_ORIGIN", STRIPE_JS_ORIGIN)
        stripe_api = app.config.get("STRIPE_API_ORIGIN", "https://api.stripe.com")
        return "; ".join([
            "default-src 'self'",
            f"script-src 'self' {stripe_js}",
            # Real Stripe shows 3-D Secure challenges in a frame from its hooks origin.
            f"frame-src 'self' {stripe_js}"
            + (" https://hooks.stripe.com" if stripe_js == STRIPE_JS_ORIGIN else ""),
            f"connect-src 'self' {stripe_api} {stripe_js}",
            f"img-src 'self' data:{logo_origin}",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ])

    policies = {}  # built once per configuration, not once per response

    @app.after_request
    def security_headers(response):
        key = (app.config.get("STRIPE_JS_ORIGIN"), app.config.get("STRIPE_API_ORIGIN"))
        if key not in policies:
            policies[key] = content_security_policy()
        response.headers["Content-Security-Policy"] = policies[key]
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response


#: ``app.extensions`` key of the error page hooks (``error_page_hook``).
ERROR_PAGE_HOOKS = "error_page_hooks"


def error_page_hook(app, path_prefix, hook):
    """Let the blueprint owning the addresses under ``path_prefix`` take part in their error
    pages, including those no view matched (a 404 or 405) and those refused before its own
    ``before_request`` ran (CSRF, rate limits): ``hook(status, message_key)`` may load what
    the page needs (the visitor's renewal link) and returns a response of its own, or None
    for the common page. ``path_prefix`` covers itself and everything below it."""
    app.extensions.setdefault(ERROR_PAGE_HOOKS, []).append((path_prefix.rstrip("/"), hook))


def _hooked_error_page(status, message_key):
    """The answer of the error page hook for the request's path, or None."""
    path = request.path
    for prefix, hook in current_app.extensions.get(ERROR_PAGE_HOOKS, ()):
        if path == prefix or path.startswith(prefix + "/"):
            try:
                return hook(status, message_key)
            except Exception as error:  # noqa: BLE001  (the common page, whatever failed)
                logs.LOGGER.warning("error page hook failed: %s", error)
                discard_transaction()
                g.link = None
                return None
    return None


def init_error_pages(app):
    """Every error is a page in the visitor's language (JSON under /api/), never a traceback."""

    def render_error(status, message_key, hooked=True):
        if request.path.startswith("/api/"):
            return api_error_body(status, message_key), status
        answer = _hooked_error_page(status, message_key) if hooked else None
        if answer is not None:
            return answer, status
        return render_template("errors/error.html", status=status, message_key=message_key), status

    @app.errorhandler(CSRFError)
    def csrf_error(_error):
        return render_error(400, "csrf")

    @app.errorhandler(HTTPException)
    def http_error(error):
        body, status = render_error(error.code or 500, {
            400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "not_allowed", 409: "conflict", 413: "too_large",
            415: "unsupported_media_type", 429: "too_many",
        }.get(error.code, "error"))
        # Keep the exception's own headers: Allow on a 405 (RFC 9110), Retry-After on a 429.
        headers = [(name, value) for name, value in error.get_headers()
                   if name.lower() != "content-type"]
        return body, status, headers

    @app.errorhandler(Exception)
    def unexpected_error(error):
        if isinstance(error, WriteLockNeeded):
            raise error  # PortalFlask runs the request again as a writer
        logs.LOGGER.error("unhandled error", exc_info=error,
                          extra={"event": "exception", "path": logs.safe_path(request.path)})
        # The page must render whatever state the database is in: drop the failed
        # transaction and everything that would read through it (the link's contract).
        g.failed_contract = _contract_number(g.get("link"))
        discard_transaction()
        g.link = None
        return render_error(500, "error", hooked=False)  # nothing more read from the database

    @app.after_request
    def log_failed_request(response):
        if response.status_code >= 400:
            contract = g.get("failed_contract") or _contract_number(g.get("link"))
            logs.failed_request(request.method, request.path, response.status_code,
                                contract=contract)
        return response


def _contract_number(link):
    """The contract of the request's renewal link for a log line, or None when it cannot
    be read (a failed transaction, a database that is down)."""
    if link is None:
        return None
    try:
        return link.contract.number
    except Exception:  # noqa: BLE001  (a log line never fails a request)
        return None
