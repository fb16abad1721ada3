"""How much of a renewal charge is refunded ("Refunds" in docs/rules.md).

Pure code: no Flask, no database. Every charge it is given was taken by the portal, so
the contract's channel does not matter: a partner's customer who paid here is refunded
here. It takes plain values and returns a
:class:`RefundDecision`, so the policy can be read and tested in one place.
"""
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from portal.money import divide, multiply, round_amount
from portal.renewals.rules import add_months

#: A full refund while the request is at most this many days after the charge.
FULL_REFUND_DAYS = 60
#: Countries whose customers get the days from the first of the next month back after
#: the full-refund window.
NEXT_MONTH_COUNTRIES = ("NL", "GB")
#: Regions whose customers get the days after the request day back after the window.
DAY_REGIONS = ("CA-QC",)

#: Customers who are told of their right to withdraw within WITHDRAWAL_DAYS of the order
#: confirmation: the EEA (the EU, Iceland, Liechtenstein, Norway), Switzerland and GB.
WITHDRAWAL_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE "
    "IS LI NO CH GB".split())
WITHDRAWAL_DAYS = 14


def has_withdrawal_right(country):
    """Whether a customer in ``country`` is told of the 14-day right of withdrawal (the
    refund itself needs no rule of its own: 14 days are within FULL_REFUND_DAYS)."""
    return country in WITHDRAWAL_COUNTRIES


#: Reason codes when nothing is refunded; "rule" codes when something is.
NOT_PAID = "not_paid"
ALREADY_REFUNDED = "already_refunded"
TOO_LATE = "too_late"
TERM_OVER = "term_over"
FULL = "full"
NEXT_MONTH = "next_month"  # NL, GB: days from the first of the month after the request
DAYS = "days"  # Québec: days after the request day


@dataclass(frozen=True)
class RefundCharge:
    """One renewal charge, as the refund rules need to see it."""

    amount: Decimal
    currency: str
    charged_on: date
    term_start: date
    term_end: date  # inclusive
    country: str
    region: str | None = None
    already_refunded: bool = False


@dataclass(frozen=True)
class RefundDecision:
    amount: Decimal | None  # None: no refund
    rule: str  # FULL, NEXT_MONTH or DAYS when refundable, else the reason code

    @property
    def refundable(self):
        return self.amount is not None and self.amount > 0


def first_of_next_month(day):
    return add_months(day.replace(day=1), 1)


def days_from_next_month(request_day, term_start, term_end):
    """Days of the term from the first day of the month after the request (or from the
    term's start, if later) through its end, and the days in the term."""
    in_term = (term_end - term_start).days + 1
    start = max(first_of_next_month(request_day), term_start)
    return max(0, (term_end - start).days + 1), in_term


def days_left(request_day, term_start, term_end):
    """Days of the term after the request day, and the days in the term."""
    in_term = (term_end - term_start).days + 1
    after = (term_end - max(request_day, term_start - timedelta(days=1))).days
    return max(0, min(after, in_term)), in_term


def refund_decision(charge, request_day):
    """The refund for ``charge`` requested on ``request_day``."""
    if charge.already_refunded:
        return RefundDecision(None, ALREADY_REFUNDED)
    if (request_day - charge.charged_on).days <= FULL_REFUND_DAYS:
        return RefundDecision(round_amount(charge.amount, charge.currency), FULL)
    if charge.country in NEXT_MONTH_COUNTRIES:
        left, in_term = days_from_next_month(request_day, charge.term_start, charge.term_end)
        share = divide(left, in_term)
        rule = NEXT_MONTH
    elif charge.region in DAY_REGIONS:
        left, in_term = days_left(request_day, charge.term_start, charge.term_end)
        share = divide(left, in_term)
        rule = DAYS
    else:
        return RefundDecision(None, TOO_LATE)
    amount = round_amount(multiply(charge.amount, share), charge.currency)
    if amount <= 0:
        return RefundDecision(None, TERM_OVER)
    return RefundDecision(amount, rule)
