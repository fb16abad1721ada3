"""Where and how to pay an offline order (docs/markets.md, "Payment methods").

The payee accounts are configuration (``PORTAL_CONFIG``): the contracting party of the
customer's country, per method and currency. The order reference is always the payment
reference.
"""
from portal.extensions import company
from portal.markets.methods import method as payment_method


def payee(order):
    """The account the order's offline payment goes to (empty if none is configured)."""
    party = company().party_for(order.contract.account.country)
    return party.payee(order.method, order.pay_currency) or {}


def is_offline(method_code):
    try:
        return payment_method(method_code).kind != "card"
    except KeyError:
        return False


def payment_instructions(order):
    """What the confirmation page and email show for an offline order: for a combined
    order, the one reference and the one amount that pay every contract in it."""
    order = order.payer
    return {
        "method": order.method,
        "reference": order.reference,
        "amount": order.amount_payable,
        "combined": bool(order.combined_orders),
        "currency": order.pay_currency,
        "pay_by": order.expires_on,
        "payee": payee(order),
    }
