"""``portal up``, the local demo: database, demo data, Stripe emulator, web server. A
command of the console script (portal/cli.py), not of the application it builds."""
import hashlib
import hmac
import os
import shlex
import signal
import sys

import click
from flask import current_app
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from portal import create_app
from portal.audit.models import record
from portal.i18n.tools import compile_all
from portal.demo.cli import demo_command
from portal.demo.services import PARTNER
from portal.extensions import db
from portal.partners.keys import (
    KEY_PREFIX,
    ensure_partner,
    issue_key,
    key_revoked,
    partner_for_key,
    store_key,
)
from portal.payments.emulator import LOOPBACK, Emulator
from portal.schedule import InlineScheduler
from portal.staff.accounts import add_staff, authenticate, find_staff, hasher

#: The renewals-desk user of the demo (an admin, so every console page can be tried).
DEMO_DESK = "desk@demo.example"


def _derived(purpose, length):
    """A secret derived from SECRET_KEY: every start of the same demo prints the same one."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(secret, purpose.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


def demo_access():
    """Make sure the demo can be signed in to: the desk's staff user and an API key for the
    demo partner. Returns ``(email, password, partner code, key)``; only hashes are kept."""
    password = _derived("demo-staff-password", 20)
    user = find_staff(DEMO_DESK)
    if user is None:
        add_staff(DEMO_DESK, password, role="admin")
    elif authenticate(DEMO_DESK, password) is None:  # another SECRET_KEY, or locked
        user.password_hash = hasher().hash(password)
        user.failed_attempts, user.locked_until, user.active = 0, None, True
    key = KEY_PREFIX + _derived("demo-partner-key", 40)
    partner = ensure_partner(PARTNER)
    if partner_for_key(key) is None:
        if key_revoked(key):  # staff revoked the demo's key: a new random one
            row, key = issue_key(partner)
        else:
            row = store_key(partner, key)
        record("cli", "partner.key_issue", partner.code, prefix=row.prefix)
    db.session.commit()
    return DEMO_DESK, password, partner.code, key


def shell_settings(config, names):
    """``export NAME=value ...`` for the settings ``names`` of ``config``: what a command in
    another terminal needs to write links to this server and reach its emulator."""
    return "export " + " ".join(f"{name}={shlex.quote(str(config[name]))}" for name in names)


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
            email, password, partner, key = demo_access()
        base = f"http://{LOOPBACK}:{port}"
        click.echo(f"Staff console: {base}/staff/sign-in  as {email}, password {password}")
        click.echo(f"Partner API for {partner}: {base}/api/partner/v1/contracts  with the "
                   f"header 'Authorization: Bearer {key}'")
        if emulator is not None:
            emulator.register_webhook(f"http://{LOOPBACK}:{port}/stripe/webhook")
            click.echo(f"Stripe emulator on {emulator.api_base}; "
                       "test cards: 4242 4242 4242 4242 (paid), 4000 0027 6000 3184 "
                       "(3-D Secure), 4000 0000 0000 0002 or 0341 (declined)")
        if not app.config.get("CELERY_BROKER_URL"):
            # No workers: the periodic jobs (notices, delivery to the outbox folder, ...)
            # run in this process, so the demo's email arrives by itself.
            scheduler = InlineScheduler(app).start()
            click.echo(f"Scheduled jobs run in this process; email lands in "
                       f"{app.config['OUTBOX_DIR']}")
        click.echo("Other portal commands reach this demo (its links, its emulator) with: "
                   + shell_settings(app.config, ("PORTAL_BASE_URL", *(
                       emulator.config() if emulator is not None else ()))))
        click.echo(f"Portal on http://{LOOPBACK}:{port}/ (Ctrl+C stops it)")
        run_simple(LOOPBACK, port, app, threaded=True, use_reloader=False)
    finally:
        if scheduler is not None:
            scheduler.stop()
        if emulator is not None:
            emulator.stop()


@click.command("up")
@click.option("--port", default=5000, show_default=True, help="Port on 127.0.0.1.")
@click.pass_context
def up_command(ctx, port):
    """Run the portal on 127.0.0.1 with demo data and, unless STRIPE_SECRET_KEY is set,
    a local Stripe emulator; prints a renewal link per demo contract."""
    run(ctx, port, real_stripe=bool(os.environ.get("STRIPE_SECRET_KEY")))
