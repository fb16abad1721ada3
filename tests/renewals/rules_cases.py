"""Shared cases of the rule tests: the demo price lists, a contract's facts, rate tables.
No app, no database."""
from datetime import date, timedelta
from decimal import Decimal

from portal.renewals.rules import ContractFacts, Line, Rate, RateTable

D = date(2026, 11, 22)  # the quote date of most cases

#: The US price list of the demo data (USD): (product, level, term) -> unit price.
US_PRICES = {
    ("VS-ENT", "basic", 12): Decimal("450.00"),
    ("VS-ENT", "basic", 36): Decimal("1215.00"),
    ("VS-ENT", "production", 12): Decimal("600.00"),
    ("VS-ENT", "production", 36): Decimal("1620.00"),
    ("BK-AGT", "basic", 12): Decimal("85.00"),
    ("BK-AGT", "basic", 36): Decimal("229.50"),
    ("BK-AGT", "production", 12): Decimal("110.00"),  # no production/36
    ("MON-CLD", "basic", 12): Decimal("240.00"),  # no basic/36
    ("MON-CLD", "production", 12): Decimal("320.00"),
    ("MON-CLD", "production", 36): Decimal("864.00"),
}
#: The JP price list (JPY, no minor unit).
JP_PRICES = {
    ("VS-ENT", "basic", 12): Decimal("68000"),
    ("VS-ENT", "basic", 36): Decimal("183600"),
    ("VS-ENT", "production", 12): Decimal("91000"),
    ("BK-AGT", "basic", 12): Decimal("12800"),
    ("BK-AGT", "production", 12): Decimal("16500"),
}


def d(text):
    return date.fromisoformat(text)


def lines(*pairs):
    return tuple(Line(code, quantity) for code, quantity in pairs)


def facts(**overrides):
    """An eligible direct USD contract, basic, VS-ENT x 1, ending 20 days after D."""
    values = dict(
        number="SNS-000001", channel="direct", service_level="basic",
        end_date=D + timedelta(days=20), currency="USD", lines=lines(("VS-ENT", 1)),
        launch_date=d("2013-03-19"),
    )
    values.update(overrides)
    return ContractFacts(**values)


def table(on=D, **per_eur):
    """A RateTable on ``on`` with rates dated that day: ``table(USD="1.2")``."""
    return RateTable(on, [Rate(code, Decimal(value), on) for code, value in per_eur.items()])


def pairs(result):
    return [(o.service_level, o.term_months) for o in result.options]
