"""Every message handed to the mail server is one log line, its outcome and duration,
never the address or the server's answer; a refusal is a warning."""
import logging

from portal import logs
from portal.extensions import db
from portal.mail.outbox import drain, stage_email


def mail_lines(records):
    return [r for r in records if getattr(r, "event", None) == "mail"]


def test_each_attempt_is_one_line_without_the_address(smtp, captured):
    sent = stage_email("eva@muster.example", "test", subject="Hallo", body="Hallo\n", locale="de")
    refused = stage_email("nobody@x.example", "test", subject="Hallo", body="Hallo\n",
                          locale="de")
    db.session.commit()
    drain(limit=1)
    smtp.refusals = ["550 5.1.1 nobody@x.example: no such user"]
    drain()
    first, second = mail_lines(captured)
    assert (first.outbox, first.provider, first.outcome, first.levelno) == (
        sent.id, "smtp", "sent", logging.INFO)
    assert (second.outbox, second.outcome, second.levelno) == (
        refused.id, "failed", logging.WARNING)
    assert first.duration_ms >= 0
    for record in (first, second):
        text = logs.JsonFormatter().format(record) + logs.TextFormatter().format(record)
        assert "@" not in text and "550" not in text
        assert f"outbox={record.outbox}" in logs.TextFormatter().format(record)
