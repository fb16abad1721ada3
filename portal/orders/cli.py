"""``portal orders record-payment`` and ``portal orders expire``."""
import click
from flask.cli import with_appcontext

from portal import logs
from portal.clitools import ISO_DATE
from portal.extensions import db
from portal.orders.offline import record_offline_payment
from portal.orders.services import PaymentRefused, expire_offline_orders
from portal.timeutil import utc_today


@click.group("orders")
def orders_group():
    """Orders: record offline payments, lapse unpaid offline orders."""


@orders_group.command("record-payment")
@click.argument("reference")
@click.option("--amount", required=True, help="Amount received, e.g. 900.00.")
@click.option("--currency", required=True, help="ISO code of the currency received.")
@click.option("--date", "received_on", type=ISO_DATE, help="Day the money arrived (default today).")
@click.option("--reference", "bank_reference", required=True,
              help="The bank's (or provider's) reference of the payment; recording it twice "
                   "changes nothing.")
@with_appcontext
def record_payment_command(reference, amount, currency, received_on, bank_reference):
    """Record an offline payment for order REFERENCE and renew its contract."""
    try:
        order, renewed = record_offline_payment(
            reference, amount, currency, received_on or utc_today(), bank_reference,
            actor="cli", today=utc_today())
    except PaymentRefused as error:
        db.session.commit()  # keeps the audit entry of a mismatch; nothing else changed
        raise click.ClickException(str(error)) from None
    db.session.commit()
    if renewed:
        for each in order.paid_together:  # a combined order renews each of its contracts
            click.echo(f"{order.reference} paid: {each.contract.number} renewed "
                       f"{each.term_start} to {each.term_end}")
    else:
        click.echo(f"{order.reference}: payment {bank_reference.strip()} already recorded; "
                   "nothing changed")


@orders_group.command("expire")
@click.option("--date", "today", type=ISO_DATE, help="Day to judge on (default today, UTC).")
@with_appcontext
def expire_command(today):
    """Lapse offline orders whose payment window has closed."""
    expired = expire_offline_orders(today or utc_today())
    db.session.commit()
    for order in expired:
        click.echo(f"{order.reference} expired ({order.contract.number})")
    click.echo(f"{len(expired)} order(s) expired")
    logs.job_run("orders.expire", {"expired": len(expired)})
