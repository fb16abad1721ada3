"""``portal payments reconcile`` and ``portal up`` (the local demo with a Stripe emulator)."""
import os

import click
from flask.cli import with_appcontext

from portal import logs
from portal.payments import services


@click.group("payments")
def payments_group():
    """Card payments."""


@payments_group.command("reconcile")
@with_appcontext
def reconcile_command():
    """Re-read unsettled card orders from the provider and settle them (paid or failed)."""
    if services.provider() is None:
        raise click.ClickException("card payments are not configured (STRIPE_SECRET_KEY)")
    results = services.reconcile()
    failed = [reference for reference, outcome in results if outcome.startswith("error")]
    for reference, outcome in results:
        click.echo(f"{reference}  {outcome}", err=reference in failed)
    click.echo(f"{len(results)} order(s) checked, {len(failed)} could not be read")
    logs.job_run("payments.reconcile", {"checked": len(results), "errors": len(failed)},
                 failed=len(failed))
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} order(s) could not be "
                                   "read from the provider; they stay unsettled")


@click.command("up")
@click.option("--port", default=5000, show_default=True, help="Port on 127.0.0.1.")
@click.pass_context
def up_command(ctx, port):
    """Run the portal on 127.0.0.1 with demo data and, unless STRIPE_SECRET_KEY is set,
    a local Stripe emulator; prints a renewal link per demo contract."""
    from portal.payments.demo import run

    run(ctx, port, real_stripe=bool(os.environ.get("STRIPE_SECRET_KEY")))
