"""``portal demo``: load the demo data set and show what to open."""
import click
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.audit.models import record
from portal.clitools import utc_today
from portal.contracts.models import Contract
from portal.demo.services import load_demo
from portal.extensions import db
from portal.renewals.services import compute_quote


@click.command("demo")
@with_appcontext
def demo_command():
    """Load the demo data set (idempotent) and print each demo contract."""
    today = utc_today()
    numbers = load_demo(today)
    record("cli", "demo.load", "", contracts=len(numbers))
    db.session.commit()
    for number in numbers:
        contract = db.session.scalar(select(Contract).where(Contract.number == number))
        result, _ = compute_quote(contract, today)
        state = "eligible" if result.eligible else result.reason
        click.echo(f"{number}  {contract.account.country}  {contract.currency}  "
                   f"ends {contract.end_date}  {state}")
