"""Without a broker every task runs inline; the schedule in a thread of ``portal up``
delivers by itself; each task is safe to run twice."""
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from sqlalchemy import func, select

from portal import config as portal_config
from portal import create_app
from portal.celery_app import enqueue, queue_depth, queued
from portal.errors import ConfigError
from portal.mail.models import OutboxMessage
from portal.mail.tasks import deliver_message, sweep
from portal.notices.models import NoticeRecord
from portal.notices.tasks import send_day, send_notice
from portal.schedule import PERIODIC, InlineScheduler, beat_schedule, next_run
from portal.timeutil import utc_now, utc_today
from tests import factories


def _count(db_session, model, *where):
    return db_session.scalar(select(func.count(model.id)).where(*where))


@pytest.fixture
def due_today(app, db_session):
    """A contract whose 30-day notice is due today (UTC)."""
    today = utc_today()
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", today - timedelta(days=1))
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
    return factories.contract(plist, end_date=today + timedelta(days=30))


def _outbox_files(app):
    return sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))


@pytest.fixture
def outbox_dir(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "OUTBOX_DIR", str(tmp_path / "outbox"))
    return tmp_path / "outbox"


def test_without_a_broker_the_day_runs_inline_and_twice_is_once(app, db_session, due_today):
    assert not queued()
    assert enqueue(send_day, utc_today().isoformat()) == 1
    assert enqueue(send_day, utc_today().isoformat()) == 0  # scheduled again: nothing due
    # the same notice task delivered twice by the broker stages nothing the second time
    assert send_notice(due_today.id, due_today.end_date.isoformat(), 30,
                       utc_today().isoformat()) == 0
    assert _count(db_session, NoticeRecord) == 1
    assert _count(db_session, OutboxMessage, OutboxMessage.status == "staged") == 1
    assert queue_depth() == 0


def test_a_notice_task_for_a_term_since_renewed_sends_nothing(app, db_session, due_today):
    old_end = due_today.end_date
    due_today.end_date = old_end + timedelta(days=365)
    db_session.flush()
    assert send_notice(due_today.id, old_end.isoformat(), 30, utc_today().isoformat()) == 0
    assert _count(db_session, NoticeRecord) == 0


def test_a_delivery_task_run_twice_delivers_once(app, db_session, due_today, outbox_dir):
    send_day()
    message_id = db_session.scalar(select(OutboxMessage.id))
    assert deliver_message(message_id) == "sent"
    assert deliver_message(message_id) is None
    assert sweep() == 0
    assert len(_outbox_files(app)) == 1


def test_portal_up_schedule_delivers_a_notice_by_itself(app, db_session, due_today, outbox_dir):
    now = [utc_now()]
    scheduler = InlineScheduler(app, clock=lambda: now[0])
    assert scheduler.run_pending() == [job.name for job in PERIODIC]  # all of them at start
    (eml,) = _outbox_files(app)
    assert eml.name.endswith("-notice.eml")
    assert _count(db_session, OutboxMessage, OutboxMessage.status == "sent") == 1

    now[0] += timedelta(seconds=5)
    assert scheduler.run_pending() == []
    now[0] += timedelta(seconds=25)
    assert scheduler.run_pending() == ["partner-webhooks"]  # every 10 s
    now[0] += timedelta(seconds=31)
    assert scheduler.run_pending() == ["outbox", "partner-webhooks"]


def test_one_failing_job_does_not_stop_the_others(app, db_session, due_today, outbox_dir,
                                                  monkeypatch):
    scheduler = InlineScheduler(app)

    def broken():
        raise RuntimeError("provider down")

    monkeypatch.setitem(scheduler.tasks, "portal.notices.send_day", broken)
    send_day()  # staged before the scheduler starts: the outbox job still delivers it
    assert "outbox" in scheduler.run_pending()
    assert len(_outbox_files(app)) == 1


def test_the_schedule_takes_its_times_from_the_settings(app):
    config = {**app.config, "NOTICES_AT": "05:45", "OUTBOX_EVERY_SECONDS": 30}
    schedule = beat_schedule(config)
    assert schedule["notices"] == {"task": "portal.notices.send_day",
                                   "schedule": crontab(minute=45, hour=5)}
    assert schedule["outbox"]["schedule"] == timedelta(seconds=30)
    assert schedule["reconcile"]["schedule"] == timedelta(seconds=600)
    assert schedule["partner-webhooks"] == {"task": "portal.partners.deliver_webhooks",
                                            "schedule": timedelta(seconds=10)}
    notices = next(job for job in PERIODIC if job.name == "notices")
    assert next_run(notices, config, datetime(2027, 1, 1, 5, 0)) == datetime(2027, 1, 1, 5, 45)
    assert next_run(notices, config, datetime(2027, 1, 1, 5, 45)) == datetime(2027, 1, 2, 5, 45)


@pytest.mark.parametrize("name, value, message", [
    ("NOTICES_AT", "25:00", "NOTICES_AT: '25:00' is not a time of day"),
    ("AUTORENEW_AT", "6", "AUTORENEW_AT: '6' is not a time of day"),
    ("OUTBOX_EVERY_SECONDS", "0", "OUTBOX_EVERY_SECONDS: must be at least 1"),
    ("CELERY_BROKER_URL", "localhost:6379", "CELERY_BROKER_URL: 'localhost:6379' is not a"),
    ("RATES_SOURCE", "bank", "RATES_SOURCE: must be ecb or forex"),
])
def test_a_malformed_schedule_setting_stops_the_start(name, value, message):
    settings = portal_config.from_environment({name: value})
    with pytest.raises(ConfigError, match=message):
        portal_config.check(settings)


def test_with_a_broker_the_command_queues_the_day_and_stages_nothing(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
                      "SECRET_KEY": "test", "CELERY_BROKER_URL": "memory://localhost/"})
    runner = app.test_cli_runner()
    result = runner.invoke(args=["notices", "send", "--date", "2027-01-30"])
    assert result.exit_code == 0, result.output
    assert "queued" in result.output
    with app.app_context():
        assert queue_depth() == 1
