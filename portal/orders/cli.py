"""``portal orders record-payment`` and ``portal orders expire``."""
import click
from flask.cli import with_appcontext
from sqlalchemy import select

from portal import logs
from portal.clitools import ISO_DATE
from portal.extensions import db
from portal.markets.methods import method as payment_method
from portal.money import CURRENCIES, MoneyError, parse_amount
from portal.orders.models import IllegalTransition, Order
from portal.orders.services import (
    OrderClosed,
    PaymentMismatch,
    expire_offline_orders,
    record_payment,
)
from portal.timeutil import utc_today


@click.group("orders")
def orders_group():
    """Orders: record offline payments, lapse unpaid offline orders."""


def _offline_order(reference):
    order = db.session.scalar(select(Order).where(Order.reference == reference.strip().upper()))
    if order is None:
        raise click.ClickException(f"unknown order reference {reference!r}")
    try:
        kind = payment_method(order.method).kind
    except KeyError:
        kind = "offline"
    if kind == "card":
        raise click.ClickException(
            f"order {order.reference} is a card order; its payment comes from the card provider"
        )
    return order


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
    currency = currency.strip().upper()
    if currency not in CURRENCIES:
        raise click.ClickException(f"unknown currency {currency!r}")
    try:
        value = parse_amount(amount, currency, allow_zero=False)
    except MoneyError as error:
        raise click.ClickException(str(error)) from None
    if not bank_reference.strip() or len(bank_reference) > 128:
        raise click.ClickException("--reference must be 1 to 128 characters")
    order = _offline_order(reference)
    try:
        order, renewed = record_payment(
            order.id, provider="offline", provider_ref=bank_reference.strip(), amount=value,
            currency=currency, received_on=received_on or utc_today(), actor="cli",
        )
    except PaymentMismatch as error:
        db.session.commit()  # keep the audit entry of the mismatch, nothing else changed
        raise click.ClickException(str(error)) from None
    except OrderClosed as error:
        db.session.commit()  # keep the payment to return and its audit entry
        raise click.ClickException(str(error)) from None
    except IllegalTransition:
        db.session.rollback()
        raise click.ClickException(
            f"order {order.reference} is {order.status}; a payment cannot be recorded for it"
        ) from None
    db.session.commit()
    if renewed:
        click.echo(f"{order.reference} paid: {order.contract.number} renewed "
                   f"{order.term_start} to {order.term_end}")
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
