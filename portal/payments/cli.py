"""``portal payments reconcile``."""
import click
from flask.cli import with_appcontext

from portal import logs
from portal.payments import cards
from portal.payments.reconciliation import reconcile


@click.group("payments")
def payments_group():
    """Card payments."""


@payments_group.command("reconcile")
@with_appcontext
def reconcile_command():
    """Re-read unsettled card orders from the provider and settle them (paid or failed)."""
    if cards.provider() is None:
        raise click.ClickException("card payments are not configured (STRIPE_SECRET_KEY)")
    results = reconcile()
    failed = [reference for reference, outcome in results if outcome.startswith("error")]
    for reference, outcome in results:
        click.echo(f"{reference}  {outcome}", err=reference in failed)
    click.echo(f"{len(results)} order(s) checked, {len(failed)} could not be read")
    logs.job_run("payments.reconcile", {"checked": len(results), "errors": len(failed)},
                 failed=len(failed))
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} order(s) could not be "
                                   "read from the provider; they stay unsettled")

