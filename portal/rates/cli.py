"""``portal rates refresh [--source NAME]``."""
import click
from flask import current_app
from flask.cli import with_appcontext

from portal import logs
from portal.rates import providers
from portal.rates.services import refresh_rates
from portal.timeutil import utc_today


@click.group("rates", help="Exchange rates.")
def rates_group():
    pass


@rates_group.command("refresh")
@click.option("--source", default="ecb", show_default=True,
              help=f"Rates provider: {', '.join(sorted(providers.PROVIDERS))}.")
@with_appcontext
def refresh(source):
    """Fetch today's rates from a provider and store them."""
    try:
        written, newest, missing = refresh_rates(
            source, utc_today(), current_app.config["RATES_TIMEOUT_SECONDS"], actor="cli")
    except providers.ProviderError as error:
        logs.job_run("rates.refresh", {"stored": 0}, failed=1)
        raise click.ClickException(str(error)) from None
    click.echo(f"{source}: {written} rates stored, newest dated {newest.isoformat()}"
               + (f"; not covered: {' '.join(missing)}" if missing else ""))
    logs.job_run("rates.refresh", {"stored": written, "missing": len(missing)})
