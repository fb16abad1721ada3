"""Renewal notices as tasks: the day's scan fans out one task per (contract, end date,
milestone), which renders the quote PDF and stages the emails in the worker.

Safe under redelivery: the notice record is unique per (contract, end date, milestone),
so a task run twice, or a day scheduled twice, stages nothing the second time; a worker
killed mid-task commits nothing and the task runs again.
"""
from datetime import date

from portal import logs
from portal.celery_app import enqueue, queued, task
from portal.extensions import db
from portal.mail.tasks import deliver_message
from portal.notices.services import RunReport, due_contracts, notify
from portal.timeutil import utc_today


def _day(day):
    return date.fromisoformat(day) if day else utc_today()


@task("portal.notices.send_day")
def send_day(day=None):
    """Queue a task for each notice due on ``day`` (ISO date, default today in UTC)."""
    today = _day(day)
    work = due_contracts(today)
    db.session.commit()
    for contract_id, end_date, milestone in work:
        enqueue(send_notice, contract_id, end_date.isoformat(), milestone, today.isoformat())
    logs.job_run("notices.schedule", {"due": len(work)})
    return len(work)


@task("portal.notices.send_notice")
def send_notice(contract_id, end_date, milestone, day):
    """One notice; with a broker, its emails are queued for delivery at once."""
    report = RunReport()
    staged = notify(contract_id, milestone, date.fromisoformat(day), report,
                    end_date=date.fromisoformat(end_date))
    if queued():
        for message_id in staged:
            enqueue(deliver_message, message_id)
    return len(staged)
