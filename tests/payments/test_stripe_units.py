"""Stripe's own minor-unit table, pinned for every currency the portal can charge."""
from decimal import Decimal

import pytest

from portal import money
from portal.payments.stripe_provider import (
    from_stripe_amount,
    stripe_digits,
    to_stripe_amount,
)

#: What Stripe takes for 402 units of each payment currency: whole units for its
#: zero-decimal currencies (JPY, KRW), hundredths for every other one, HUF and TWD included.
STRIPE_402 = {
    "AUD": 40200, "BRL": 40200, "GBP": 40200, "CAD": 40200, "CNY": 40200, "CZK": 40200,
    "DKK": 40200, "EUR": 40200, "HKD": 40200, "HUF": 40200, "INR": 40200, "JPY": 402,
    "MYR": 40200, "NZD": 40200, "NOK": 40200, "MXN": 40200, "PLN": 40200, "RUB": 40200,
    "SGD": 40200, "ZAR": 40200, "SEK": 40200, "CHF": 40200, "TWD": 40200, "THB": 40200,
    "KRW": 402, "TRY": 40200, "USD": 40200,
}


def test_every_payment_currency_is_pinned():
    assert sorted(STRIPE_402) == sorted(money.PAYMENT_CURRENCIES)


@pytest.mark.parametrize("currency, units", sorted(STRIPE_402.items()))
def test_402_goes_to_stripe_as(currency, units):
    assert to_stripe_amount(Decimal("402"), currency) == units
    assert from_stripe_amount(units, currency) == Decimal("402")


@pytest.mark.parametrize("currency", ["JPY", "KRW"])
def test_zero_decimal_currencies(currency):
    assert stripe_digits(currency) == 0
    assert stripe_digits(currency.lower()) == 0


def test_cents_survive_the_round_trip():
    assert to_stripe_amount(Decimal("2606.64"), "USD") == 260664
    assert from_stripe_amount(260664, "USD") == Decimal("2606.64")
