"""Billing details a buyer may give for the invoice: a purchase order number, a VAT or
tax number (checked by python-stdnum against the account's country when it knows that
country's format) and a billing address. All optional."""
from sqlalchemy import select

from portal.contracts.models import Contract
from portal.extensions import db
from portal.orders.models import Order

FIELDS = ("po_number", "tax_id", "billing_address")


def valid_tax_id(value, country):
    """The number as entered (trimmed, in capitals), or None when ``country`` has a known
    VAT format that it does not match."""
    from stdnum import get_cc_module
    from stdnum.exceptions import ValidationError

    value = " ".join(value.split()).upper()
    module = get_cc_module(country.lower(), "vat") if country.isalpha() else None
    if module is None:
        return value
    try:
        module.validate(value)
    except ValidationError:
        return None
    return value


def defaults(contract):
    """The billing details of the account's latest order that had any, to prefill."""
    return defaults_of(*db.session.execute(select(*defaults_columns(contract))).one())


def defaults_columns(contract):
    """SQL columns for ``defaults_of``: the id, tax number and billing address of the
    latest order of ``contract``'s account (a contract, or the contract of an enclosing
    query) that had any billing details."""
    def latest(column):
        return (select(column).join(Contract, Contract.id == Order.contract_id)
                .where(Contract.account_id == contract.account_id,
                       Order.po_number.is_not(None) | Order.tax_id.is_not(None)
                       | Order.billing_address.is_not(None))
                .order_by(Order.id.desc()).limit(1).scalar_subquery())

    return latest(Order.id), latest(Order.tax_id), latest(Order.billing_address)


def defaults_of(order_id, tax_id, billing_address):
    """The prefill from what ``defaults_columns`` read; nothing without such an order."""
    if order_id is None:
        return {}
    # A purchase order number belongs to one purchase: it is not carried over.
    return {"tax_id": tax_id, "billing_address": billing_address}


def apply(order, details):
    """Store the details on an order that is not paid yet; True when it changed."""
    if order.status not in ("pending", "failed", "awaiting_payment"):
        return False
    changed = False
    for name in FIELDS:
        value = (details.get(name) or "").strip() or None
        if getattr(order, name) != value:
            setattr(order, name, value)
            changed = True
    return changed
