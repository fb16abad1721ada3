"""Money: rounding, exact amount strings and provider minor units (docs/rules.md, "Money").

Pure code: no Flask. Amounts are ``Decimal`` and always travel with an ISO 4217 code,
as py-moneyed ``Money`` where both go together. The number of decimals of each currency
is fixed here, never read from a library's locale data: a library release must not
change a price.
"""
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache

from moneyed import Money

from portal.errors import PortalError

#: The 29 currencies of docs/markets.md ("Currencies").
CURRENCIES = (
    "AUD BRL GBP CAD CNY CZK DKK EUR HKD HUF INR JPY MYR NZD NOK MXN PLN RUB SGD ZAR "
    "SEK CHF TWD THB KRW LVL LTL TRY USD"
).split()
#: Retired euro-legacy currencies: a price list may use them, a payment may not.
EURO_LEGACY = {"LVL": Decimal("0.702804"), "LTL": Decimal("3.45280")}
PAYMENT_CURRENCIES = tuple(c for c in CURRENCIES if c not in EURO_LEGACY)

#: Currencies priced in whole units; every other currency of the portal has 2 decimals.
ZERO_DECIMAL = frozenset({"JPY", "KRW", "HUF"})

#: Rates are divided and applied with 28 significant digits, never rounded before use.
RATE_CONTEXT = Context(prec=28)


class MoneyError(PortalError):
    """An amount or currency that cannot be used."""


def check_currency(code):
    """Return ``code`` if it is one of the portal's currencies, else raise MoneyError."""
    if code not in CURRENCIES:
        raise MoneyError(f"unknown currency {code!r}")
    return code


def precision(currency):
    """Digits after the decimal mark of ``currency``: 0 for JPY, KRW and HUF, else 2."""
    return 0 if check_currency(currency) in ZERO_DECIMAL else 2


@lru_cache(maxsize=None)
def quantum(currency):
    """``Decimal('0.01')`` for EUR, ``Decimal('1')`` for JPY (cached: it never changes)."""
    return Decimal(1).scaleb(-precision(currency))


def round_amount(amount, currency):
    """Round to the currency's minor unit, half up. The one rounding function."""
    return Decimal(amount).quantize(quantum(currency), rounding=ROUND_HALF_UP)


def money(amount, currency):
    """A rounded ``Money`` in ``currency``."""
    return Money(round_amount(amount, currency), currency)


def amount_string(amount, currency):
    """``'2400.00'``, ``'98000'``: exactly the currency's minor-unit digits, '.' separator."""
    return f"{round_amount(amount, currency):f}"


def to_minor_units(amount, currency, digits):
    """The integer a payment provider takes for ``amount``, whose table gives ``currency``
    ``digits`` decimals (Stripe: HUF 402 -> 40200). Rounds to the portal's precision
    first; refuses an amount the provider's unit cannot carry exactly."""
    rounded = round_amount(amount, currency)
    units = rounded.scaleb(digits)
    if units != units.to_integral_value():
        raise MoneyError(f"{rounded} {currency} cannot be sent in units of 10^-{digits}")
    return int(units)


def from_minor_units(units, currency, digits):
    """The amount of a provider's integer ``units`` with ``digits`` decimals."""
    return round_amount(Decimal(int(units)).scaleb(-digits), currency)


def parse_amount(text, currency, *, allow_zero=True):
    """Parse a plain decimal string for ``currency``: no sign, no more digits than it has."""
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise MoneyError(f"{text!r} is not a decimal amount") from None
    if not value.is_finite():
        raise MoneyError(f"{text!r} is not a decimal amount")
    if value < 0:
        raise MoneyError(f"amount {text!r} must not be negative")
    if value == 0 and not allow_zero:
        raise MoneyError(f"amount {text!r} must be positive")
    if value != round_amount(value, currency):
        raise MoneyError(
            f"amount {text!r} has more decimals than {currency} allows ({precision(currency)})"
        )
    return value


def multiply(value, factor):
    """``value x factor`` with the 28-digit rate precision, unrounded."""
    return RATE_CONTEXT.multiply(Decimal(value), Decimal(factor))


def divide(value, divisor):
    return RATE_CONTEXT.divide(Decimal(value), Decimal(divisor))
