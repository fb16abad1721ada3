"""``portal notices send [--date D]``."""
import click
from flask import current_app
from flask.cli import with_appcontext

from portal import logs
from portal.clitools import ISO_DATE
from portal.celery_app import enqueue, queued, yield_cpu
from portal.notices.services import send_notices
from portal.notices.tasks import send_day
from portal.timeutil import utc_today


@click.group("notices")
def notices_group():
    """Renewal notices."""


@notices_group.command("send")
@click.option("--date", "day", type=ISO_DATE, default=None,
              help="The day to send for (YYYY-MM-DD, default today in UTC).")
@with_appcontext
def send_command(day):
    """Stage the renewal notices due on the day; run `portal outbox drain` to deliver them.
    With CELERY_BROKER_URL, queue them for the workers instead. The PDFs take the CPU:
    the command runs at BATCH_NICENESS, below the web processes."""
    if queued():
        enqueue(send_day, (day or utc_today()).isoformat())
        click.echo("notices queued for the workers")
        return
    yield_cpu(current_app.config)
    report = send_notices(day or utc_today())
    for number, milestone, recipients in report.sent:
        click.echo(f"{number}\t{milestone} days\t{recipients} recipient(s)")
    for number, error in report.errors.items():
        click.echo(f"{number}\tnot sent: {error}", err=True)
    click.echo(f"{len(report.sent)} notice(s), {report.emails} email(s) staged")
    logs.job_run("notices.send", {"notices": len(report.sent), "emails": report.emails,
                                  "errors": len(report.errors)}, failed=len(report.errors))
    if report.errors:
        raise click.ClickException(f"{len(report.errors)} notice(s) not sent")
