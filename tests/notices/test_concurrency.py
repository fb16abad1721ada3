"""Two `notices send` runs and two drains at once on PostgreSQL: one email per recipient.

The runs need real commits seen by each other, so this test uses its own database, not
the rolled-back transaction of the other tests, and empties it afterwards.
"""
import threading

from sqlalchemy import func, select

from portal.contracts.models import Contact
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.mail.outbox import drain
from portal.notices import services
from portal.notices.models import NoticeRecord
from tests import factories
from tests.notices.conftest import END, days_before
from tests.smtpsink import SmtpSink
from tests.threads import run_together

CONTRACTS = 12


def test_concurrent_runs_and_drains_send_one_email_per_recipient(committing_app, monkeypatch):
    app = committing_app
    with app.app_context():
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", days_before(31))
        plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
        for _ in range(CONTRACTS):
            contract = factories.contract(plist, end_date=END)
            contract.account.contacts.append(
                Contact(name="Second", email=f"second@{contract.number.lower()}.example"))
        db.session.commit()

    scanned = threading.Barrier(2)
    real_due = services.due_contracts

    def due_then_wait(today):
        """Both runs read the same work list before either one stages anything."""
        work = real_due(today)
        scanned.wait()
        return work

    monkeypatch.setattr(services, "due_contracts", due_then_wait)
    reports = run_together(app, lambda: services.send_notices(days_before(30)), timeout=120)
    assert sum(len(r.sent) for r in reports) == CONTRACTS
    assert sum(list(r.skipped.values()).count("duplicate") for r in reports) == CONTRACTS
    with app.app_context():
        assert db.session.scalar(select(func.count(NoticeRecord.id))) == CONTRACTS
        assert db.session.scalar(select(func.count(OutboxMessage.id))) == 2 * CONTRACTS

    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "SMTP_URL", sink.url)
        sink.handler.delay = 0.02
        started = threading.Barrier(2)

        def deliver():
            started.wait()
            return drain()

        counts = run_together(app, deliver, timeout=120)
        ids = sink.handler.message_ids()
    assert all(c["sent"] > 0 for c in counts)  # both drains did part of the work
    assert sum(c["sent"] for c in counts) == 2 * CONTRACTS
    assert len(ids) == 2 * CONTRACTS and len(set(ids)) == 2 * CONTRACTS
