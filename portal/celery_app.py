"""Background work on Celery (docs/deploy.md).

Every job is a task that does one unit of work (one notice, one email, one charge, one
order) and is safe to run twice: a worker killed mid-task leaves an uncommitted
transaction behind, and the task runs again from the broker (``acks_late``).

With ``CELERY_BROKER_URL`` set, :func:`enqueue` sends the task to the broker and the
workers (``celery -A portal.worker:celery worker``) run it. Without one, :func:`enqueue` runs it
inline, in the command or scheduler that asked, so the embedded default needs nothing
else installed.

Two kinds of Celery application: :data:`celery` is the workers' one, where the tasks are
registered; each Flask app with a broker gets a producer of its own
(``app.extensions["celery"]``), so apps with different settings in one process (tests,
``portal up``) never share a broker connection or a configuration.
"""
import os

from celery import Celery, Task
from kombu import Queue
from kombu.exceptions import ChannelError
from flask import current_app, has_app_context

#: The queues: email delivery has its own, which the workers read in turn with the other,
#: so a day of notices does not hold back its emails (or a receipt) until it is done.
QUEUES = ("celery", "mail")

#: Settings common to workers and producers: a task is acknowledged only after it has
#: run, one task at a time per worker process, JSON only, UTC.
COMMON = {
    "task_queues": [Queue(name) for name in QUEUES],
    "task_default_queue": QUEUES[0],
    "task_routes": {"portal.mail.deliver_message": {"queue": "mail"}},
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_serializer": "json",
    "accept_content": ["json"],
    "task_ignore_result": True,
    "result_backend": None,
    "timezone": "UTC",
    "enable_utc": True,
    "broker_connection_retry_on_startup": True,
    "worker_hijack_root_logger": False,
}


class AppTask(Task):
    """Runs inside an application context: the caller's when there is one (inline), else
    the worker's Flask app (see :mod:`portal.worker`)."""

    abstract = True
    flask_app = None

    def __call__(self, *args, **kwargs):
        if has_app_context():
            return self.run(*args, **kwargs)
        if AppTask.flask_app is None:
            raise RuntimeError("no Flask app in this worker: start it with -A portal.worker:celery")
        with AppTask.flask_app.app_context():
            return self.run(*args, **kwargs)


celery = Celery("portal", task_cls=AppTask, set_as_current=False)
celery.conf.update(COMMON)


def task(name):
    """Declare a portal task under its stable ``name`` (the broker's messages carry it)."""
    return celery.task(name=name, acks_late=True, reject_on_worker_lost=True)


def broker_settings(config):
    """Celery settings of a Flask app's configuration (broker and its visibility timeout:
    a task taken by a worker that died goes back to the queue after it)."""
    return {
        **COMMON,
        "broker_url": config["CELERY_BROKER_URL"],
        "broker_transport_options": {
            "visibility_timeout": int(config["CELERY_VISIBILITY_TIMEOUT"]),
            # look for such tasks every 10 seconds (or sooner with a shorter timeout)
            "unacked_restore_interval": min(10, int(config["CELERY_VISIBILITY_TIMEOUT"])),
            "unacked_restore_throttle": 1,
        },
    }


def init_app(app):
    """Give ``app`` a producer when it has a broker; None means "run tasks inline"."""
    producer = None
    if app.config.get("CELERY_BROKER_URL"):
        producer = Celery("portal", set_as_current=False)
        producer.conf.update(broker_settings(app.config))
    app.extensions["celery"] = producer


def queued():
    """True when the current app sends tasks to a broker."""
    return current_app.extensions.get("celery") is not None


def enqueue(portal_task, *args):
    """Run ``portal_task(*args)`` in a worker (with a broker) or now, inline (without).

    Arguments must be JSON values (ids, ISO dates). Inline, the task's result is returned
    and its exceptions propagate to the caller, as when the function is called directly.
    """
    producer = current_app.extensions.get("celery")
    if producer is None:
        return portal_task(*args)
    producer.send_task(portal_task.name, args=list(args))
    return None


def queue_depth(queues=QUEUES):
    """Tasks waiting in ``queues`` of the current app's broker (0 without one)."""
    producer = current_app.extensions.get("celery")
    if producer is None:
        return 0
    waiting = 0
    with producer.connection_for_write() as connection:
        with connection.channel() as channel:
            for name in queues:
                try:
                    waiting += channel.queue_declare(name, passive=True).message_count
                except ChannelError:  # Redis drops an empty queue's list
                    pass
    return waiting


def yield_cpu(config):
    """Lower this process's CPU priority to ``BATCH_NICENESS`` (docs/deploy.md): batch
    work (workers, the scheduler, the job commands) gives the CPU to the web processes
    when both want it, and takes all of it when the site is idle. Never raises the
    priority; returns the niceness now. Threads started afterwards inherit it."""
    wanted, now = int(config.get("BATCH_NICENESS", 0)), os.nice(0)
    return os.nice(wanted - now) if wanted > now else now


def workers_ready(count, timeout=1.0):
    """True when at least ``count`` workers answer a ping through the broker."""
    producer = current_app.extensions.get("celery")
    return producer is not None and len(producer.control.ping(timeout=timeout)) >= count
