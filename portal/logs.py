"""Operational log lines: one per failed request, per payment-provider call and per job
run, each carrying the contract number or order reference it concerns.

``LOG_FORMAT=json`` writes one JSON object a line (for a log collector); the default is
plain text. Secrets never reach a log line: renewal-link tokens are cut out of paths.
"""
import contextvars
import json
import logging
import re
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone

LOGGER = logging.getLogger("portal")
#: Fields a line may carry besides its message, in the order text lines show them.
FIELDS = ("event", "method", "path", "status", "duration_ms", "provider", "call", "outcome",
          "contract", "order", "payment", "job", "counts", "webhook", "event_id", "outbox",
          "error")
#: What the work in progress is about (contract, order), added to the lines it logs.
_about = contextvars.ContextVar("portal_log_about", default={})
TOKEN_PATH = re.compile(r"^/r/[^/?#]+")
LINK_IN_TEXT = re.compile(r"/r/[^/?#\s\"]+")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message and the fields."""

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level message key=value ...``."""

    def format(self, record):
        fields = " ".join(f"{name}={_text(getattr(record, name))}" for name in FIELDS
                          if hasattr(record, name))
        stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        line = f"{stamp} {record.levelname} {record.getMessage()}"
        line = f"{line} {fields}" if fields else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _text(value):
    if isinstance(value, dict):
        return ",".join(f"{key}:{count}" for key, count in value.items())
    return str(value).replace(" ", "_") if value is not None else "-"


def configure(log_format="text", level="INFO"):
    """Send the ``portal`` logger's lines to stderr in ``log_format`` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.set_name("portal")
    LOGGER.handlers = [h for h in LOGGER.handlers if h.get_name() != "portal"] + [handler]
    LOGGER.setLevel(level)
    LOGGER.propagate = False
    werkzeug = logging.getLogger("werkzeug")  # the development server's access lines
    if not any(isinstance(f, TokenFilter) for f in werkzeug.filters):
        werkzeug.addFilter(TokenFilter())


class TokenFilter(logging.Filter):
    """Cuts renewal-link tokens out of other loggers' lines (the development server's
    and gunicorn's access lines print the request path)."""

    def filter(self, record):
        if isinstance(record.msg, str) and "/r/" in record.msg:
            record.msg = LINK_IN_TEXT.sub("/r/<token>", record.msg)
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(LINK_IN_TEXT.sub("/r/<token>", a) if isinstance(a, str) else a
                                for a in record.args)
        elif isinstance(record.args, dict):  # gunicorn's access line atoms
            record.args = {k: LINK_IN_TEXT.sub("/r/<token>", v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        return True


def log_config(log_format="text"):
    """A ``logging.config.dictConfig`` for gunicorn's own loggers in the portal's format."""
    formatter = "portal.logs.JsonFormatter" if log_format == "json" else "portal.logs.TextFormatter"
    handler = {"class": "logging.StreamHandler", "formatter": "portal",
               "filters": ["tokens"], "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"portal": {"()": formatter}},
        "filters": {"tokens": {"()": "portal.logs.TokenFilter"}},
        "handlers": {"error": handler, "access": {**handler, "stream": "ext://sys.stdout"}},
        "root": {"handlers": ["error"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def safe_path(path):
    """A request path fit for a log: a renewal link's token is replaced."""
    return TOKEN_PATH.sub("/r/<token>", path or "")


def failed_request(method, path, status, *, contract=None, order=None):
    level = logging.ERROR if status >= 500 else logging.WARNING
    LOGGER.log(level, "request failed", extra=_drop_none(
        event="request", method=method, path=safe_path(path), status=status,
        contract=contract, order=order))


@contextmanager
def about(**fields):
    """Within the block, provider-call lines name this contract, order or payment."""
    token = _about.set({**_about.get(), **_drop_none(**fields)})
    try:
        yield
    finally:
        _about.reset(token)


@contextmanager
def provider_call(provider, call, **about_fields):
    """Log one line for a call to an outside provider (payments, exchange rates): its
    outcome and duration."""
    started = time.perf_counter()
    fields = {"event": "provider_call", "provider": provider, "call": call, **_about.get(),
              **_drop_none(**about_fields)}
    try:
        yield
    except Exception as error:
        LOGGER.warning("provider call failed", extra={
            **fields, "outcome": type(error).__name__, "error": str(error)[:200],
            "duration_ms": _ms(started)})
        raise
    LOGGER.info("provider call", extra={**fields, "outcome": "ok",
                                         "duration_ms": _ms(started)})


def webhook_attempt(webhook, event, outcome, *, status=None, error=None, duration_ms=0):
    """One line per POST of a partner event to an endpoint (never the secret or body)."""
    level = logging.INFO if outcome == "delivered" else logging.WARNING
    LOGGER.log(level, "webhook attempt", extra=_drop_none(
        event="webhook", webhook=webhook, event_id=event, outcome=outcome, status=status,
        error=error[:200] if error else None, duration_ms=duration_ms))


def mail_attempt(message_id, transport, outcome, *, duration_ms=0):
    """One line per message handed to the mail server (or the outbox folder): outcome
    and duration, never the address, the content or the server's answer."""
    level = logging.INFO if outcome == "sent" else logging.WARNING
    LOGGER.log(level, "mail attempt", extra={
        "event": "mail", "outbox": message_id, "provider": transport, "outcome": outcome,
        "duration_ms": duration_ms})


def job_run(job, counts, *, failed=0):
    """One line when a job (a command or a scheduled task) has run, with its counts."""
    level = logging.WARNING if failed else logging.INFO
    LOGGER.log(level, "job run", extra={"event": "job", "job": job, "counts": dict(counts)})


def _ms(started):
    return round((time.perf_counter() - started) * 1000, 1)


def _drop_none(**fields):
    return {name: value for name, value in fields.items() if value is not None}
