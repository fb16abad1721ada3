"""The refund policy (portal/renewals/refunds.py) against docs/rules.md, "Refunds".

A 12-month term 2027-01-01 .. 2027-12-31 charged on 2026-12-15 for 1200.00, unless a
case says otherwise. No app, no database.
"""
from datetime import date
from decimal import Decimal

import pytest
from portal.renewals.refunds import (
    RefundCharge,
    days_left,
    refund_decision,
    whole_months_left,
)


def d(text):
    return date.fromisoformat(text)


def charge(**changes):
    values = dict(amount=Decimal("1200.00"), currency="EUR", charged_on=d("2026-12-15"),
                  term_start=d("2027-01-01"), term_end=d("2027-12-31"), term_months=12,
                  channel="direct", country="DE", region=None, already_refunded=False)
    values.update(changes)
    return RefundCharge(**values)


@pytest.mark.parametrize(("changes", "request_day", "amount", "rule"), [
    # within 60 days of the charge: everything back, whatever the country
    ({}, "2026-12-15", "1200.00", "full"),
    ({}, "2027-02-13", "1200.00", "full"),  # day 60
    ({}, "2027-02-14", None, "too_late"),  # day 61, DE: nothing
    ({"country": "US"}, "2027-02-14", None, "too_late"),
    ({"channel": "partner"}, "2026-12-16", None, "channel"),
    ({"channel": "oem"}, "2026-12-16", None, "channel"),
    ({"already_refunded": True}, "2026-12-16", None, "already_refunded"),
    # NL and GB, day 61 (2027-02-14): months from 2027-03-01 to 2027-12-31 = 10 -> 1000.00
    ({"country": "NL"}, "2027-02-14", "1000.00", "months"),
    ({"country": "GB"}, "2027-02-14", "1000.00", "months"),
    # the last day of a month and the first of the next differ by a whole month
    ({"country": "GB"}, "2027-02-28", "1000.00", "months"),
    ({"country": "GB"}, "2027-03-01", "900.00", "months"),  # 2027-04-01 .. : 9 months
    ({"country": "NL"}, "2027-11-30", "100.00", "months"),  # December only
    ({"country": "NL"}, "2027-12-01", None, "term_over"),  # no whole month left
    # 1000.00 x 10/12 = 833.333.. -> 833.33; JPY rounds to the yen, half up
    ({"country": "NL", "amount": Decimal("1000.00")}, "2027-02-14", "833.33", "months"),
    ({"country": "NL", "amount": Decimal("100001"), "currency": "JPY"}, "2027-02-14",
     "83334", "months"),  # 83334.1666.. -> 83334
    # exactly half a cent: 1200.06 x 1/12 = 100.005 -> 100.01 (half up, not to even)
    ({"country": "NL", "amount": Decimal("1200.06")}, "2027-11-30", "100.01", "months"),
    # Québec: days left after the request day / 365 days in the term
    ({"country": "CA", "region": "CA-QC"}, "2027-02-14", "1052.05", "days"),  # x 320/365 = 1052.054
    ({"country": "CA", "region": "CA-QC"}, "2027-12-30", "3.29", "days"),  # x 1/365
    ({"country": "CA", "region": "CA-QC"}, "2027-12-31", None, "term_over"),
    ({"country": "CA"}, "2027-02-14", None, "too_late"),  # the rest of Canada
    # a 36-month GB term charged long before it starts keeps its whole months
    ({"country": "GB", "term_months": 36, "term_end": d("2029-12-31"),
      "charged_on": d("2026-06-01")}, "2026-10-01", "1200.00", "months"),
])
def test_refund_decision(changes, request_day, amount, rule):
    decision = refund_decision(charge(**changes), d(request_day))
    assert decision.rule == rule
    assert decision.amount == (Decimal(amount) if amount else None)
    assert decision.refundable is (amount is not None)


@pytest.mark.parametrize(("request_day", "term_end", "months"), [
    ("2027-01-15", "2027-12-31", 11),
    ("2027-01-31", "2027-12-31", 11),
    ("2027-02-01", "2027-12-31", 10),
    ("2027-01-15", "2027-12-30", 10),  # December is not whole
    ("2026-12-20", "2027-12-31", 12),  # before the term: from its start
])
def test_whole_months_left(request_day, term_end, months):
    assert whole_months_left(d(request_day), d("2027-01-01"), d(term_end)) == months


def test_days_left_counts_from_the_day_after_the_request():
    assert days_left(d("2027-01-01"), d("2027-01-01"), d("2027-12-31")) == (364, 365)
    assert days_left(d("2026-12-31"), d("2027-01-01"), d("2027-12-31")) == (365, 365)
    assert days_left(d("2028-02-28"), d("2028-01-01"), d("2028-12-31")) == (307, 366)
