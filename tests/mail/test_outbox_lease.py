"""Delivery talks to the mail server outside any transaction: the message is taken
under a lease in one short transaction and its outcome recorded in another, so other
writers are never held up by a slow mail server, and no other delivery takes the same
message meanwhile."""
import sqlite3
from datetime import timedelta

import pytest

from portal.extensions import db
from portal.mail import outbox
from portal.mail.models import OutboxMessage
from portal.mail.outbox import deliver_one, drain, stage_email
from tests.conftest import own_database_app


@pytest.fixture
def sqlite_app(tmp_path):
    """An app on a SQLite file of its own whose commits are real."""
    path = tmp_path / "lease.db"
    with own_database_app(f"sqlite:///{path}", tmp_path / "instance",
                          OUTBOX_DIR=str(tmp_path / "outbox")) as app:
        app.database_path = path
        with app.app_context():
            yield app


class Watching:
    """A transport that, while 'talking to the mail server', checks that another
    connection can write at once and that no second delivery can take the message."""

    name = "watching"

    def __init__(self, path):
        self.path = path
        self.sent = []
        self.while_sending = []

    def send(self, claim):
        other = sqlite3.connect(self.path, timeout=0.2)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails with "database is locked" if held
            other.execute("UPDATE outbox_message SET subject = subject WHERE id = ?",
                          (claim.id,))
            other.execute("COMMIT")
            self.while_sending.append("write ok")
        finally:
            other.close()
        self.while_sending.append(deliver_one(claim.id))  # another delivery: nothing
        self.sent.append(claim.message_id)

    def close(self):
        pass


def stage(to="eva@muster.example"):
    row = stage_email(to, "test", subject="Hallo", body="Hallo Eva\n", locale="de")
    db.session.commit()
    return row.id


def test_no_lock_is_held_while_the_mail_server_is_talked_to(sqlite_app, monkeypatch):
    watching = Watching(sqlite_app.database_path)
    first, second = stage(), stage("max@muster.example")
    real_transport = outbox.transport
    monkeypatch.setattr(outbox, "transport", lambda: watching)
    counts = drain()
    monkeypatch.setattr(outbox, "transport", real_transport)
    assert counts == {"sent": 2, "retry": 0, "failed": 0}
    assert watching.while_sending == ["write ok", None, "write ok", None]
    assert len(watching.sent) == 2
    rows = db.session.scalars(db.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(r.id, r.status, r.attempts) for r in rows] == [(first, "sent", 1),
                                                             (second, "sent", 1)]


def test_a_taken_message_comes_back_when_its_lease_runs_out(sqlite_app):
    message = stage()
    now = outbox._now()
    claim = outbox._claim(now)  # taken, then the process dies before the outcome
    assert claim.id == message
    assert outbox._claim(now + timedelta(seconds=5)) is None  # still leased
    again = outbox._claim(now + outbox.lease_length() + timedelta(seconds=1))
    assert again.id == message and again.attempts == 2
    outbox._settle(claim, "sent", "", now)  # the first attempt's late word is ignored
    assert db.session.get(OutboxMessage, message).status == "staged"
