"""portal/money.py: half-up rounding to the rule book's decimals, amount strings, minor units.

Pure unit tests: no app, no database.
"""
from decimal import Decimal

import pytest
from portal import money


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        # 2.665 is exactly half a cent: half up gives 2.67 (half even would give 2.66).
        ("2.665", "USD", "2.67"),
        # 2.675 as a Decimal string is exact (as a float it would be 2.67499...): 2.68.
        ("2.675", "EUR", "2.68"),
        ("2.6649999", "USD", "2.66"),
        ("0.005", "EUR", "0.01"),
        ("0.0049", "EUR", "0.00"),
        # JPY and KRW have no minor unit: 2.5 -> 3 (half even: 2), 1234.5 -> 1235.
        ("2.5", "JPY", "3"),
        ("0.5", "JPY", "1"),
        ("2.4999", "JPY", "2"),
        ("1234.5", "KRW", "1235"),
        # Half up rounds halves away from zero on both sides.
        ("-2.5", "JPY", "-3"),
        ("100", "USD", "100.00"),
    ],
)
def test_round_amount_half_up_to_the_minor_unit(amount, currency, expected):
    rounded = money.round_amount(Decimal(amount), currency)
    assert str(rounded) == expected


#: The rule book's table, pinned for every currency of the portal: a library release
#: (Babel 2.19 says HUF has 0 digits, earlier ones 2) must never move a price.
PORTAL_DECIMALS = {
    "AUD": 2, "BRL": 2, "GBP": 2, "CAD": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2,
    "HKD": 2, "HUF": 0, "INR": 2, "JPY": 0, "MYR": 2, "NZD": 2, "NOK": 2, "MXN": 2,
    "PLN": 2, "RUB": 2, "SGD": 2, "ZAR": 2, "SEK": 2, "CHF": 2, "TWD": 2, "THB": 2,
    "KRW": 0, "LVL": 2, "LTL": 2, "TRY": 2, "USD": 2,
}


def test_the_table_covers_every_currency():
    assert sorted(PORTAL_DECIMALS) == sorted(money.CURRENCIES)
    assert len(money.CURRENCIES) == 29


@pytest.mark.parametrize("currency, digits", sorted(PORTAL_DECIMALS.items()))
def test_precision_is_the_rule_books(currency, digits):
    assert money.precision(currency) == digits
    assert money.amount_string(Decimal("402"), currency) == "402" + ("." + "0" * digits
                                                                      if digits else "")


def test_precision_of_an_unknown_currency_is_refused():
    with pytest.raises(money.MoneyError):
        money.precision("XYZ")


def test_huf_rounds_to_whole_forints_half_up():
    assert money.round_amount(Decimal("402.5"), "HUF") == Decimal("403")
    assert money.round_amount(Decimal("402.49"), "HUF") == Decimal("402")


@pytest.mark.parametrize(
    "amount, currency, digits, units",
    [
        ("98000", "JPY", 0, 98000),
        ("98000.5", "JPY", 0, 98001),  # rounds half up first
        ("402", "HUF", 2, 40200),  # the portal's whole forints, in a provider's hundredths
        ("402.5", "HUF", 2, 40300),  # rounded to whole forints before conversion
        ("34.87", "TWD", 2, 3487),
        ("2606.64", "USD", 2, 260664),
        ("0.005", "USD", 2, 1),
        ("0", "USD", 2, 0),
    ],
)
def test_to_minor_units(amount, currency, digits, units):
    assert money.to_minor_units(Decimal(amount), currency, digits) == units
    assert isinstance(money.to_minor_units(Decimal(amount), currency, digits), int)


def test_to_minor_units_refuses_what_the_unit_cannot_carry():
    with pytest.raises(money.MoneyError):
        money.to_minor_units(Decimal("10.50"), "USD", 0)


@pytest.mark.parametrize(
    "units, currency, digits, amount",
    [(98001, "JPY", 0, "98001"), (40200, "HUF", 2, "402"), (260664, "USD", 2, "2606.64"),
     (3487, "TWD", 2, "34.87")],
)
def test_from_minor_units(units, currency, digits, amount):
    assert money.from_minor_units(units, currency, digits) == Decimal(amount)
    assert str(money.from_minor_units(units, currency, digits)) == amount


@pytest.mark.parametrize(
    "amount, currency, text",
    [
        (Decimal("2400"), "EUR", "2400.00"),
        (Decimal("98000"), "JPY", "98000"),
        (Decimal("98000.4"), "JPY", "98000"),
        (Decimal("0"), "KRW", "0"),
        (Decimal("1E+3"), "USD", "1000.00"),  # never exponent notation
        (Decimal("1234567.891"), "USD", "1234567.89"),  # no grouping separators
        (Decimal("900.00000000"), "USD", "900.00"),  # exactly two digits, not more
        (Decimal("0.1"), "GBP", "0.10"),
    ],
)
def test_amount_string_has_exactly_the_minor_unit_digits(amount, currency, text):
    assert money.amount_string(amount, currency) == text


def test_money_carries_the_currency():
    value = money.money(Decimal("10.005"), "EUR")
    assert value.amount == Decimal("10.01")
    assert str(value.currency) == "EUR"


@pytest.mark.parametrize(
    "text, currency, expected",
    [("1250.00", "USD", "1250.00"), ("98000", "JPY", "98000"), (" 7.5 ", "EUR", "7.5"),
     ("0", "USD", "0")],
)
def test_parse_amount_accepts_plain_decimals(text, currency, expected):
    assert money.parse_amount(text, currency) == Decimal(expected)


@pytest.mark.parametrize(
    "text, currency, message",
    [
        ("98000.5", "JPY", "more decimals than JPY allows (0)"),
        ("1.005", "USD", "more decimals than USD allows (2)"),
        ("-1.00", "USD", "must not be negative"),
        ("abc", "USD", "is not a decimal amount"),
        ("NaN", "USD", "is not a decimal amount"),
        ("Infinity", "USD", "is not a decimal amount"),
        ("", "USD", "is not a decimal amount"),
    ],
)
def test_parse_amount_refuses(text, currency, message):
    with pytest.raises(money.MoneyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        money.parse_amount(text, currency)


def test_parse_amount_can_refuse_zero():
    with pytest.raises(money.MoneyError, match="must be positive"):
        money.parse_amount("0", "USD", allow_zero=False)


def test_check_currency():
    assert money.check_currency("KRW") == "KRW"
    with pytest.raises(money.MoneyError, match="unknown currency 'XYZ'"):
        money.check_currency("XYZ")


def test_legacy_currencies_are_not_payment_currencies():
    assert money.EURO_LEGACY == {"LVL": Decimal("0.702804"), "LTL": Decimal("3.45280")}
    assert "LVL" not in money.PAYMENT_CURRENCIES and "LTL" not in money.PAYMENT_CURRENCIES
    assert len(money.CURRENCIES) == 29 and len(money.PAYMENT_CURRENCIES) == 27


def test_rate_arithmetic_keeps_28_digits_unrounded():
    # 1 / 3 with 28 significant digits.
    assert money.divide(1, 3) == Decimal("0." + "3" * 28)
    assert money.multiply(Decimal("1.0861"), Decimal("2400")) == Decimal("2606.6400")
