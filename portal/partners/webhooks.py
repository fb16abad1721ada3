"""Partner webhook endpoints: registration, signing and delivery.

Delivery never runs inside a request of the portal. ``deliver_due_webhooks`` (the command
``portal partner deliver-webhooks``, and the background schedule) works in batches: a
short transaction claims up to ``BATCH`` due deliveries under row locks (``FOR UPDATE
SKIP LOCKED``) and moves their due time to the end of a lease, the POSTs run outside any
transaction with connect and read timeouts, and a second short transaction logs every
attempt and schedules the next ones. Several runs at once share the work; a run that
dies mid-batch leaves its deliveries to be retried when the lease ends (the endpoint may
then see an event id again). An endpoint that fails is not tried again in the same run
(its other claimed deliveries are given back untried), so a dead endpoint costs one
timeout per run and never holds up the others.
"""
import hashlib
import hmac
import http.client
import ipaddress
import re
import json
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from portal import logs
from portal.errors import PortalError
from portal.extensions import db
from portal.partners.events import event_document
from portal.partners.models import PartnerWebhook, WebhookAttempt, WebhookDelivery
from portal.timeutil import utc_now

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Portal-Signature"
MAX_URL_LENGTH = 2048
MAX_ENDPOINTS = 5
#: Backoff after the n-th failed attempt: BASE * 2**(n-1), at most MAX; a delivery is
#: given up once its next attempt would fall more than GIVE_UP_AFTER after the event.
RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=12)
GIVE_UP_AFTER = timedelta(days=3)
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 10
#: Deliveries claimed together in one transaction, and logged together in another.
BATCH = 10
#: How long claimed deliveries stay away from other runs: longer than a batch of POSTs
#: that all time out.
LEASE = timedelta(seconds=BATCH * (CONNECT_TIMEOUT + READ_TIMEOUT) + 45)
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
_PATH = r"(?:/[-A-Za-z0-9._~!$&'()*+,;=:@%/]*)?(?:\?[-A-Za-z0-9._~!$&'()*+,;=:@%/?]*)?"
#: The URLs an endpoint may have (the OpenAPI document publishes this pattern): https to
#: a host name or address, or http to a loopback address (refused in production, as are
#: private addresses; see ``check_url``). No credentials, no fragment.
URL_PATTERN = (r"^(?:https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
               r"|http://(?:127\.0\.0\.1|localhost|\[::1\]))" + _PORT + _PATH + "$")
URL_RE = re.compile(URL_PATTERN)


class WebhookError(PortalError):
    """An endpoint that cannot be registered; the message says why."""


class WebhookConflict(WebhookError):
    """The URL is registered already, or the partner has all the endpoints it may have."""


# --- registration ---


def check_url(url, production):
    """``url`` when it may receive events, else WebhookError: https with a host name or a
    public address; plain http only to a loopback address outside production."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise WebhookError(f"url must be a text of 1 to {MAX_URL_LENGTH} characters")
    if not URL_RE.fullmatch(url):
        raise WebhookError("url must be an https:// URL (or http:// to a loopback address "
                           "outside production), without credentials or fragment")
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme == "http" and production:
        raise WebhookError("url must be an https:// URL")
    if production:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if host == "localhost" or (address is not None and not address.is_global):
            raise WebhookError("url must point to a public address")
    return url


def signing_secret(webhook):
    """The endpoint's secret, derived from the server key and the row's salt."""
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    digest = hmac.new(key, b"partner-webhook:" + webhook.secret_salt.encode("ascii"),
                      hashlib.sha256).hexdigest()
    return SECRET_PREFIX + digest


def register(partner, url, production):
    """Add an endpoint for ``partner``; returns ``(webhook, secret)``. The caller commits
    and shows the secret once."""
    check_url(url, production)
    live = live_endpoints(partner)
    if len(live) >= MAX_ENDPOINTS:
        raise WebhookConflict(f"a partner may register at most {MAX_ENDPOINTS} endpoints")
    if any(endpoint.url == url for endpoint in live):
        raise WebhookConflict("this url is registered already")
    webhook = PartnerWebhook(partner_id=partner.id, url=url, secret_salt=secrets.token_hex(16),
                             created_at=utc_now())
    db.session.add(webhook)
    db.session.flush()
    return webhook, signing_secret(webhook)


def live_endpoints(partner):
    return db.session.scalars(select(PartnerWebhook).where(
        PartnerWebhook.partner_id == partner.id, PartnerWebhook.removed_at.is_(None))
        .order_by(PartnerWebhook.id)).all()


def find_endpoint(partner, webhook_id):
    return db.session.scalar(select(PartnerWebhook).where(
        PartnerWebhook.id == webhook_id, PartnerWebhook.partner_id == partner.id,
        PartnerWebhook.removed_at.is_(None)))


def remove(webhook):
    """Stop an endpoint: its pending deliveries are cancelled; the caller commits."""
    webhook.removed_at = utc_now()
    db.session.execute(update(WebhookDelivery).where(
        WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.status == "pending")
        .values(status="cancelled"))


def webhook_document(webhook, secret=None):
    document = {"id": webhook.id, "url": webhook.url,
                "created": webhook.created_at.replace(microsecond=0).isoformat() + "Z"}
    if secret is not None:
        document["secret"] = secret
    return document


# --- signing ---


def sign(secret, body, timestamp):
    """The ``Portal-Signature`` header value of ``body`` (bytes) sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body,
                   hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_body(event):
    return json.dumps(event_document(event), separators=(",", ":"), sort_keys=True).encode()


# --- delivery ---


@dataclass
class PostResult:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self):
        return self.status_code is not None and 200 <= self.status_code < 300


def post_json(url, body, headers, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT):
    """POST ``body`` to ``url`` without following redirects; never raises for trouble
    with the endpoint (it becomes the result's ``error``)."""
    parts = urlsplit(url)
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    connection = connection_class(parts.hostname, parts.port, timeout=connect_timeout)
    try:
        connection.connect()
        connection.sock.settimeout(read_timeout)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(4096)
        return PostResult(response.status, None, _since(started))
    except (OSError, http.client.HTTPException, ValueError) as error:
        # ValueError: a host name the IDNA codec refuses ("a..example"), among others.
        return PostResult(None, f"{type(error).__name__}: {error}"[:500], _since(started))
    finally:
        connection.close()


def _since(started):
    return int((time.monotonic() - started) * 1000)


def resolves_to_public(url):
    """Whether every address the URL's host resolves to is public (production refuses to
    POST into the portal's own network, whatever the name pointed to at registration)."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_global
                               for info in infos)


def backoff(attempts):
    return min(RETRY_BASE * 2 ** (attempts - 1), RETRY_MAX)


@dataclass
class Claim:
    delivery_id: int
    webhook_id: int
    event_id: int
    url: str
    secret: str
    body: bytes
    event_created: datetime
    #: When it was due before the claim, to give it back untried.
    due_at: datetime


def _claim(now, skip_webhooks, size):
    """Lock up to ``size`` due deliveries (others' claims skipped), push their due time
    to the end of the lease and commit; an empty list when nothing is due (for the
    endpoints not skipped)."""
    query = (select(WebhookDelivery)
             .options(joinedload(WebhookDelivery.webhook, innerjoin=True),
                      joinedload(WebhookDelivery.event, innerjoin=True))
             .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
             .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
             .limit(size).with_for_update(of=WebhookDelivery, skip_locked=True))
    if skip_webhooks:
        query = query.where(WebhookDelivery.webhook_id.not_in(skip_webhooks))
    claims = []
    for delivery in db.session.scalars(query).all():
        claims.append(Claim(delivery.id, delivery.webhook_id, delivery.event_id,
                            delivery.webhook.url, signing_secret(delivery.webhook),
                            event_body(delivery.event), delivery.event.created_at,
                            delivery.next_attempt_at))
        delivery.attempts += 1
        delivery.next_attempt_at = now + LEASE
    db.session.commit()
    return claims


def _finish(tried, now):
    """Log each attempt and settle its delivery (delivered, retried later, or given up);
    a claim tried with None is given back as it was. One transaction for the batch.
    Returns ``[(claim, result, outcome)]`` of the attempts."""
    deliveries = {delivery.id: delivery for delivery in db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id.in_([c.delivery_id for c, _ in tried]))
        .order_by(WebhookDelivery.id).with_for_update())}
    settled = []
    for claim, result in tried:
        delivery = deliveries[claim.delivery_id]
        if result is None:
            if delivery.status == "pending":
                delivery.attempts -= 1
                delivery.next_attempt_at = claim.due_at
            continue
        db.session.add(WebhookAttempt(delivery_id=delivery.id, attempted_at=now,
                                      status_code=result.status_code, error=result.error,
                                      duration_ms=result.duration_ms))
        if delivery.status != "pending":  # removed meanwhile: keep the log, change nothing
            outcome = delivery.status
        elif result.ok:
            delivery.status, delivery.delivered_at, outcome = "delivered", now, "delivered"
        else:
            next_at = now + backoff(delivery.attempts)
            if next_at - claim.event_created > GIVE_UP_AFTER:
                delivery.status, outcome = "failed", "failed"
            else:
                delivery.next_attempt_at, outcome = next_at, "retry"
        settled.append((claim, result, outcome))
    db.session.commit()
    for claim, result, outcome in settled:
        logs.webhook_attempt(claim.webhook_id, claim.event_id, outcome,
                             status=result.status_code, error=result.error,
                             duration_ms=result.duration_ms)
    return settled


def _post(claim, post, production):
    if production and not resolves_to_public(claim.url):
        return PostResult(None, "the host does not resolve to a public address", 0)
    return post(claim.url, claim.body, {
        "Content-Type": "application/json",
        "User-Agent": "RenewalPortal-Webhooks/1",
        SIGNATURE_HEADER: sign(claim.secret, claim.body, int(time.time())),
        "Portal-Event-Id": str(claim.event_id),
    })


def deliver_due_webhooks(now=None, limit=100, post=post_json):
    """Deliver up to ``limit`` due deliveries, ``BATCH`` claimed at a time; returns counts
    by outcome. ``now`` fixes the clock (tests); by default each step reads it anew."""
    counts = {"delivered": 0, "retry": 0, "failed": 0, "cancelled": 0}
    failing = set()
    production = current_app.config.get("PORTAL_ENV") == "production"
    attempted = 0
    while attempted < limit:
        claims = _claim(now or utc_now(), failing, min(BATCH, limit - attempted))
        if not claims:
            break
        tried = []
        for claim in claims:
            if claim.webhook_id in failing:  # failed earlier in this run: given back
                tried.append((claim, None))
                continue
            result = _post(claim, post, production)
            tried.append((claim, result))
            if not result.ok:
                failing.add(claim.webhook_id)
        for _claim_done, _result, outcome in _finish(tried, now or utc_now()):
            counts[outcome] += 1
            attempted += 1
    return counts


# --- what staff see ---


def endpoint_overview():
    """Every endpoint with its partner and delivery counts by status, newest first."""
    counts = {}
    rows = db.session.execute(select(WebhookDelivery.webhook_id, WebhookDelivery.status,
                                     func.count()).group_by(WebhookDelivery.webhook_id,
                                                            WebhookDelivery.status))
    for webhook_id, status, count in rows:
        counts.setdefault(webhook_id, {})[status] = count
    endpoints = db.session.scalars(select(PartnerWebhook).order_by(PartnerWebhook.id.desc()))
    return [(endpoint, counts.get(endpoint.id, {})) for endpoint in endpoints]


def recent_attempts(limit=50):
    return db.session.execute(
        select(WebhookAttempt, WebhookDelivery).join(
            WebhookDelivery, WebhookAttempt.delivery_id == WebhookDelivery.id)
        .order_by(WebhookAttempt.id.desc()).limit(limit)).all()
