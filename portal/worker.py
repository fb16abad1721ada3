"""The Celery entry point of the worker and scheduler processes (docs/deploy.md)::

    celery -A portal.worker:celery worker --pool=solo --concurrency=1   # one per core, any machine
    celery -A portal.worker:celery beat                                 # exactly one per deployment

It builds the Flask app from the environment (the same settings as the web process),
connects :data:`portal.celery_app.celery` to its broker and loads every task module and
the schedule (:mod:`portal.schedule`).
"""
from celery.signals import beat_init, worker_init, worker_process_init

from portal import create_app
from portal.celery_app import AppTask, broker_settings, celery, yield_cpu
from portal.errors import ConfigError
from portal.extensions import db
from portal.pdf import CJK_FACES, prepared_font
from portal.schedule import beat_schedule, load_tasks

flask_app = create_app()
if not flask_app.config.get("CELERY_BROKER_URL"):
    raise ConfigError("CELERY_BROKER_URL: required for a worker or the scheduler "
                      "(without it, 'portal up' and the commands run the tasks inline)")
AppTask.flask_app = flask_app
celery.conf.update(broker_settings(flask_app.config),
                   beat_schedule=beat_schedule(flask_app.config))
load_tasks()


@worker_init.connect
@beat_init.connect
def _batch_priority(**_):
    """Workers and the scheduler run at ``BATCH_NICENESS``, so pages come first on a
    machine that serves them too (a pool's processes inherit it)."""
    yield_cpu(flask_app.config)


@worker_init.connect
def _prepare_pdf_fonts(**_):
    """The prepared CJK fonts of the PDFs, made now if this machine has none yet (a few
    seconds each, once), so no notice task waits for them."""
    with flask_app.app_context():
        for locale in CJK_FACES:
            prepared_font(locale)


@worker_process_init.connect
def _own_connections(**_):
    """A forked pool process (``--pool=prefork``) opens database connections of its own
    instead of sharing its parent's sockets."""
    with flask_app.app_context():
        db.engine.dispose(close=False)

__all__ = ["celery", "flask_app"]
