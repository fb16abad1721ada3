"""``portal partner add CODE [--name NAME]``, ``portal partner revoke-key PREFIX`` and
``portal partner deliver-webhooks [--limit N]``."""
import click
from flask.cli import with_appcontext

from portal import logs
from portal.audit.models import record
from portal.extensions import db
from portal.partners.keys import PartnerKeyError, ensure_partner, issue_key, revoke_key
from portal.partners.webhooks import deliver_due_webhooks


@click.group("partner")
def partner_group():
    """Partners and their API keys."""


@partner_group.command("add")
@click.argument("code")
@click.option("--name", help="The partner's name (default: the code).")
@with_appcontext
def add_command(code, name):
    """Add the partner if needed and print a new API key, once."""
    try:
        partner = ensure_partner(code, name)
    except PartnerKeyError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    row, key = issue_key(partner)
    record("cli", "partner.key_issue", partner.code, prefix=row.prefix)
    db.session.commit()
    click.echo(f"API key for partner {partner.code} (shown once, store it now):", err=True)
    click.echo(key)


@partner_group.command("revoke-key")
@click.argument("prefix")
@with_appcontext
def revoke_command(prefix):
    """Revoke the API key with this prefix; requests with it get 401 from now on."""
    try:
        row = revoke_key(prefix)
    except PartnerKeyError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    record("cli", "partner.key_revoke", row.partner.code, prefix=row.prefix)
    db.session.commit()
    click.echo(f"revoked {row.prefix} of partner {row.partner.code}")


@partner_group.command("deliver-webhooks")
@click.option("--limit", type=click.IntRange(1, 100000), default=500, show_default=True,
              help="Deliver at most this many events in this run.")
@with_appcontext
def deliver_webhooks_command(limit):
    """POST the due partner events to their webhook endpoints (safe to run at any time,
    and several at once)."""
    counts = deliver_due_webhooks(limit=limit)
    click.echo(", ".join(f"{count} {outcome}" for outcome, count in counts.items()))
    logs.job_run("partners.deliver_webhooks", counts, failed=counts["failed"])
