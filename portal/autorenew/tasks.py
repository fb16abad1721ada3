"""Automatic renewal as tasks: one per contract and term due on the day.

A charge attempt is a row unique per (contract, end date, milestone), committed before
the provider is called, and the provider call carries the attempt's idempotency key; a
task run twice, or killed and run again, never charges twice.
"""
from datetime import date

from portal import logs
from portal.autorenew.services import CycleReport, due_renewals, renew_contract
from portal.celery_app import enqueue, task
from portal.extensions import db
from portal.payments.cards import provider
from portal.timeutil import utc_today


@task("portal.autorenew.run_day")
def run_day(day=None):
    """Queue a task for each contract with a pre-charge notice or a charge due on ``day``."""
    today = date.fromisoformat(day) if day else utc_today()
    work = due_renewals(today)
    db.session.commit()
    for contract_id, end_date in work:
        enqueue(renew_one, contract_id, end_date.isoformat(), today.isoformat())
    logs.job_run("autorenew.schedule", {"due": len(work)})
    return len(work)


@task("portal.autorenew.renew_contract")
def renew_one(contract_id, end_date, day):
    report = CycleReport()
    renew_contract(contract_id, date.fromisoformat(end_date), date.fromisoformat(day),
                   provider(), report)
    if report.errors:
        logs.job_run("autorenew.contract", {"errors": len(report.errors)}, failed=1)
    return {"renewed": len(report.charged), "declined": len(report.failed),
            "notices": len(report.notices), "errors": len(report.errors)}
