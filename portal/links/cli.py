"""``portal link NUMBER --email ADDRESS``."""
import click
from flask.cli import with_appcontext

from portal.audit.models import record
from portal.extensions import db
from portal.links.services import issue_link, link_url
from portal.clitools import find_contract


@click.command("link")
@click.argument("number")
@click.option("--email", required=True, help="The contact the link is for.")
@with_appcontext
def link_command(number, email):
    """Issue a renewal link for a contact of the contract and print its URL."""
    contract = find_contract(number)
    wanted = email.strip().lower()
    contact = next((c for c in contract.account.contacts if c.email == wanted), None)
    if contact is None:
        raise click.ClickException(f"{number}: no contact with email {email!r}")
    link, token = issue_link(contract, contact, purpose="cli")
    record("cli", "link.issue", number, contact=contact.email, reference=link.reference)
    db.session.commit()
    click.echo(link_url(token))
