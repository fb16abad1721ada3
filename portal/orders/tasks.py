"""Offline-order expiry as a task (one run a day; expiring twice changes nothing)."""
from datetime import date

from portal import logs
from portal.celery_app import task
from portal.extensions import db
from portal.orders.services import expire_offline_orders
from portal.timeutil import utc_today


@task("portal.orders.expire")
def expire(day=None):
    expired = expire_offline_orders(date.fromisoformat(day) if day else utc_today())
    db.session.commit()
    logs.job_run("orders.expire", {"expired": len(expired)})
    return len(expired)
