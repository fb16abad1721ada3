"""The partner API at /api/partner/v1: Bearer keys, JSON in and out, the partner's own
contracts only. A contract of another partner answers 404, exactly like a missing one."""
import functools
import hashlib
from datetime import timedelta

from flask import Blueprint, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address

from portal.errors import PortalError, api_error_body
from portal.extensions import db
from portal.partners import events, services, webhooks
from portal.partners.keys import partner_for_key
from portal.partners.openapi import openapi_document
from portal.rates.services import rate_table
from portal.timeutil import utc_now, utc_today
from portal.web import csrf, rate_limited

bp = Blueprint("partner_api", __name__, url_prefix="/api/partner/v1")
csrf.exempt(bp)

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
MAX_NUMBER_LENGTH = 64  # Contract.number's column size
DEFAULT_EVENTS = 100
MAX_EVENT_ID = 2**31 - 1  # the largest id the column holds
PUBLIC_ENDPOINTS = {"partner_api.openapi"}


def api_error(status, code, message=None):
    response = jsonify(api_error_body(status, code, message))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="partner-api"'
    return response


def _bearer_token():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def key_rate_limit():
    return current_app.config.get("PARTNER_API_RATE_LIMIT", "120 per minute")


def rate_limit_key():
    """One bucket per presented key (hashed, so the key is not kept in the limiter)."""
    token = _bearer_token()
    if token:
        return "partner-key:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]
    return "partner-anon:" + (get_remote_address() or "")


class Refused(PortalError):
    """Ends a request with an API error (handled below)."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code = status, code


@bp.errorhandler(Refused)
@bp.errorhandler(services.PartnerRequestRefused)
def refused(error):
    """Refusals come before anything is written; what a request leaves uncommitted is
    rolled back when it ends."""
    return api_error(error.status, error.code, str(error))


def takes_query(*allowed):
    """The view accepts only the query parameters ``allowed``, each once; anything else
    is a 400 (a misspelt filter must not silently mean "everything")."""
    def decorate(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            problem = unknown_query_parameter(allowed)
            if problem:
                raise Refused(400, "bad_request", problem)
            return view(*args, **kwargs)
        return checked
    return decorate


@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    partner = partner_for_key(_bearer_token())
    if partner is None:
        return api_error(401, "unauthorized")
    g.partner = partner
    return None


def _positive_int(name, default, maximum=None):
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number from 1")
    value = int(raw)
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}")
    return value


def unknown_query_parameter(allowed=()):
    """A misspelt filter (``?stauts=expired``) is an error, not a silent "everything"."""
    for name in request.args:
        if name not in allowed:
            return f"unknown query parameter {name!r}"
        if len(request.args.getlist(name)) > 1:
            return f"query parameter {name!r} given more than once"
    return None


@bp.get("/contracts")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query("status", "page", "per_page")
def contracts():
    status = request.args.get("status")
    if status is not None and status not in services.STATUSES:
        raise Refused(400, "bad_request", "status must be one of " + ", ".join(services.STATUSES))
    try:
        page = _positive_int("page", 1)
        per_page = _positive_int("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    except ValueError as error:
        raise Refused(400, "bad_request", str(error)) from None
    today = utc_today()
    items, total = services.partner_contracts(g.partner, today, status, page, per_page)
    rates = rate_table(today)
    return jsonify({
        "contracts": [services.contract_document(item, today, rates) for item in items],
        "page": page,
        "per_page": per_page,
        "total": total,
    })


def own_contract(number):
    """The partner's contract ``number``; another partner's is a 404 like a missing one."""
    item = None
    if len(number) <= MAX_NUMBER_LENGTH and "\x00" not in number:
        item = services.partner_contract(g.partner, number)
    if item is None:
        raise Refused(404, "not_found", "no such contract")
    return item


@bp.get("/contracts/<number>")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query()
def contract(number):
    return jsonify(services.contract_document(own_contract(number), utc_today()))


@bp.get("/contracts/<number>/quote")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query("pay_currency")
def quote(number):
    item = own_contract(number)
    return jsonify(services.partner_quote(item, utc_today(), request.args.get("pay_currency")))


@bp.post("/contracts/<number>/renewal-link")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query()
def renewal_link(number):
    recipients = services.email_renewal_link(g.partner, own_contract(number), utc_today())
    db.session.commit()
    return jsonify({"status": "sent", "recipients": recipients}), 202


@bp.post("/webhooks")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query()
def add_webhook():
    if request.mimetype and not request.is_json:
        raise Refused(415, "unsupported_media_type",
                      "the body must be JSON, sent with Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"url"}:
        raise Refused(400, "bad_request", 'the body must be a JSON object {"url": "..."}')
    production = current_app.config.get("PORTAL_ENV") == "production"
    try:
        webhook, secret = webhooks.register(g.partner, body["url"], production)
    except webhooks.WebhookConflict as error:
        raise Refused(409, "conflict", str(error)) from None
    except webhooks.WebhookError as error:
        raise Refused(400, "bad_request", str(error)) from None
    db.session.commit()
    return jsonify(webhooks.webhook_document(webhook, secret)), 201


@bp.get("/webhooks")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query()
def list_webhooks():
    return jsonify({"webhooks": [webhooks.webhook_document(endpoint)
                                 for endpoint in webhooks.live_endpoints(g.partner)]})


@bp.delete("/webhooks/<webhook_id>")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query()
def delete_webhook(webhook_id):
    endpoint = None
    if webhook_id.isascii() and webhook_id.isdigit() and int(webhook_id) <= MAX_EVENT_ID:
        endpoint = webhooks.find_endpoint(g.partner, int(webhook_id))
    if endpoint is None:
        raise Refused(404, "not_found", "no such webhook")
    webhooks.remove(endpoint)
    db.session.commit()
    return "", 204


@bp.get("/events")
@rate_limited(key_rate_limit, key_func=rate_limit_key)
@takes_query("after", "limit")
def event_feed():
    try:
        after = _whole_number("after", 0, MAX_EVENT_ID)
        limit = _positive_int("limit", DEFAULT_EVENTS, DEFAULT_EVENTS)
    except ValueError as error:
        raise Refused(400, "bad_request", str(error)) from None
    settled = utc_now() - timedelta(
        seconds=current_app.config.get("PARTNER_EVENTS_SETTLE_SECONDS", 10))
    found = events.events_after(g.partner, after, limit + 1, settled)
    return jsonify({"events": [events.event_document(event) for event in found[:limit]],
                    "has_more": len(found) > limit})


def _whole_number(name, default, maximum):
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > maximum:
        raise ValueError(f"{name} must be a whole number from 0 to {maximum}")
    return int(raw)


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
