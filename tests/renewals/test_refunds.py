"""The refund policy (portal/renewals/refunds.py) against docs/rules.md, "Refunds".

A 12-month term 2027-01-01 .. 2027-12-31 charged on 2026-12-15 for 1200.00, unless a
case says otherwise. No app, no database.
"""
from datetime import date
from decimal import Decimal

import pytest
from portal.renewals.refunds import (
    RefundCharge,
    days_from_next_month,
    days_left,
    refund_decision,
)


def d(text):
    return date.fromisoformat(text)


def charge(**changes):
    values = dict(amount=Decimal("1200.00"), currency="EUR", charged_on=d("2026-12-15"),
                  term_start=d("2027-01-01"), term_end=d("2027-12-31"), country="DE",
                  region=None, already_refunded=False)
    values.update(changes)
    return RefundCharge(**values)


@pytest.mark.parametrize(("changes", "request_day", "amount", "rule"), [
    # within 60 days of the charge: everything back, whatever the country
    ({}, "2026-12-15", "1200.00", "full"),
    ({}, "2027-02-13", "1200.00", "full"),  # day 60
    ({}, "2027-02-14", None, "too_late"),  # day 61, DE: nothing
    ({"country": "US"}, "2027-02-14", None, "too_late"),
    ({"already_refunded": True}, "2026-12-16", None, "already_refunded"),
    # the rule book's example: GB, 1,200.00 for 2027-01-14 .. 2028-01-13, asked back on
    # 2027-04-15: 2027-05-01 .. 2028-01-13 is 258 of 365 days -> 848.219.. -> 848.22
    ({"country": "GB", "charged_on": d("2026-12-20"), "term_start": d("2027-01-14"),
      "term_end": d("2028-01-13")}, "2027-04-15", "848.22", "next_month"),
    # NL and GB, day 61 (2027-02-14): 2027-03-01 .. 2027-12-31 = 306 of 365 days
    ({"country": "NL"}, "2027-02-14", "1006.03", "next_month"),  # 1006.027..
    ({"country": "GB"}, "2027-02-14", "1006.03", "next_month"),
    # the last day of a month and the first of the next differ by a whole month
    ({"country": "GB"}, "2027-02-28", "1006.03", "next_month"),
    ({"country": "GB"}, "2027-03-01", "904.11", "next_month"),  # 275 days: 904.109..
    ({"country": "NL"}, "2027-11-30", "101.92", "next_month"),  # December: 31 days
    ({"country": "NL"}, "2027-12-01", None, "term_over"),  # next month is after the term
    # JPY rounds to the yen, half up: 100001 x 306 / 365 = 83836.0..
    ({"country": "NL", "amount": Decimal("100001"), "currency": "JPY"}, "2027-02-14",
     "83836", "next_month"),
    # exactly half a cent: a 2-day term with its second day left, 0.05 x 1/2 = 0.025
    # -> 0.03 (half up, not to even)
    ({"country": "NL", "amount": Decimal("0.05"), "term_start": d("2027-02-28"),
      "term_end": d("2027-03-01"), "charged_on": d("2026-11-01")}, "2027-02-10",
     "0.03", "next_month"),
    # Québec: days left after the request day / 365 days in the term
    ({"country": "CA", "region": "CA-QC"}, "2027-02-14", "1052.05", "days"),  # x 320/365 = 1052.054
    ({"country": "CA", "region": "CA-QC"}, "2027-12-30", "3.29", "days"),  # x 1/365
    ({"country": "CA", "region": "CA-QC"}, "2027-12-31", None, "term_over"),
    ({"country": "CA"}, "2027-02-14", None, "too_late"),  # the rest of Canada
    # a 36-month GB term charged long before it starts: counted from the term's start,
    # so everything is left
    ({"country": "GB", "term_end": d("2029-12-31"), "charged_on": d("2026-06-01")},
     "2026-10-01", "1200.00", "next_month"),
])
def test_refund_decision(changes, request_day, amount, rule):
    decision = refund_decision(charge(**changes), d(request_day))
    assert decision.rule == rule
    assert decision.amount == (Decimal(amount) if amount else None)
    assert decision.refundable is (amount is not None)


@pytest.mark.parametrize(("request_day", "term_end", "left"), [
    ("2027-01-15", "2027-12-31", 334),  # from 2027-02-01
    ("2027-01-31", "2027-12-31", 334),
    ("2027-02-01", "2027-12-31", 306),  # from 2027-03-01
    ("2027-01-15", "2027-12-30", 333),
    ("2026-12-20", "2027-12-31", 365),  # before the term: from its start
    ("2027-12-01", "2027-12-31", 0),  # from 2028-01-01: nothing left
])
def test_days_from_next_month(request_day, term_end, left):
    in_term = (d(term_end) - d("2027-01-01")).days + 1
    assert days_from_next_month(d(request_day), d("2027-01-01"), d(term_end)) == (left, in_term)


def test_days_left_counts_from_the_day_after_the_request():
    assert days_left(d("2027-01-01"), d("2027-01-01"), d("2027-12-31")) == (364, 365)
    assert days_left(d("2026-12-31"), d("2027-01-01"), d("2027-12-31")) == (365, 365)
    assert days_left(d("2028-02-28"), d("2028-01-01"), d("2028-12-31")) == (307, 366)
