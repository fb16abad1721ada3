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

The Message-ID is fixed at staging. If the process dies after the server accepted a
message but before the commit, the next drain sends it again with the same Message-ID:
the one case where a recipient can get two copies, recognisable as the same message.
"""
import os
import re
import smtplib
import socket
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import or_, select

from portal.audit.models import record
from portal.extensions import db
from portal.mail.addresses import deliverable
from portal.mail.models import OutboxMessage
from portal.timeutil import utc_now as _now  # the outbox's clock: naive UTC

#: Backoff after the n-th temporary failure: BASE * 2**(n-1), at most MAX.
RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=6)
#: After this many temporary failures a message is given up as failed.
MAX_ATTEMPTS = 12


class TemporaryFailure(Exception):
    """The server or the connection failed in a way worth retrying."""


class PermanentFailure(Exception):
    """The server refused the message for good (5xx)."""


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
    for filename, content, mimetype in attachments:
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
    ``attachments``: ``(filename, bytes, mimetype)`` tuples. With ``key``, a message
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
        status="staged", attempts=0, mime=message.as_bytes(),
    )
    db.session.add(row)
    db.session.flush()
    return row


# --- delivery ---


def _claim(now, skip_ids):
    """The next due message, locked for this transaction (others skip it)."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status.in_(("staged", "retry")),
               or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
        .order_by(OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skip_ids:
        query = query.where(OutboxMessage.id.not_in(skip_ids))
    return db.session.scalar(query)


class SmtpTransport:
    """One SMTP connection, opened on first use and reopened after an error."""

    def __init__(self, url, timeout):
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            raise ValueError(f"SMTP_URL must look like smtp://host:port, not {url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port or 25, timeout
        self.connection = None

    def send(self, row):
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
            row = _claim(now_at, tried)
            if row is None:
                break
            tried.append(row.id)
            outcome = _deliver(sender, row, now_at)
            db.session.commit()
            counts[outcome] += 1
            if outcome == "retry" and row.last_error.startswith("connection:"):
                break
    finally:
        db.session.rollback()
        sender.close()
    return counts


def _deliver(sender, row, now):
    row.attempts += 1
    if not deliverable(row.to):  # the envelope and the To: header must name one mailbox
        row.last_error = f"not an email address: {row.to!r}"[:2000]
        return _fail(row)
    try:
        sender.send(row)
    except TemporaryFailure as error:
        row.last_error = str(error)[:2000]
        if row.attempts >= MAX_ATTEMPTS:
            return _fail(row)
        row.status = "retry"
        row.next_attempt_at = now + backoff(row.attempts)
        return "retry"
    except PermanentFailure as error:
        row.last_error = str(error)[:2000]
        return _fail(row)
    row.status = "sent"
    row.sent_at = now
    row.next_attempt_at = None
    return "sent"


def _fail(row):
    row.status = "failed"
    row.next_attempt_at = None
    record("system", "mail.failed", row.message_id, to=row.to, kind=row.kind,
           error=row.last_error)
    return "failed"


def failed_messages(limit=100):
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == "failed")
        .order_by(OutboxMessage.id.desc()).limit(limit)
    ).all()
