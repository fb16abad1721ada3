"""The schedule of the periodic jobs (docs/deploy.md, "The schedule").

Each job is a task that fans out one task per unit of work. With a broker, Celery beat
(``celery -A portal.worker:celery beat``, one per deployment) sends them; without one,
``portal up`` runs them in a thread of its own (:class:`InlineScheduler`). Times are UTC,
from the settings named here. A new periodic job is one more line in ``PERIODIC`` (and
its module in ``TASK_MODULES``).
"""
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.schedules import crontab

from portal.celery_app import celery
from portal.config import time_of_day
from portal.timeutil import utc_now

log = logging.getLogger(__name__)

#: Modules whose tasks the workers run.
TASK_MODULES = (
    "portal.notices.tasks",
    "portal.mail.tasks",
    "portal.autorenew.tasks",
    "portal.payments.tasks",
    "portal.orders.tasks",
    "portal.rates.tasks",
    "portal.partners.tasks",
)


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str  # the task's registered name
    daily_at: str = None  # setting with the time of day, "HH:MM" UTC
    every: str = None  # setting with the interval in seconds


PERIODIC = (
    Periodic("notices", "portal.notices.send_day", daily_at="NOTICES_AT"),
    Periodic("autorenew", "portal.autorenew.run_day", daily_at="AUTORENEW_AT"),
    Periodic("outbox", "portal.mail.sweep", every="OUTBOX_EVERY_SECONDS"),
    Periodic("reconcile", "portal.payments.reconcile", every="RECONCILE_EVERY_SECONDS"),
    Periodic("orders-expire", "portal.orders.expire", daily_at="ORDERS_EXPIRE_AT"),
    Periodic("rates-refresh", "portal.rates.refresh", daily_at="RATES_REFRESH_AT"),
    Periodic("partner-webhooks", "portal.partners.deliver_webhooks",
             every="WEBHOOKS_EVERY_SECONDS"),
)


def beat_schedule(config):
    """Celery beat's ``beat_schedule`` from the settings."""
    schedule = {}
    for job in PERIODIC:
        if job.daily_at:
            at = time_of_day(config[job.daily_at])
            when = crontab(minute=at.minute, hour=at.hour)
        else:
            when = timedelta(seconds=int(config[job.every]))
        schedule[job.name] = {"task": job.task, "schedule": when}
    return schedule


def load_tasks():
    """Import every task module; returns ``{task name: task}``."""
    for module in TASK_MODULES:
        __import__(module)
    return {job.task: celery.tasks[job.task] for job in PERIODIC}


def next_run(job, config, now):
    """The first moment after ``now`` (naive UTC) that ``job`` is due."""
    if job.every:
        return now + timedelta(seconds=int(config[job.every]))
    at = datetime.combine(now.date(), time_of_day(config[job.daily_at]))
    return at if at > now else at + timedelta(days=1)


class InlineScheduler:
    """The schedule in a daemon thread of the current process, for a deployment without
    a broker (``portal up``). Every job runs once at start (each is safe to repeat, and a
    demo started in the afternoon still sends the day's notices), then on its schedule."""

    def __init__(self, app, clock=utc_now):
        self.app, self.clock = app, clock
        self.tasks = load_tasks()
        self.due = {job.name: clock() for job in PERIODIC}
        self.stopping = threading.Event()
        self.thread = None

    def run_pending(self):
        """Run every job whose time has come; returns the names of those run."""
        ran = []
        for job in PERIODIC:
            now = self.clock()
            if self.due[job.name] > now:
                continue
            try:
                with self.app.app_context():
                    self.tasks[job.task]()
            except Exception:  # one job's failure must not stop the others
                log.exception("scheduled job %s failed", job.name)
            self.due[job.name] = next_run(job, self.app.config, self.clock())
            ran.append(job.name)
        return ran

    def _loop(self):
        while not self.stopping.is_set():
            self.run_pending()
            self.stopping.wait(1)

    def start(self):
        self.thread = threading.Thread(target=self._loop, name="portal-schedule", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
