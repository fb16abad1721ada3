"""``portal import pricelists|contracts|rates FILE``."""
import click
from flask.cli import with_appcontext

from portal import logs
from portal.audit.models import record
from portal.extensions import db
from portal.imports import services
from portal.imports.parsing import ImportFault


@click.group("import", help="Import price lists, contracts or exchange rates.")
def import_group():
    pass


def _run_import(kind, importer, path):
    try:
        count = importer(path)
        record("cli", f"import.{kind}", path, rows=count)
        db.session.commit()
    except ImportFault as fault:
        db.session.rollback()
        logs.job_run(f"import.{kind}", {"imported": 0}, failed=1)
        raise click.ClickException(str(fault)) from None
    click.echo(f"{kind}: {count} imported from {path}")
    logs.job_run(f"import.{kind}", {"imported": count})


@import_group.command("pricelists")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def pricelists(path):
    """Upsert price list entries from a CSV file."""
    _run_import("pricelists", services.import_pricelists, path)


@import_group.command("contracts")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def contracts(path):
    """Upsert accounts, contacts, partners, contracts and lines from a JSON file."""
    _run_import("contracts", services.import_contracts, path)


@import_group.command("rates")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def rates(path):
    """Upsert exchange rates (units per 1 EUR) from a CSV file."""
    _run_import("rates", services.import_rates, path)
