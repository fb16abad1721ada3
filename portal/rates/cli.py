"""``portal rates refresh [--source NAME]``."""
import click
from flask import current_app
from flask.cli import with_appcontext

from portal import logs
from portal.audit.models import record
from portal.extensions import db
from portal.rates import providers
from portal.rates.services import upsert_rates
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
    today = utc_today()
    try:
        provider = providers.provider(source, timeout=current_app.config["RATES_TIMEOUT_SECONDS"])
        rates = provider.fetch(today)
    except providers.ProviderError as error:
        logs.job_run("rates.refresh", {"stored": 0}, failed=1)
        raise click.ClickException(str(error)) from None
    written = upsert_rates(rates, source=source)
    record("cli", "rates.refresh", source, written=written)
    db.session.commit()
    missing = sorted(set(providers.WANTED) - {r.currency for r in rates})
    newest = max(r.as_of for r in rates)
    click.echo(f"{source}: {written} rates stored, newest dated {newest.isoformat()}"
               + (f"; not covered: {' '.join(missing)}" if missing else ""))
    logs.job_run("rates.refresh", {"stored": written, "missing": len(missing)})
