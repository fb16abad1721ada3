"""``portal autorenew run [--date D]``."""
import click
from flask.cli import with_appcontext

from portal import logs
from portal.autorenew.services import run_cycle
from portal.autorenew.tasks import run_day
from portal.celery_app import enqueue, queued
from portal.clitools import ISO_DATE
from portal.payments.cards import provider
from portal.timeutil import utc_today


@click.group("autorenew")
def autorenew_group():
    """Automatic renewal with saved cards."""


@autorenew_group.command("run")
@click.option("--date", "day", type=ISO_DATE, default=None,
              help="The day to run for (YYYY-MM-DD, default today in UTC).")
@with_appcontext
def run_command(day):
    """Stage the pre-charge notices and charge the saved cards due on the day (safe to
    run hourly, twice at once, or again after a crash); then run `portal outbox drain`."""
    if queued():
        enqueue(run_day, (day or utc_today()).isoformat())
        click.echo("automatic renewal queued for the workers")
        return
    report = run_cycle(day or utc_today(), provider())
    for number in report.notices:
        click.echo(f"{number}\tpre-charge notice")
    for number, milestone, reference in report.charged:
        click.echo(f"{number}\t{milestone} days\trenewed by order {reference}")
    for number, milestone, code in report.failed:
        click.echo(f"{number}\t{milestone} days\tnot charged: {code}")
    for number, milestone, reason in report.skipped:
        click.echo(f"{number}\t{milestone} days\tskipped: {reason}")
    for number, message in report.errors:
        click.echo(f"{number}\terror: {message}", err=True)
    click.echo(f"{len(report.notices)} notice(s), {len(report.charged)} renewed, "
               f"{len(report.failed)} declined, {len(report.errors)} error(s)")
    logs.job_run("autorenew.run", {"notices": len(report.notices),
                                   "renewed": len(report.charged),
                                   "declined": len(report.failed),
                                   "skipped": len(report.skipped),
                                   "errors": len(report.errors)}, failed=len(report.errors))
    if report.errors:
        raise SystemExit(1)
