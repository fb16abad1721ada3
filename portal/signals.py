"""Business signals: lower packages announce what changed, higher ones react.

Receivers run synchronously, inside the sender's transaction, so whatever they write
(for instance a partner event) is committed together with the change or not at all.
Every signal is sent with the application as sender and keyword arguments.
"""
from blinker import Namespace
from flask import current_app

_signals = Namespace()

#: ``order``: an order was placed (orders/services.py, ``place_order``).
order_placed = _signals.signal("order-placed")
#: ``order``: money arrived and renewed the contract (the one write path for payments).
order_paid = _signals.signal("order-paid")
#: ``order``, ``provider_name``, ``customer_ref``, ``card_ref``: the provider kept the card
#: of an order that opted in to automatic renewal and was paid (payments/claims.py,
#: ``finish_claim``, after the payment's transaction committed), before the receipt is
#: staged.
card_kept = _signals.signal("card-kept")
#: ``order``, ``contract``, ``actor``: a renewal was refunded and the contract's term given
#: back (orders/refunds.py, ``refund_renewal``).
order_refunded = _signals.signal("order-refunded")
#: ``order``: an offline order's payment window closed without payment.
order_lapsed = _signals.signal("order-lapsed")
#: ``contract``, ``enabled``: automatic renewal was switched on or off.
auto_renew_changed = _signals.signal("auto-renew-changed")
#: ``today``: the daily notices job ran; contract dates are judged against ``today``.
renewal_day = _signals.signal("renewal-day")


def announce(signal, **details):
    """Send ``signal`` from the current application with ``details``."""
    signal.send(current_app._get_current_object(), **details)
