"""A small book of contracts for the notice tests."""
from datetime import date, timedelta

import pytest

from tests import factories

#: End date of the main test contract; notices fall on E-60, E-30, E-15.
END = date(2027, 3, 1)


def days_before(n, end=END):
    return end - timedelta(days=n)


@pytest.fixture
def book(app):
    factories.launch("US", "2013-03-19")
    factories.launch("JP", "2013-03-19")
    factories.launch("DE", "2013-03-19")
    for day in ("2026-12-01", "2027-01-01", "2027-02-01", "2027-03-01"):
        factories.rate("USD", "1.0861", day)
    plist = factories.price_list("US", "USD", {
        ("VS-ENT", "basic", 12): "450.00", ("VS-ENT", "basic", 36): "1215.00",
        ("VS-ENT", "production", 12): "600.00", ("VS-ENT", "production", 36): "1620.00",
        ("VS-BIG", "basic", 12): "5000.00",
    })
    return plist
