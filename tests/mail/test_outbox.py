"""The outbox against a real SMTP server on loopback."""
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.mail.outbox import build_message, drain, stage_email
from portal.timeutil import utc_now as _now
from tests.smtpsink import SmtpSink, free_port


def stage(to="eva@muster.example", key=None):
    row = stage_email(to, "test", subject="Grüße", body="Hallo Eva\n", html="<p>Hallo</p>",
                      locale="de", key=key)
    db.session.commit()
    return row


def later(minutes):
    return _now() + timedelta(minutes=minutes)


def test_staged_message_is_delivered_once(smtp):
    row = stage()
    assert drain() == {"sent": 1, "retry": 0, "failed": 0}
    assert drain() == {"sent": 0, "retry": 0, "failed": 0}
    assert smtp.message_ids() == [row.message_id]
    delivered = smtp.messages[0]
    assert delivered["Subject"] == "Grüße"
    assert delivered["To"] == "eva@muster.example"
    assert delivered.get_body(("plain",)).get_content().strip() == "Hallo Eva"
    assert row.status == "sent" and row.sent_at is not None and row.attempts == 1


def test_same_key_stages_one_message(smtp):
    first = stage(key="order:1")
    again = stage(key="order:1")
    assert again.id == first.id
    drain()
    assert len(smtp.messages) == 1


def test_a_drain_stopped_halfway_leaves_the_rest_for_the_next_one(smtp):
    rows = [stage(f"c{n}@x.example") for n in range(3)]
    assert drain(limit=1)["sent"] == 1  # the process stops here
    assert [r.status for r in rows] == ["sent", "staged", "staged"]
    assert drain()["sent"] == 2
    assert sorted(smtp.message_ids()) == sorted(r.message_id for r in rows)


def test_temporary_refusal_is_retried_with_backoff_then_delivered_once(smtp):
    row = stage()
    smtp.refusals = ["451 4.3.0 try again later", "421 4.7.0 busy"]
    assert drain() == {"sent": 0, "retry": 1, "failed": 0}
    assert row.status == "retry" and row.attempts == 1 and "451" in row.last_error
    first_wait = row.next_attempt_at
    assert drain()["retry"] == 0  # not due yet: nothing is tried
    assert drain(now=later(2))["retry"] == 1
    assert row.next_attempt_at - later(2) > first_wait - _now()  # waits longer
    assert drain(now=later(10)) == {"sent": 1, "retry": 0, "failed": 0}
    assert drain(now=later(60))["sent"] == 0
    assert smtp.message_ids() == [row.message_id]
    assert row.status == "sent" and row.attempts == 3


def test_permanent_refusal_is_recorded_as_failed_and_not_retried(smtp, cli):
    empty = cli("outbox", "failed")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "No failed messages." in empty.stderr
    row = stage("nobody@x.example")
    smtp.refusals = ["550 5.1.1 no such user"]
    assert drain() == {"sent": 0, "retry": 0, "failed": 1}
    assert row.status == "failed" and row.last_error.startswith("550")
    assert drain(now=later(600))["sent"] == 0
    assert smtp.messages == []
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "mail.failed"))
    assert audit.target == row.message_id
    listing = cli("outbox", "failed")
    assert listing.exit_code == 0 and "nobody@x.example" in listing.output and "550" in listing.output
    assert "No failed messages." not in listing.output


def test_server_down_reschedules_and_stops_the_run(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    monkeypatch.setitem(app.config, "SMTP_TIMEOUT_SECONDS", 2)
    first, second = stage("a@x.example"), stage("b@x.example")
    assert drain() == {"sent": 0, "retry": 1, "failed": 0}
    assert first.status == "retry" and first.last_error.startswith("connection:")
    assert second.status == "staged" and second.attempts == 0


def test_without_smtp_url_mail_goes_to_eml_files(app, monkeypatch, tmp_path, cli):
    monkeypatch.delitem(app.config, "SMTP_URL", raising=False)
    monkeypatch.setitem(app.config, "OUTBOX_DIR", str(tmp_path / "outbox"))
    row = stage()
    result = cli("outbox", "drain")
    assert result.exit_code == 0 and "sent 1" in result.output
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    parsed = message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert parsed["Message-ID"] == row.message_id and parsed["Subject"] == "Grüße"
    assert cli("outbox", "drain").output.startswith("sent 0")


def test_bad_smtp_url_is_a_one_line_error(app, monkeypatch, cli):
    monkeypatch.setitem(app.config, "SMTP_URL", "http://127.0.0.1:25")
    row = stage()
    result = cli("outbox", "drain")
    assert result.exit_code != 0 and "smtp://host:port" in result.output + (result.stderr or "")
    assert db.session.get(OutboxMessage, row.id).status == "staged"


def test_payment_that_renews_stages_one_receipt_in_the_contacts_language(app):
    from datetime import date

    from portal.orders.services import place_order, record_payment
    from portal.renewals.services import issue_quote
    from tests import factories

    day = date(2026, 11, 22)
    factories.launch("DE", "2013-03-19")
    factories.rate("USD", "1.0861", "2026-11-20")
    plist = factories.price_list("EMEA-EUR", "EUR", {("VS-ENT", "basic", 12): "450.00"})
    contract = factories.contract(plist, country="DE", language="de", end_date="2026-12-31")
    order = place_order(issue_quote(contract, day), "basic", 12, "EUR", "bank_transfer",
                        contact_id=None, today=day, actor="test")
    for _ in range(2):
        record_payment(order.id, provider="offline", provider_ref="B-7", amount="450.00",
                       currency="EUR", received_on=day, actor="staff@x")
    (row,) = db.session.scalars(select(OutboxMessage)).all()
    assert row.kind == "payment_received" and row.locale == "de"
    assert row.to == contract.account.contacts[0].email
    body = message_from_bytes(row.mime, policy=default_policy).get_body(("plain",)).get_content()
    assert "31. Dezember 2027" in body and order.reference in body and "450,00" in body


def test_a_change_request_is_acknowledged_once_with_its_message_escaped(app):
    from portal.checkout.services import request_change
    from portal.links.services import issue_link
    from tests import factories

    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
    contract = factories.contract(plist, language="ja", country="JP")
    link, _ = issue_link(contract, contract.account.contacts[0], purpose="notice")
    for _ in range(2):
        request_change(link, "level", "Please quote <b>production</b>")
    (row,) = db.session.scalars(select(OutboxMessage)).all()
    assert row.kind == "change_request_received" and row.locale == "ja"
    message = message_from_bytes(row.mime, policy=default_policy)
    assert link.reference in message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;production&lt;/b&gt;" in html and "<b>production" not in html


@pytest.mark.parametrize("to", ["x,spy@evil.example", "Eva <eva@muster.example>",
                                "eva@muster.example, spy@evil.example", "not-an-address"])
def test_a_malformed_recipient_is_never_handed_to_the_server(smtp, cli, to):
    row = stage(to)
    good = stage()
    result = cli("outbox", "drain")
    assert result.exit_code == 1 and "sent 1, retry later 0, failed 1" in result.output
    assert "1 message(s) not delivered" in result.stderr
    assert db.session.get(OutboxMessage, row.id).status == "failed"
    assert "not an email address" in db.session.get(OutboxMessage, row.id).last_error
    assert [m["To"] for m in smtp.messages] == ["eva@muster.example"]
    assert db.session.get(OutboxMessage, good.id).status == "sent"


class CountingSink(SmtpSink):
    """The sink, counting the SMTP sessions (greetings) it was asked for."""

    def __init__(self, port=None):
        super().__init__(port)
        self.handler.sessions = 0

        async def handle_EHLO(server, session, envelope, hostname, responses):
            self.handler.sessions += 1
            session.host_name = hostname
            return responses

        self.handler.handle_EHLO = handle_EHLO


def test_delivery_tasks_keep_one_connection_and_reconnect_when_the_server_closed_it(
        app, monkeypatch):
    from portal.mail.outbox import deliver_one

    with CountingSink() as sink:
        monkeypatch.setitem(app.config, "SMTP_URL", sink.url)
        monkeypatch.setitem(app.config, "SMTP_TIMEOUT_SECONDS", 5)
        rows = [stage(f"c{n}@x.example") for n in range(3)]
        assert [deliver_one(row.id) for row in rows] == ["sent"] * 3
        assert sink.handler.sessions == 1  # one connection for the three messages
        port = sink.port
    with CountingSink(port) as restarted:  # the server went away and came back
        row = stage("d@x.example")
        assert deliver_one(row.id) == "sent"  # on a new connection, at once
        assert restarted.handler.sessions == 1
        assert restarted.handler.message_ids() == [row.message_id]
    assert row.attempts == 1


def test_a_long_subject_reads_back_without_a_leading_space(app):
    """Past 78 characters Python's SMTP policy folded the subject right after the
    colon; mail readers then showed it starting with a space."""
    subject = "Payment received: contract SNS-100001 is renewed until January 13, 2028 (ab)"
    raw = build_message("a@example.com", subject, "text").as_bytes()
    assert message_from_bytes(raw, policy=default_policy)["Subject"] == subject
    assert b"\r\n" in raw and b"Subject: Payment received" in raw
