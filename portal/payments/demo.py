"""The local demo behind ``portal up``: database, demo data, Stripe emulator, web server."""
import signal
import sys

import click
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from portal import create_app
from portal.catalogs.tools import compile_all
from portal.demo.cli import demo_command
from portal.payments.emulator import LOOPBACK, Emulator
from portal.schedule import InlineScheduler


def build_app(port, emulator=None):
    config = {"PORTAL_BASE_URL": f"http://{LOOPBACK}:{port}"}
    if emulator is not None:
        config.update(emulator.config())
    return create_app(config)


def _stop_on_sigterm(_signum, _frame):
    sys.exit(0)  # runs the ``finally`` below, which stops the emulator


def run(ctx, port, real_stripe=False):
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    compile_all()  # a fresh checkout has catalogs but no compiled .mo files yet
    emulator = None if real_stripe else Emulator().start()
    scheduler = None
    try:
        app = build_app(port, emulator)
        with app.app_context():
            upgrade()
            ctx.invoke(demo_command)
        if emulator is not None:
            emulator.register_webhook(f"http://{LOOPBACK}:{port}/stripe/webhook")
            click.echo(f"Stripe emulator on {emulator.api_base}; "
                       "test cards: 4242 4242 4242 4242 (paid), 4000 0027 6000 3184 "
                       "(3-D Secure), 4000 0000 0000 0341 (declined)")
        if not app.config.get("CELERY_BROKER_URL"):
            # No workers: the periodic jobs (notices, delivery to the outbox folder, ...)
            # run in this process, so the demo's email arrives by itself.
            scheduler = InlineScheduler(app).start()
            click.echo(f"Scheduled jobs run in this process; email lands in "
                       f"{app.config['OUTBOX_DIR']}")
        click.echo(f"Portal on http://{LOOPBACK}:{port}/ (Ctrl+C stops it)")
        run_simple(LOOPBACK, port, app, threaded=True, use_reloader=False)
    finally:
        if scheduler is not None:
            scheduler.stop()
        if emulator is not None:
            emulator.stop()
