"""Staging and delivering email.

``stage_email`` renders a message in the recipient's language and stores it in the
outbox inside the caller's transaction, so an email exists exactly when the change that
caused it is committed. ``drain`` delivers what is staged:

- with ``SMTP_URL`` (``smtp://host:port``) over SMTP. Each message is claimed with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL), handed to the server and marked
  sent in the same transaction, so several drains share the work without duplicates.
  A temporary failure (4xx, connection trouble) is retried with exponential backoff; a
  permanent one (5xx) is recorded as ``failed`` with the server's answer.
- without ``SMTP_URL``, as ``.eml`` files in ``OUTBOX_DIR``.

An attachment that is slow to make (an invoice PDF) can be staged as a
:class:`DeferredAttachment`: the staged message holds an empty part that names it, and
the first delivery attempt makes it, after the claim's transaction committed and in a
reading one, so no write lock is held while WeasyPrint works. The finished message is
stored with the attempt's outcome; later attempts send it as it is.

The Message-ID is fixed at staging. If the process dies after the server accepted a
message but before the commit, the next drain sends it again with the same Message-ID:
the one case where a recipient can get two copies, recognisable as the same message.
"""
import atexit
import os
import re
import smtplib
import socket
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import or_, select

from portal import logs
from portal.audit.models import record
from portal.errors import ConfigError, PortalError
from portal.extensions import db, write_intent
from portal.mail.addresses import deliverable
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.timeutil import utc_now as _now  # the outbox's clock: naive UTC

#: Backoff after the n-th temporary failure: BASE * 2**(n-1), at most MAX.
RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=6)
#: After this many temporary failures a message is given up as failed.
MAX_ATTEMPTS = 12

#: Lines end in CRLF; headers are folded only past RFC 5322's 998 characters (at 78,
#: Python folds a subject a little longer than that right after "Subject:", and readers
#: then show it with a leading space).
SMTP_POLICY = SMTP.clone(max_line_length=998)


class TemporaryFailure(PortalError):
    """The server or the connection failed in a way worth retrying."""


class PermanentFailure(PortalError):
    """The server refused the message for good (5xx)."""


#: The header of a staged part whose content is made at delivery: ``<source> <key>``.
DEFERRED_HEADER = "X-Portal-Deferred"
_attachment_makers = {}


@dataclass(frozen=True)
class DeferredAttachment:
    """An attachment made at delivery by the maker registered for ``source``, from
    ``key`` (what to make: a document id and a locale, say)."""

    filename: str
    mimetype: str
    source: str
    key: str


def register_attachment_maker(source, make):
    """``make(key) -> bytes`` makes the deferred attachments of ``source``; a feature
    that stages them registers it when the app is created (mail imports no feature)."""
    _attachment_makers[source] = make


def _sender():
    return current_app.config["MAIL_FROM"]


def _domain():
    address = parseaddr(_sender())[1]
    return address.rpartition("@")[2] or "portal.invalid"


def render(template, context, locale):
    """``(subject, text, html)`` of ``templates/<template>/`` in ``locale``."""
    context = {"locale": locale, **context}
    with force_locale(locale):
        subject = render_template(f"{template}/subject.txt", **context)
        text = render_template(f"{template}/body.txt", **context)
        html = render_template(f"{template}/body.html", **context)
    return " ".join(subject.split()), text, html


def build_message(to, subject, text, html=None, attachments=(), locale="en"):
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = _sender()
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=_domain())
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for attachment in attachments:
        if isinstance(attachment, DeferredAttachment):
            maintype, _, subtype = attachment.mimetype.partition("/")
            message.add_attachment(b"", maintype=maintype, subtype=subtype,
                                   filename=attachment.filename)
            message.get_payload()[-1][DEFERRED_HEADER] = f"{attachment.source} {attachment.key}"
            continue
        filename, content, mimetype = attachment
        maintype, _, subtype = mimetype.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    # last: setting the body or adding parts moves Content-* headers into a subpart
    message["Content-Language"] = locale.replace("_", "-")
    return message


def compose(to, template, context, locale="en", attachments=()):
    """Render and build one message without touching the database, so a job can do the
    slow part before it opens its writing transaction; stage it with ``message=``."""
    subject, body, html = render(template, context, locale)
    return build_message(to, subject, body, html, attachments, locale)


def stage_email(to, kind=None, template=None, context=None, locale="en", attachments=(),
                contract=None, *, subject=None, body=None, html=None, key=None, message=None,
                contract_id=None):
    """Render and stage one email; the caller commits. Returns the OutboxMessage.

    ``template`` names the folder under ``templates/`` (default: ``kind``), rendered with
    ``context`` in ``locale``; or pass an already rendered ``subject`` and ``body``
    (and optionally ``html``), or a ``message`` built by :func:`compose`.
    ``attachments``: ``(filename, bytes, mimetype)`` tuples, or DeferredAttachment
    (made at delivery, outside the caller's transaction). With ``key``, a message
    already staged under that key is returned instead of a new one.
    """
    if key is not None:
        existing = db.session.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
        if existing is not None:
            return existing
    kind = kind or (key.partition(":")[0] if key else "message")
    if message is None:
        if subject is None:
            subject, body, html = render(template or kind, context or {}, locale)
        message = build_message(to, " ".join(subject.split()), body, html, attachments, locale)
    row = OutboxMessage(
        message_id=message["Message-ID"], key=key, to=to, locale=locale,
        subject=str(message["Subject"]), kind=kind,
        contract_id=contract.id if contract is not None else contract_id,
        status=OutboxStatus.STAGED, attempts=0, mime=message.as_bytes(),
    )
    db.session.add(row)
    db.session.flush()
    return row


# --- delivery ---


def _due(now):
    return (OutboxMessage.status.in_(("staged", "retry")),
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))


@dataclass(frozen=True)
class Claim:
    """A message taken for one delivery attempt: what the transport needs, and the
    lease that marks it as this attempt's."""

    id: int
    to: str
    kind: str
    message_id: str
    mime: bytes
    attempts: int
    lease: datetime
    #: The deferred attachments were made for this attempt: store the finished message.
    completed: bool = False


def lease_length():
    """How long a taken message stays this attempt's: longer than a whole SMTP
    conversation (each step is bounded by SMTP_TIMEOUT_SECONDS)."""
    return timedelta(seconds=4 * int(current_app.config.get("SMTP_TIMEOUT_SECONDS", 30)) + 60)


def _claim(now, skip_ids=(), message_id=None):
    """Take the next due message (or the one with ``message_id`` if it is due) in a
    short transaction: its attempt is counted and its next attempt moved past the lease,
    so no other delivery takes it while this one talks to the mail server, and no lock
    is held meanwhile. Returns a :class:`Claim`, or None when nothing is due."""
    query = (
        select(OutboxMessage)
        .where(*_due(now))
        .order_by(OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skip_ids:
        query = query.where(OutboxMessage.id.not_in(skip_ids))
    if message_id is not None:
        query = query.where(OutboxMessage.id == message_id)
    with write_intent(True):
        row = db.session.scalar(query)
        if row is None:
            db.session.rollback()
            return None
        row.attempts += 1
        row.next_attempt_at = now + lease_length()
        claim = Claim(id=row.id, to=row.to, kind=row.kind, message_id=row.message_id,
                      mime=row.mime, attempts=row.attempts, lease=row.next_attempt_at)
        db.session.commit()
    return claim


def due_message_ids(now=None, limit=None):
    """Ids of the messages due for delivery, oldest first."""
    query = select(OutboxMessage.id).where(*_due(now or _now())).order_by(OutboxMessage.id)
    return db.session.scalars(query.limit(limit)).all()


class SmtpTransport:
    """One SMTP connection, opened on first use and reopened after an error."""

    name = "smtp"

    def __init__(self, url, timeout):
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            raise ConfigError(f"SMTP_URL must look like smtp://host:port, not {url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port or 25, timeout
        self.connection = None

    def send(self, row):
        if self.connection is not None:
            try:
                return self._send(row)
            except TemporaryFailure as error:
                # A kept connection the server has closed meanwhile (idle timeout, or 421
                # "closing"): once more on a new one, as a retry would, same Message-ID.
                if not str(error).startswith(("connection:", "421")):
                    raise
        return self._send(row)

    def _send(self, row):
        try:
            if self.connection is None:
                self.connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            self.connection.sendmail(parseaddr(_sender())[1], [row.to], row.mime)
        except smtplib.SMTPRecipientsRefused as error:
            self.close()
            code, answer = next(iter(error.recipients.values()))
            raise _classify(code, answer) from error
        except smtplib.SMTPResponseException as error:
            self.close()
            raise _classify(error.smtp_code, error.smtp_error) from error
        except (smtplib.SMTPException, OSError, socket.timeout) as error:
            self.close()
            raise TemporaryFailure(f"connection: {error}") from error

    def close(self):
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None


def _classify(code, answer):
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    text = f"{code} {answer}"
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)


class FileTransport:
    """Writes each message as ``<id>.eml`` into the outbox folder."""

    name = "folder"

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, row):
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{row.id:08d}-{row.kind}") + ".eml"
        partial = self.folder / (name + ".part")
        partial.write_bytes(row.mime)
        os.replace(partial, self.folder / name)

    def close(self):
        pass


def transport():
    url = current_app.config.get("SMTP_URL")
    if url:
        timeout = float(current_app.config["SMTP_TIMEOUT_SECONDS"])
        return SmtpTransport(url, timeout)
    return FileTransport(current_app.config["OUTBOX_DIR"])


_kept = threading.local()
_every_kept = []  # closed (QUIT) when the process ends


@atexit.register
def _close_kept_connections():
    for kept in _every_kept:
        kept.close()


def kept_transport():
    """The transport of the delivery tasks: one SMTP connection per thread, kept from one
    message to the next (a connection, greeting and goodbye per message cost the worker
    and the mail server more than the message itself)."""
    if not current_app.config.get("SMTP_URL"):
        return transport()
    settings = (current_app.config["SMTP_URL"], float(current_app.config["SMTP_TIMEOUT_SECONDS"]))
    if getattr(_kept, "settings", None) != settings:
        if getattr(_kept, "transport", None) is not None:
            _kept.transport.close()
            _every_kept.remove(_kept.transport)
        _kept.transport, _kept.settings = transport(), settings
        _every_kept.append(_kept.transport)
    return _kept.transport


def backoff(attempts):
    return min(RETRY_BASE * 2 ** (attempts - 1), RETRY_MAX)


def drain(now=None, limit=None):
    """Deliver due messages; returns ``{"sent": n, "retry": n, "failed": n}``.

    A connection-level failure stops the run after rescheduling the message at hand, so a
    server that is down does not use up every message's attempts at once.
    """
    counts = {"sent": 0, "retry": 0, "failed": 0}
    sender = transport()
    tried = []
    try:
        while limit is None or len(tried) < limit:
            now_at = now or _now()
            claim = _claim(now_at, tried)
            if claim is None:
                break
            tried.append(claim.id)
            outcome, error = _deliver(sender, claim, now_at)
            counts[outcome] += 1
            if outcome == "retry" and error.startswith("connection:"):
                break
    finally:
        db.session.rollback()
        sender.close()
    return counts


def deliver_one(message_id, now=None):
    """Deliver one message if it is still due and no one else holds it; returns the
    outcome (``sent``, ``retry``, ``failed``) or None when there was nothing to do, so a
    second call for the same message sends nothing."""
    now = now or _now()
    try:
        claim = _claim(now, message_id=message_id)
        if claim is None:
            return None
        outcome, _error = _deliver(kept_transport(), claim, now)
        return outcome
    finally:
        db.session.rollback()


def _deliver(sender, claim, now):
    """Finish the claimed message, hand it to the server and record the outcome:
    ``(outcome, error)``. A deferred attachment that cannot be made is retried like a
    server that is down, and given up after as many attempts."""
    try:
        claim = _complete(claim)
    except Exception as problem:  # noqa: BLE001  (whatever the maker raises, the run goes on)
        current_app.logger.warning("attachment of message %s not made: %s", claim.id, problem)
        outcome = "failed" if claim.attempts >= MAX_ATTEMPTS else "retry"
        error = f"attachment: {problem!r}"
    else:
        outcome, error = _attempt(sender, claim)
    _settle(claim, outcome, error, now)
    return outcome, error


def _complete(claim):
    """The claim with its deferred attachments made, in a reading transaction that ends
    before the mail server is called (no write lock is held while they render)."""
    if DEFERRED_HEADER.encode() not in claim.mime or not deliverable(claim.to):
        return claim
    message = message_from_bytes(claim.mime, policy=SMTP_POLICY)
    with write_intent(False):
        try:
            for part in message.walk():
                spec = part.get(DEFERRED_HEADER)
                if spec is None:
                    continue
                source, _, key = str(spec).partition(" ")
                content = _attachment_makers[source](key)
                filename = part.get_filename()
                maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
                del part[DEFERRED_HEADER]
                part.set_content(content, maintype=maintype, subtype=subtype,
                                 filename=filename)
        finally:
            db.session.rollback()
    return replace(claim, mime=message.as_bytes(), completed=True)


def _attempt(sender, claim):
    """Talk to the mail server, outside any transaction: ``(outcome, error)``, logged."""
    started = time.perf_counter()
    outcome, error = _exchange(sender, claim)
    logs.mail_attempt(claim.id, sender.name, outcome,
                      duration_ms=round((time.perf_counter() - started) * 1000, 1))
    return outcome, error


def _exchange(sender, claim):
    if not deliverable(claim.to):  # the envelope and the To: header must name one mailbox
        return "failed", f"not an email address: {claim.to!r}"
    try:
        sender.send(claim)
    except TemporaryFailure as error:
        return ("failed" if claim.attempts >= MAX_ATTEMPTS else "retry"), str(error)
    except PermanentFailure as error:
        return "failed", str(error)
    return "sent", ""


def _settle(claim, outcome, error, now):
    """Record the attempt's outcome in a short transaction, if the message is still this
    attempt's (a lease that ran out may have passed it to another delivery)."""
    with write_intent(True):
        row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.id == claim.id)
                                .with_for_update())
        if row is None or row.next_attempt_at != claim.lease or row.status in ("sent",
                                                                               "failed"):
            db.session.rollback()
            return
        if claim.completed:
            row.mime = claim.mime
        if error:
            row.last_error = error[:2000]
        if outcome == "sent":
            row.transition(OutboxStatus.SENT)
            row.sent_at, row.next_attempt_at = now, None
        elif outcome == "retry":
            row.transition(OutboxStatus.RETRY)
            row.next_attempt_at = now + backoff(row.attempts)
        else:
            _fail(row)
        db.session.commit()


def _fail(row):
    row.transition(OutboxStatus.FAILED)
    row.next_attempt_at = None
    record("system", "mail.failed", row.message_id, to=row.to, kind=row.kind,
           error=row.last_error)
    return "failed"


def failed_messages(limit=100):
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == "failed")
        .order_by(OutboxMessage.id.desc()).limit(limit)
    ).all()
