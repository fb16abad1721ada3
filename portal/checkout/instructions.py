"""Where and how to pay an offline order (markets.md, "Payment methods").

The payee details are data: ``OFFLINE_PAYEES`` in the configuration overrides the defaults
below, per method. The order reference is always the payment reference.
"""
from flask import current_app

from portal.markets.methods import method as payment_method

DEFAULT_PAYEES = {
    "bank_transfer": {"account_holder": "Renewal Portal Ltd", "iban": "NL91 ABNA 0417 1643 00",
                      "bic": "ABNANL2A", "bank": "ABN AMRO Bank, Amsterdam"},
    "check": {"payable_to": "Renewal Portal Inc.",
              "address": "Renewals Desk, PO Box 1234, Wilmington, DE 19899, USA"},
    "paypal": {"account": "payments@portal.example"},
    "alipay": {"url": "https://pay.portal.example/alipay"},
    "ideal": {"url": "https://pay.portal.example/ideal"},
    "paynearme": {"url": "https://pay.portal.example/paynearme"},
    "webmoney": {"purse": "Z000000000000"},
}


def payee(method_code):
    configured = current_app.config.get("OFFLINE_PAYEES") or {}
    return {**DEFAULT_PAYEES.get(method_code, {}), **configured.get(method_code, {})}


def is_offline(method_code):
    try:
        return payment_method(method_code).kind != "card"
    except KeyError:
        return False


def payment_instructions(order):
    """What the confirmation page and email show for an offline order."""
    return {
        "method": order.method,
        "reference": order.reference,
        "amount": order.amount_due,
        "currency": order.pay_currency,
        "pay_by": order.expires_on,
        "payee": payee(order.method),
    }
