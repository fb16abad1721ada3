"""``portal demo``: load the demo data set and show what to open."""
import hashlib
import hmac

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from portal.audit.models import record
from portal.contracts.models import Contract
from portal.demo.services import load_demo
from portal.extensions import db
from portal.links.services import find_link, issue_link, link_url
from portal.renewals.services import compute_quote
from portal.timeutil import utc_today


@click.command("demo")
@with_appcontext
def demo_command():
    """Load the demo data set (idempotent) and print each demo contract with a renewal link
    for its primary contact."""
    today = utc_today()
    numbers = load_demo(today)
    record("cli", "demo.load", "", contracts=len(numbers))
    db.session.commit()
    lines = []
    for number in numbers:
        contract = db.session.scalar(select(Contract).where(Contract.number == number))
        result, _ = compute_quote(contract, today)
        state = "eligible" if result.eligible else result.reason
        token = demo_link(contract)
        contact = contract.primary_contact
        lines.append(f"{number}  {contract.account.country}  {contract.currency}  "
                     f"{contact.email} ({contact.language or 'country default'})  "
                     f"ends {contract.end_date}  {state}\n    {link_url(token)}")
    db.session.commit()  # the links exist before anyone can open them
    for line in lines:
        click.echo(line)


def demo_link(contract):
    """The primary contact's demo link: its token derives from the secret key and the
    contract number, so every run prints the same working link and stores it once."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    token = hmac.new(secret, f"demo-link:{contract.number}".encode("utf-8"),
                     hashlib.sha256).hexdigest()
    link = find_link(token)
    if link is None:
        contact = next(c for c in contract.account.contacts if c.primary)
        issue_link(contract, contact, purpose="demo", token=token)
    elif link.revoked_at is not None:
        contact = next(c for c in contract.account.contacts if c.primary)
        _link, token = issue_link(contract, contact, purpose="demo")
    return token
