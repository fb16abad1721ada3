"""``portal outbox drain`` and ``portal outbox failed``."""
import click
from flask import current_app
from flask.cli import with_appcontext

from portal import logs
from portal.errors import ConfigError
from portal.mail.outbox import drain, failed_messages


@click.group("outbox")
def outbox_group():
    """The email outbox."""


@outbox_group.command("drain")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Deliver at most this many messages.")
@with_appcontext
def drain_command(limit):
    """Deliver staged email, retrying what failed before when it is due."""
    try:
        counts = drain(limit=limit)
    except ConfigError as error:  # SMTP_URL set past the startup check
        raise click.ClickException(str(error)) from None
    where = ("" if current_app.config.get("SMTP_URL")
             else f" (written to {current_app.config['OUTBOX_DIR']}: no SMTP_URL)")
    click.echo(f"sent {counts['sent']}, retry later {counts['retry']}, "
               f"failed {counts['failed']}{where}")
    logs.job_run("outbox.drain", counts, failed=counts["failed"])
    if counts["failed"] or counts["retry"]:
        raise click.ClickException(f"{counts['failed'] + counts['retry']} message(s) not "
                                   "delivered")


@outbox_group.command("failed")
@with_appcontext
def failed_command():
    """List messages that could not be delivered (the server refused them for good)."""
    rows = failed_messages()
    for row in rows:
        click.echo(f"{row.id}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.kind}\t{row.to}\t"
                   f"{row.last_error}")
    if not rows:
        click.echo("No failed messages.", err=True)
