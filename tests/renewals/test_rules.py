"""The pure renewal rules (portal/renewals/rules.py) against docs/rules.md: term dates,
fees, options, eligibility, quote validity. Paying in another currency and the rate table
are in test_rules_currency.py.

Every expected figure was worked out by hand; the comment next to a case shows the sums.
No app, no database.
"""
from datetime import timedelta
from decimal import Decimal

import pytest
from portal.renewals import rules
from portal.renewals.rules import Rate, RuleError, Settings
from tests.renewals.rules_cases import (
    D,
    JP_PRICES,
    US_PRICES,
    d,
    facts,
    lines,
    pairs,
    table,
)


# --- term dates ---


@pytest.mark.parametrize(
    "end, quote_date, term, start, new_end, lapsed",
    [
        # Early renewal: Dec 12..31 are 20 days left; F = E + 1, the term follows them.
        ("2026-12-31", "2026-12-11", 12, "2027-01-01", "2027-12-31", 0),
        ("2026-12-31", "2026-11-22", 36, "2027-01-01", "2029-12-31", 0),
        # Quoted on E itself: still active, F = E + 1.
        ("2026-12-31", "2026-12-31", 12, "2027-01-01", "2027-12-31", 0),
        # Lapsed: F = D + 1 = 07-11, ends the day before 2027-07-11; N = (F - E) - 1 = 11 - 1.
        ("2026-06-30", "2026-07-10", 12, "2026-07-11", "2027-07-10", 10),
        # Term starting 29 Feb 2028: anniversary 1 Mar 2029, so it ends 28 Feb 2029 ...
        ("2028-02-28", "2028-01-15", 12, "2028-02-29", "2029-02-28", 0),
        # ... and after 36 months on 28 Feb 2031.
        ("2028-02-28", "2028-01-15", 36, "2028-02-29", "2031-02-28", 0),
        # Lapsed into 29 Feb: D = 28 Feb, F = 29 Feb, N = 1.
        ("2028-02-27", "2028-02-28", 12, "2028-02-29", "2029-02-28", 1),
        # Starting 1 Mar 2027 the year holds 29 Feb 2028: ends 29 Feb 2028.
        ("2027-02-28", "2027-01-10", 12, "2027-03-01", "2028-02-29", 0),
        # Starting 31 Jan: ends 30 Jan.
        ("2027-01-30", "2027-01-02", 12, "2027-01-31", "2028-01-30", 0),
    ],
)
def test_term_dates(end, quote_date, term, start, new_end, lapsed):
    assert rules.term_dates(d(end), d(quote_date), term) == (d(start), d(new_end), lapsed)


@pytest.mark.parametrize(
    "start, months, result",
    [
        ("2028-02-29", 12, "2029-03-01"),  # 2029 has no 29 Feb: the 1st after
        ("2028-02-29", 48, "2032-02-29"),
        ("2027-01-31", 1, "2027-03-01"),  # no 31 Feb
        ("2026-12-31", 2, "2027-03-01"),  # across the year end, no 31 Feb
        ("2026-11-30", 3, "2027-03-01"),  # no 30 Feb
        ("2026-12-15", 1, "2027-01-15"),
        ("2026-01-01", 36, "2029-01-01"),
    ],
)
def test_add_months(start, months, result):
    assert rules.add_months(d(start), months) == d(result)


@pytest.mark.parametrize(
    "end, quote_date, lapsed",
    [
        ("2026-12-31", "2026-11-22", 0),  # active
        ("2026-12-31", "2026-12-31", 0),  # last covered day
        ("2026-12-31", "2027-01-01", 1),  # first uncovered day: D - E = 1
        ("2026-12-31", "2027-12-31", 365),
        ("2027-12-31", "2028-12-31", 366),  # 2028 has 29 Feb
    ],
)
def test_lapsed_days(end, quote_date, lapsed):
    assert rules.term_dates(d(end), d(quote_date), 12)[2] == lapsed


def test_early_renewal_keeps_the_remaining_days():
    # 20 days left (Dec 12..31); the new year starts after them: 20 + 365 days covered.
    start, end, _ = rules.term_dates(d("2026-12-31"), d("2026-12-11"), 12)
    assert (end - d("2026-12-11")).days == 20 + 365
    assert start == d("2026-12-31") + timedelta(days=1)


# --- fees ---


@pytest.mark.parametrize(
    "line_items, level, term, fee",
    [
        # 2 x 450.00 + 5 x 85.00 = 900.00 + 425.00
        ((("VS-ENT", 2), ("BK-AGT", 5)), "basic", 12, "1325.00"),
        # 2 x 1215.00 + 5 x 229.50 = 2430.00 + 1147.50
        ((("VS-ENT", 2), ("BK-AGT", 5)), "basic", 36, "3577.50"),
        # 2 x 600.00 + 5 x 110.00 = 1200.00 + 550.00
        ((("VS-ENT", 2), ("BK-AGT", 5)), "production", 12, "1750.00"),
    ],
)
def test_term_fee(line_items, level, term, fee):
    assert rules.term_fee(lines(*line_items), US_PRICES, level, term, "USD") == Decimal(fee)


@pytest.mark.parametrize(
    "prices, line_items, lapsed, currency, fee",
    [
        # Per line: 100.00 x 1 / 365 = 0.27397 -> 0.27, twice: 0.54.
        # (Rounding the sum instead would give 200.00 / 365 = 0.54794 -> 0.55.)
        ({("A", "basic", 12): Decimal("100.00"), ("B", "basic", 12): Decimal("100.00")},
         (("A", 1), ("B", 1)), 1, "USD", "0.54"),
        # 2 x 450.00 x 10 / 365 = 24.6575 -> 24.66
        (US_PRICES, (("VS-ENT", 2),), 10, "USD", "24.66"),
        # 2 x 450 x 10/365 = 24.6575 -> 24.66; 5 x 85 x 10/365 = 11.6438 -> 11.64; = 36.30
        (US_PRICES, (("VS-ENT", 2), ("BK-AGT", 5)), 10, "USD", "36.30"),
        # JPY: 136000 x 10/365 = 3726.03 -> 3726; 38400 x 10/365 = 1052.05 -> 1052; = 4778
        (JP_PRICES, (("VS-ENT", 2), ("BK-AGT", 3)), 10, "JPY", "4778"),
        # A whole year late: 450.00 x 365 / 365 = 450.00
        (US_PRICES, (("VS-ENT", 1),), 365, "USD", "450.00"),
        # Not lapsed: nothing
        (US_PRICES, (("VS-ENT", 1),), 0, "USD", "0.00"),
        (JP_PRICES, (("VS-ENT", 1),), 0, "JPY", "0"),
    ],
)
def test_backdated_fee_rounds_per_line(prices, line_items, lapsed, currency, fee):
    result = rules.backdated_fee(lines(*line_items), prices, "basic", lapsed, currency)
    assert str(result) == fee


@pytest.mark.parametrize(
    "backdated, rate, currency, fee",
    [
        ("24.66", "0.20", "USD", "4.93"),  # 4.932 -> 4.93
        ("36.30", "0.20", "USD", "7.26"),  # exact
        ("4778", "0.20", "JPY", "956"),  # 955.6 -> 956
        ("24.66", "0.25", "USD", "6.17"),  # 6.165 -> 6.17 half up (half even: 6.16)
        ("0.00", "0.20", "USD", "0.00"),
    ],
)
def test_reinstatement_fee(backdated, rate, currency, fee):
    assert str(rules.reinstatement_fee(Decimal(backdated), Decimal(rate), currency)) == fee


@pytest.mark.parametrize(
    "total, currency, rates, usd",
    [
        # docs/interfaces.md: 2400.00 EUR x 1.0861 = 2606.64
        ("2400.00", "EUR", {"USD": "1.0861"}, "2606.64"),
        ("1325.00", "USD", {}, "1325.00"),  # USD needs no rate
        # JPY -> USD = 1.2 / 160 = 0.0075; 180134 x 0.0075 = 1351.005 -> 1351.01 (half up)
        ("180134", "JPY", {"USD": "1.2", "JPY": "160"}, "1351.01"),
        # GBP -> USD = 1.1 / 0.88 = 1.25; 10.01 x 1.25 = 12.5125 -> 12.51
        ("10.01", "GBP", {"USD": "1.1", "GBP": "0.88"}, "12.51"),
        # LVL (fixed 0.702804) -> USD 1.0861: 70.2804 LVL is exactly 100 EUR -> 108.61
        ("70.2804", "LVL", {"USD": "1.0861"}, "108.61"),
    ],
)
def test_usd_equivalent(total, currency, rates, usd):
    assert str(rules.usd_equivalent(Decimal(total), currency, table(**rates))) == usd


def test_usd_equivalent_without_a_usd_rate_is_an_error():
    with pytest.raises(RuleError, match="no exchange rate for USD on or before 2026-11-22"):
        rules.usd_equivalent(Decimal("1.00"), "EUR", table())


# --- options through rules.quote ---


@pytest.mark.parametrize(
    "currency, per_eur, price, within",
    [
        ("USD", {}, "3000.00", True),  # 3000.00 <= 3000.00
        ("USD", {}, "3000.01", False),
        # EUR at 1.2: 2500.00 x 1.2 = 3000.00 within; 2500.01 x 1.2 = 3000.012 -> 3000.01 over
        ("EUR", {"USD": "1.2"}, "2500.00", True),
        ("EUR", {"USD": "1.2"}, "2500.01", False),
        # EUR at 0.5: 6000.01 x 0.5 = 3000.005 -> 3000.01 (half up): over
        ("EUR", {"USD": "0.5"}, "6000.01", False),
        ("EUR", {"USD": "0.5"}, "6000.00", True),
    ],
)
def test_online_cap_is_inclusive(currency, per_eur, price, within):
    prices = {("VS-ENT", "basic", 12): Decimal(price)}
    result = rules.quote(facts(currency=currency), prices, table(**per_eur), D)
    (option,) = result.options
    assert option.within_cap is within
    assert result.reason == (None if within else "over_cap")


def test_lapsed_quote_adds_backdated_and_reinstatement_fees_at_the_current_level():
    # Basic contract, VS-ENT x 2, E = 2026-06-30, D = 2026-07-10: N = 10.
    # Back-dated always at basic/12: 2 x 450.00 x 10 / 365 = 24.6575 -> 24.66.
    # Reinstatement: 20% x 24.66 = 4.932 -> 4.93.
    contract = facts(end_date=d("2026-06-30"), lines=lines(("VS-ENT", 2)))
    result = rules.quote(contract, US_PRICES, table(d("2026-07-10")), d("2026-07-10"))
    expected = {
        # term fee: basic/12 2 x 450 = 900; total 900 + 24.66 + 4.93 = 929.59
        ("basic", 12): ("900.00", "929.59"),
        # 2 x 1215 = 2430; total 2430 + 29.59 = 2459.59
        ("basic", 36): ("2430.00", "2459.59"),
        # 2 x 600 = 1200; total 1229.59
        ("production", 12): ("1200.00", "1229.59"),
        # 2 x 1620 = 3240; total 3269.59: over the cap
        ("production", 36): ("3240.00", "3269.59"),
    }
    assert pairs(result) == list(expected)
    for option in result.options:
        term_fee, total = expected[(option.service_level, option.term_months)]
        assert (option.term_start, option.lapsed_days) == (d("2026-07-11"), 10)
        assert str(option.term_fee) == term_fee
        assert str(option.backdated_fee) == "24.66"
        assert str(option.reinstatement_fee) == "4.93"
        assert str(option.total) == total
        over = (option.service_level, option.term_months) == ("production", 36)
        assert option.within_cap is not over
    assert result.eligible and result.reason is None
    assert result.valid_until == d("2026-07-10")  # lapsed: valid on D only


def test_reinstatement_rate_is_a_setting():
    # 25% x 24.66 = 6.165 -> 6.17 (half up); total 900.00 + 24.66 + 6.17 = 930.83.
    contract = facts(end_date=d("2026-06-30"), lines=lines(("VS-ENT", 2)))
    result = rules.quote(contract, US_PRICES, table(d("2026-07-10")), d("2026-07-10"),
                         Settings(reinstatement_fee_rate=Decimal("0.25")))
    option = result.option("basic", 12)
    assert (str(option.reinstatement_fee), str(option.total)) == ("6.17", "930.83")


def test_jpy_lapsed_quote():
    # JP basic: VS-ENT x 2, BK-AGT x 3; E = 2026-11-12, D = 2026-11-22: N = 10.
    # BK-AGT has no 36-month price, so only the 12-month terms are offered.
    contract = facts(currency="JPY", end_date=d("2026-11-12"),
                     lines=lines(("VS-ENT", 2), ("BK-AGT", 3)))
    result = rules.quote(contract, JP_PRICES, table(USD="1.2", JPY="160"), D)
    assert pairs(result) == [("basic", 12), ("production", 12)]
    basic, production = result.options
    # term fee 2 x 68000 + 3 x 12800 = 174400; back-dated 3726 + 1052 = 4778;
    # reinstatement 955.6 -> 956; total 174400 + 4778 + 956 = 180134;
    # USD 180134 x 1.2 / 160 = 1351.005 -> 1351.01
    assert [str(v) for v in (basic.term_fee, basic.backdated_fee, basic.reinstatement_fee,
                             basic.total, basic.usd_equivalent)] == [
        "174400", "4778", "956", "180134", "1351.01"]
    # production: 2 x 91000 + 3 x 16500 = 231500; + 5734 = 237234; x 0.0075 = 1779.255 -> .26
    assert [str(v) for v in (production.term_fee, production.total,
                             production.usd_equivalent)] == ["231500", "237234", "1779.26"]
    assert (basic.term_start, basic.term_end) == (d("2026-11-23"), d("2027-11-22"))


def test_krw_quote_has_no_minor_unit():
    # KRW basic, VS-ENT x 3 at 620000: 1860000; USD = 1.2 / 1500 = 0.0008 -> 1488.00
    prices = {("VS-ENT", "basic", 12): Decimal("620000")}
    contract = facts(currency="KRW", lines=lines(("VS-ENT", 3)))
    (option,) = rules.quote(contract, prices, table(USD="1.2", KRW="1500"), D).options
    assert (str(option.total), str(option.backdated_fee), str(option.usd_equivalent)) == (
        "1860000", "0", "1488.00")


# --- levels and terms offered ---


@pytest.mark.parametrize(
    "level, line_items, offered",
    [
        # Every pair priced for VS-ENT: all four, by level then term.
        ("basic", (("VS-ENT", 1),),
         [("basic", 12), ("basic", 36), ("production", 12), ("production", 36)]),
        # BK-AGT lacks production/36: that pair is dropped, the others stay.
        ("basic", (("VS-ENT", 1), ("BK-AGT", 1)),
         [("basic", 12), ("basic", 36), ("production", 12)]),
        # MON-CLD lacks basic/36.
        ("basic", (("VS-ENT", 1), ("MON-CLD", 1)),
         [("basic", 12), ("production", 12), ("production", 36)]),
        # Production never gets basic offered, though basic is priced.
        ("production", (("VS-ENT", 1),), [("production", 12), ("production", 36)]),
        ("production", (("VS-ENT", 1), ("BK-AGT", 1)), [("production", 12)]),
        # A level not sold online: nothing.
        ("business_critical", (("VS-ENT", 1),), []),
    ],
)
def test_levels_and_terms_offered(level, line_items, offered):
    contract = facts(service_level=level, lines=lines(*line_items))
    result = rules.quote(contract, US_PRICES, table(), D, Settings(online_cap_usd=Decimal(10**6)))
    assert pairs(result) == offered


def test_no_current_price_means_no_options_at_all():
    # Production/12 exists for NEW-PRD, basic/12 (the current level) does not.
    prices = {**US_PRICES, ("NEW-PRD", "production", 12): Decimal("10.00")}
    contract = facts(lines=lines(("VS-ENT", 1), ("NEW-PRD", 1)))
    result = rules.quote(contract, prices, table(), D)
    assert (result.options, result.reason, result.eligible) == ((), "no_price", False)
    assert result.rates_used == {} and result.prices_used == {}


def test_option_lookup():
    result = rules.quote(facts(), US_PRICES, table(), D)
    assert result.option("production", 36).term_fee == Decimal("1620.00")
    with pytest.raises(RuleError, match="no renewal option basic / 24 months"):
        result.option("basic", 24)


def test_quote_records_the_prices_and_rates_it_used():
    # EUR quote: EUR (fixed, dated D) and USD for the USD equivalent.
    prices = {("VS-ENT", "basic", 12): Decimal("420.00")}
    result = rules.quote(facts(currency="EUR"), prices, table(USD="1.0861"), D)
    assert result.prices_used == {("VS-ENT", "basic", 12): Decimal("420.00")}
    assert result.rates_used == {"EUR": Rate("EUR", Decimal(1), D),
                                 "USD": Rate("USD", Decimal("1.0861"), D)}


# --- eligibility ---

#: What makes each reason apply, in the order of the eligibility table.
REASON_CAUSES = {
    "oem": dict(channel="oem"),
    "level_not_online": dict(service_level="business_critical"),
    "not_launched": dict(launch_date=D + timedelta(days=1)),
    "lapsed_too_long": dict(end_date=D - timedelta(days=366)),
    # An unpriced line (and, with over_cap also applying, 10 x VS-ENT).
    "no_price": dict(lines=lines(("VS-ENT", 1), ("UNPRICED", 1))),
    "over_cap": dict(lines=lines(("VS-ENT", 10))),  # 10 x 450.00 = 4500.00 > 3000.00
    "already_renewed": dict(renewal_in_progress=True),
    "cancelled": dict(cancelled=True),
}


def test_reasons_are_the_table_of_the_rules():
    assert rules.REASONS == tuple(REASON_CAUSES)


@pytest.mark.parametrize("reason", list(REASON_CAUSES))
def test_each_reason_alone(reason):
    contract = facts(**REASON_CAUSES[reason])
    result = rules.quote(contract, US_PRICES, table(), D)
    assert (result.eligible, result.reason) == (False, reason)


@pytest.mark.parametrize("first", range(len(REASON_CAUSES)))
def test_reason_precedence(first):
    """With this reason and every later one applying, this one is reported."""
    overrides = {}
    for reason in list(REASON_CAUSES)[first:]:
        overrides.update(REASON_CAUSES[reason])
    if "no_price" in list(REASON_CAUSES)[first:]:
        overrides["lines"] = lines(("VS-ENT", 10), ("UNPRICED", 1))
    result = rules.quote(facts(**overrides), US_PRICES, table(), D)
    assert result.reason == list(REASON_CAUSES)[first]


def test_eligible_contract():
    result = rules.quote(facts(), US_PRICES, table(), D)
    assert (result.eligible, result.reason) == (True, None)


@pytest.mark.parametrize(
    "overrides, reason",
    [
        (dict(launch_date=D), None),  # launched on D itself
        (dict(launch_date=None), "not_launched"),  # country without a launch date
        (dict(end_date=D - timedelta(days=365)), None),  # D - E = 365: not too long
        (dict(end_date=D - timedelta(days=366)), "lapsed_too_long"),
        # 6 x 450.00 = 2700.00 within, the 36-month 6 x 1215.00 over: one option suffices
        (dict(lines=lines(("VS-ENT", 6))), None),
        (dict(channel="partner"), None),
    ],
)
def test_eligibility_boundaries(overrides, reason):
    assert rules.quote(facts(**overrides), US_PRICES, table(), D).reason == reason


@pytest.mark.parametrize("reason", ["oem", "not_launched", "over_cap", "cancelled"])
def test_options_are_listed_also_when_not_eligible(reason):
    result = rules.quote(facts(**REASON_CAUSES[reason]), US_PRICES, table(), D)
    assert pairs(result)[0] == ("basic", 12)


# --- quote validity ---


@pytest.mark.parametrize(
    "end, valid_until",
    [
        ("2026-12-12", "2026-12-12"),  # E = D + 20 < D + 30: until E
        ("2027-01-06", "2026-12-22"),  # E = D + 45: until D + 30
        ("2026-12-22", "2026-12-22"),  # E = D + 30
        ("2026-11-22", "2026-11-22"),  # E = D: the last day
        ("2026-11-21", "2026-11-22"),  # lapsed: D only
        ("2025-11-21", "2026-11-22"),
    ],
)
def test_quote_validity(end, valid_until):
    assert rules.quote_valid_until(d(end), D) == d(valid_until)
    assert rules.quote(facts(end_date=d(end)), US_PRICES, table(), D).valid_until == d(valid_until)
