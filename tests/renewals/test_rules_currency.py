"""The pure renewal rules for paying in another currency (conversion, the FX fee, stale
and legacy rates) and the rate table (docs/rules.md). Every expected figure was worked out
by hand; the comment next to a case shows the sums. No app, no database.
"""
from datetime import timedelta
from decimal import Decimal

import pytest
from portal.renewals import rules
from portal.renewals.rules import Rate, RateTable, RuleError, Settings
from portal.renewals.services import settings
from tests.renewals.rules_cases import D, facts, lines, table


# --- paying in another currency ---


def option_total(total, currency):
    """A quote in ``currency`` whose basic/12 option totals ``total`` (1 x one line)."""
    prices = {("VS-ENT", "basic", 12): Decimal(total)}
    contract = facts(currency=currency, lines=lines(("VS-ENT", 1)))
    return contract, prices


@pytest.mark.parametrize(
    "quote_currency, total, pay, per_eur, rate, converted, fx_fee, due",
    [
        # EUR -> USD at 1.1: 10.15 x 1.1 = 11.165 -> 11.17 (half up); 3% = 0.3351 -> 0.34
        ("EUR", "10.15", "USD", {"USD": "1.1"}, "1.1", "11.17", "0.34", "11.51"),
        # docs/interfaces.md: 2400.00 x 1.0861 = 2606.64; 3% = 78.1992 -> 78.20
        ("EUR", "2400.00", "USD", {"USD": "1.0861"}, "1.0861", "2606.64", "78.20", "2684.84"),
        # USD -> EUR at r[USD] = 2: rate 0.5; 20003.00 x 0.5 = 10001.50;
        # 3% = 300.045 -> 300.05 (half up; half even: 300.04); due 10301.55
        ("USD", "20003.00", "EUR", {"USD": "2"}, "0.5", "10001.50", "300.05", "10301.55"),
        # EUR -> JPY at 150: 14.33 x 150 = 2149.5 -> 2150 (half up); 3% = 64.5 -> 65
        ("EUR", "14.33", "JPY", {"JPY": "150"}, "150", "2150", "65", "2215"),
        # JPY -> KRW = 1440 / 160 = 9: 68000 x 9 = 612000; 3% = 18360
        ("JPY", "68000", "KRW", {"JPY": "160", "KRW": "1440"}, "9", "612000", "18360", "630360"),
        # KRW -> USD = 1.2 / 1500 = 0.0008: 620000 x 0.0008 = 496.00; 3% = 14.88
        ("KRW", "620000", "USD", {"USD": "1.2", "KRW": "1500"}, "0.0008", "496.00", "14.88",
         "510.88"),
        # LTL (fixed 3.45280) -> EUR: 345.28 / 3.4528 = 100.00, no FX fee
        ("LTL", "345.28", "EUR", {}, None, "100.00", "0.00", "100.00"),
        # LVL (fixed 0.702804) -> EUR: 70.28 / 0.702804 = 99.99943 -> 100.00, no FX fee
        ("LVL", "70.28", "EUR", {}, None, "100.00", "0.00", "100.00"),
        # Paying in the quote currency: rate 1, no fee.
        ("USD", "450.00", "USD", {}, "1", "450.00", "0.00", "450.00"),
    ],
)
def test_payment_in_another_currency(quote_currency, total, pay, per_eur, rate, converted,
                                     fx_fee, due):
    contract, prices = option_total(total, quote_currency)
    rates = table(**{"USD": "1.2", **per_eur})
    result = rules.quote(contract, prices, rates, D)
    payment = rules.payment(result, result.options[0], pay, rates)
    assert (payment.currency, payment.service_level, payment.term_months) == (pay, "basic", 12)
    if rate is not None:
        assert payment.rate == Decimal(rate)
    assert [str(payment.converted), str(payment.fx_fee), str(payment.amount_due)] == [
        converted, fx_fee, due]


def test_legacy_rate_is_applied_unrounded():
    # rate(LVL -> EUR) = 1 / 0.702804 with 28 digits, not rounded before use.
    rates = table(USD="1.2")
    assert rates.rate("LVL", "EUR") == Decimal(1) / Decimal("0.702804")
    assert len(rates.rate("LVL", "EUR").as_tuple().digits) == 28


def test_cap_is_judged_before_the_fx_fee():
    # 3000.00 USD is within the cap; paid in EUR at r[USD] = 1.2: 2500.00 + 3% 75.00 = 2575.00,
    # which is 3090.00 USD with the fee, and still may be bought.
    contract, prices = option_total("3000.00", "USD")
    rates = table(USD="1.2")
    result = rules.quote(contract, prices, rates, D)
    payment = rules.payment(result, result.options[0], "EUR", rates)
    assert result.eligible and result.options[0].within_cap
    assert (str(payment.converted), str(payment.fx_fee)) == ("2500.00", "75.00")


@pytest.mark.parametrize("legacy", ["LVL", "LTL"])
def test_legacy_currencies_are_paid_in_eur_only(legacy):
    contract, prices = option_total("100.00", legacy)
    rates = table(USD="1.2", GBP="0.8")
    result = rules.quote(contract, prices, rates, D)
    assert rules.pay_currencies(legacy, rates) == ["EUR"]
    for pay in (legacy, "USD", "GBP"):
        with pytest.raises(RuleError, match=f"{legacy} quotes are paid in EUR"):
            rules.payment(result, result.options[0], pay, rates)


def test_stale_rates_are_not_offered():
    # On D: USD dated D - 7 (fresh), GBP dated D - 8 (stale), JPY dated after D (not used).
    rates = RateTable(D, [
        Rate("USD", Decimal("1.2"), D - timedelta(days=7)),
        Rate("GBP", Decimal("0.8"), D - timedelta(days=8)),
        Rate("JPY", Decimal("160"), D + timedelta(days=1)),
    ])
    assert rules.pay_currencies("EUR", rates) == ["EUR", "USD"]
    contract, prices = option_total("100.00", "EUR")
    result = rules.quote(contract, prices, rates, D)
    assert rules.payment(result, result.options[0], "USD", rates).amount_due == Decimal("123.60")
    with pytest.raises(RuleError, match="no current exchange rate for paying a EUR quote in GBP"
                                        r" \(rates older than 7 days are not used\)"):
        rules.payment(result, result.options[0], "GBP", rates)
    with pytest.raises(RuleError, match="in JPY"):
        rules.payment(result, result.options[0], "JPY", rates)
    with pytest.raises(RuleError, match="XYZ is not a payment currency"):
        rules.payment(result, result.options[0], "XYZ", rates)


def test_stale_quote_currency_is_still_offered_alone():
    # A GBP quote whose GBP rate is 8 days old: paid in GBP only, no conversion offered.
    rates = RateTable(D, [Rate("GBP", Decimal("0.8"), D - timedelta(days=8)),
                          Rate("USD", Decimal("1.2"), D)])
    assert rules.pay_currencies("GBP", rates) == ["GBP"]
    contract, prices = option_total("80.00", "GBP")
    result = rules.quote(contract, prices, rates, D)
    assert result.options[0].usd_equivalent == Decimal("120.00")  # 80 x 1.2 / 0.8
    assert rules.payment(result, result.options[0], "GBP", rates).amount_due == Decimal("80.00")


def test_fx_max_age_is_a_setting():
    rates = RateTable(D, [Rate("USD", Decimal("1.2"), D - timedelta(days=8))])
    assert rules.pay_currencies("EUR", rates, Settings(fx_max_age_days=8)) == ["EUR", "USD"]
    assert rules.pay_currencies("EUR", rates, Settings(fx_max_age_days=7)) == ["EUR"]


def test_fx_fee_rate_is_a_setting():
    # 2400.00 x 1.0861 = 2606.64; 5% = 130.332 -> 130.33
    contract, prices = option_total("2400.00", "EUR")
    rates = table(USD="1.0861")
    settings = Settings(fx_fee_rate=Decimal("0.05"))
    result = rules.quote(contract, prices, rates, D, settings)
    assert rules.payment(result, result.options[0], "USD", rates, settings).fx_fee == Decimal(
        "130.33")


# --- rate table ---


def test_rate_table_takes_the_latest_on_or_before_the_date():
    rates = RateTable(D, [
        Rate("USD", Decimal("1.1"), D - timedelta(days=3)),
        Rate("USD", Decimal("1.2"), D - timedelta(days=1)),
        Rate("USD", Decimal("1.3"), D + timedelta(days=1)),
        Rate("EUR", Decimal("2"), D),  # EUR is 1 by definition
        Rate("LVL", Decimal("9"), D),  # fixed
    ])
    assert rates.get("USD") == Rate("USD", Decimal("1.2"), D - timedelta(days=1))
    assert rates.get("EUR").per_eur == 1
    assert rates.get("LVL").per_eur == Decimal("0.702804")
    assert rates.get("LTL").per_eur == Decimal("3.45280")
    # rate(A -> B) = r[B] / r[A]: USD -> LVL = 0.702804 / 1.2 = 0.58567
    assert rates.rate("USD", "LVL") == Decimal("0.58567")
    assert rates.used("EUR", "EUR") == {}
    with pytest.raises(RuleError, match="no exchange rate for GBP"):
        rates.get("GBP")


def test_settings_from_config():
    config = {"ONLINE_CAP_USD": Decimal("2500.00"), "FX_FEE_RATE": Decimal("0.02"),
              "REINSTATEMENT_FEE_RATE": Decimal("0.10"), "FX_MAX_AGE_DAYS": 3,
              "REINSTATEMENT_MAX_LAPSE_DAYS": 180, "QUOTE_VALIDITY_DAYS": 14}
    assert Settings.from_config(config) == Settings(
        Decimal("2500.00"), Decimal("0.02"), Decimal("0.10"), 3, 180, 14)


def test_the_app_settings_follow_its_configuration(app):
    """Made once per set of values, and a changed value is read on the next call."""
    first = settings()
    assert settings() is first
    cap = app.config["ONLINE_CAP_USD"]
    app.config["ONLINE_CAP_USD"] = Decimal("1234.50")
    try:
        assert settings().online_cap_usd == Decimal("1234.50")
        assert settings().quote_validity_days == first.quote_validity_days
    finally:
        app.config["ONLINE_CAP_USD"] = cap
    assert settings() == first
