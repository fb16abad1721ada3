"""``portal quote NUMBER [--date D] [--level L] [--term N] [--pay-currency C] --json``.

Through the ``cli`` fixture, on SQLite and PostgreSQL. The JSON must be exactly the
format of docs/interfaces.md; expected figures are worked out by hand in the comments.
"""
import json
from decimal import Decimal

import pytest

from tests import factories
from tests.imports.helpers import (
    PRICELIST_HEADER,
    RATES_HEADER,
    assert_fails_unchanged,
    contract_doc,
    table_rows,
    write_csv,
    write_json,
)

D = "2026-11-22"
QUOTE_KEYS = {"contract", "quote_date", "currency", "eligible", "reason", "options", "payment"}
OPTION_KEYS = {"service_level", "term_months", "term_start", "term_end", "lapsed_days",
               "term_fee", "backdated_fee", "reinstatement_fee", "total", "usd_equivalent",
               "within_cap"}
PAYMENT_KEYS = {"currency", "service_level", "term_months", "rate", "converted", "fx_fee",
                "amount_due"}

#: The example of docs/interfaces.md ("Quote JSON"), to the letter.
INTERFACES_EXAMPLE = {
    "contract": "SNS-004711", "quote_date": "2026-11-22", "currency": "EUR",
    "eligible": True, "reason": None,
    "options": [{"service_level": "production", "term_months": 12,
                 "term_start": "2026-12-01", "term_end": "2027-11-30", "lapsed_days": 0,
                 "term_fee": "2400.00", "backdated_fee": "0.00", "reinstatement_fee": "0.00",
                 "total": "2400.00", "usd_equivalent": "2606.64", "within_cap": True}],
    "payment": None,
}

#: Every (level, term) priced for VS-ENT and BK-AGT but production/36 for BK-AGT (USD).
US_PRICES = {
    ("VS-ENT", "basic", 12): "450.00", ("VS-ENT", "basic", 36): "1215.00",
    ("VS-ENT", "production", 12): "600.00", ("VS-ENT", "production", 36): "1620.00",
    ("BK-AGT", "basic", 12): "85.00", ("BK-AGT", "production", 12): "110.00",
}


def quote(cli, number, *args):
    result = cli("quote", number, "--date", D, *args, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == QUOTE_KEYS
    for option in document["options"]:
        assert set(option) == OPTION_KEYS
    if document["payment"] is not None:
        assert set(document["payment"]) == PAYMENT_KEYS
    return document


@pytest.fixture
def example(cli, tmp_path):
    """The docs/interfaces.md example, imported from files: price list, contract, rates."""
    rows = [("EMEA-EUR", "EUR", "VS-ENT", "Vault Server Enterprise", "production", "12",
             "600.00")]
    for kind, path in (
        ("pricelists", write_csv(tmp_path / "pricelists.csv", PRICELIST_HEADER, rows)),
        ("contracts", write_json(tmp_path / "contracts.json", [contract_doc()])),
        ("rates", write_csv(tmp_path / "rates.csv", RATES_HEADER, [
            ("USD", "1.0861", "2026-11-20"), ("GBP", "0.8412", "2026-11-14"),
            ("JPY", "150", "2026-11-21")])),
    ):
        result = cli("import", kind, path)
        assert result.exit_code == 0, result.output
    return cli


def test_the_interfaces_example(example):
    before = table_rows()
    assert quote(example, "SNS-004711") == INTERFACES_EXAMPLE
    assert table_rows() == before  # quoting stores nothing


@pytest.mark.parametrize(
    "pay, payment",
    [
        # 2400.00 x 1.0861 = 2606.64; 3% = 78.1992 -> 78.20; due 2684.84
        ("USD", {"currency": "USD", "rate": "1.0861", "converted": "2606.64",
                 "fx_fee": "78.20", "amount_due": "2684.84"}),
        ("usd", {"currency": "USD", "rate": "1.0861", "converted": "2606.64",
                 "fx_fee": "78.20", "amount_due": "2684.84"}),
        # 2400.00 x 150 = 360000 JPY; 3% = 10800; due 370800 (no decimals)
        ("JPY", {"currency": "JPY", "rate": "150", "converted": "360000",
                 "fx_fee": "10800", "amount_due": "370800"}),
        # The quote currency: rate 1, no fee.
        ("EUR", {"currency": "EUR", "rate": "1", "converted": "2400.00",
                 "fx_fee": "0.00", "amount_due": "2400.00"}),
    ],
)
def test_payment_block(example, pay, payment):
    document = quote(example, "SNS-004711", "--pay-currency", pay)
    got, expected = dict(document["payment"]), dict(payment)
    assert Decimal(got.pop("rate")) == Decimal(expected.pop("rate"))
    assert got == {"service_level": "production", "term_months": 12, **expected}
    assert document["options"] == INTERFACES_EXAMPLE["options"]


def test_plain_output(example):
    result = example("quote", "SNS-004711", "--date", D)
    assert result.exit_code == 0, result.output
    assert "SNS-004711 quoted 2026-11-22 in EUR: eligible for online renewal" in result.stdout
    assert "2400.00 EUR" in result.stdout and "USD 2606.64" in result.stdout


def test_options_ordered_by_level_then_term(cli):
    # VS-ENT x 2, BK-AGT x 1 on a basic contract; BK-AGT has no 36-month prices at all,
    # so only the 12-month terms are offered: basic 2 x 450 + 85 = 985.00,
    # production 2 x 600 + 110 = 1310.00.
    plist = factories.price_list("US", "USD", US_PRICES)
    factories.contract(plist, number="SNS-1", lines=[("VS-ENT", 2), ("BK-AGT", 1)],
                       end_date="2026-12-31")
    factories.contract(plist, number="SNS-2", lines=[("VS-ENT", 1)], end_date="2026-12-31")
    document = quote(cli, "SNS-1")
    assert [(o["service_level"], o["term_months"], o["total"]) for o in document["options"]] == [
        ("basic", 12, "985.00"), ("production", 12, "1310.00")]
    # VS-ENT alone: every pair, by level then term.
    document = quote(cli, "SNS-2")
    assert [(o["service_level"], o["term_months"], o["total"], o["term_end"])
            for o in document["options"]] == [
        ("basic", 12, "450.00", "2027-12-31"), ("basic", 36, "1215.00", "2029-12-31"),
        ("production", 12, "600.00", "2027-12-31"), ("production", 36, "1620.00", "2029-12-31")]
    assert document["options"][0]["usd_equivalent"] == "450.00"


def test_lapsed_jpy_quote_paid_in_krw(cli):
    # JP basic contract, VS-ENT x 2, BK-AGT x 3, ended 2026-11-12; D = 2026-11-22: N = 10.
    plist = factories.price_list("JP", "JPY", {
        ("VS-ENT", "basic", 12): "68000", ("VS-ENT", "production", 12): "91000",
        ("BK-AGT", "basic", 12): "12800", ("BK-AGT", "production", 12): "16500",
    })
    factories.contract(plist, number="SNS-JP1", country="JP", end_date="2026-11-12",
                       lines=[("VS-ENT", 2), ("BK-AGT", 3)])
    for code, per_eur in (("JPY", "160"), ("USD", "1.2"), ("KRW", "1440")):
        factories.rate(code, per_eur, "2026-11-21")
    document = quote(cli, "SNS-JP1", "--pay-currency", "KRW")
    common = {"term_start": "2026-11-23", "term_end": "2027-11-22", "lapsed_days": 10,
              # 136000 x 10/365 = 3726.03 -> 3726; 38400 x 10/365 = 1052.05 -> 1052
              "backdated_fee": "4778",
              # 20% x 4778 = 955.6 -> 956
              "reinstatement_fee": "956", "within_cap": True}
    assert document["options"] == [
        # 2 x 68000 + 3 x 12800 = 174400; + 4778 + 956 = 180134;
        # x 1.2 / 160 = 1351.005 -> 1351.01 (half up)
        {"service_level": "basic", "term_months": 12, "term_fee": "174400",
         "total": "180134", "usd_equivalent": "1351.01", **common},
        # 2 x 91000 + 3 x 16500 = 231500; 237234; x 0.0075 = 1779.255 -> 1779.26
        {"service_level": "production", "term_months": 12, "term_fee": "231500",
         "total": "237234", "usd_equivalent": "1779.26", **common},
    ]
    assert (document["currency"], document["eligible"], document["reason"]) == ("JPY", True, None)
    # JPY -> KRW = 1440 / 160 = 9: 180134 x 9 = 1621206; 3% = 48636.18 -> 48636
    payment = document["payment"]
    assert Decimal(payment.pop("rate")) == 9
    assert payment == {"currency": "KRW", "service_level": "basic", "term_months": 12,
                       "converted": "1621206", "fx_fee": "48636", "amount_due": "1669842"}


def test_level_and_term_choose_the_paid_option(cli):
    plist = factories.price_list("US", "USD", US_PRICES)
    factories.contract(plist, number="SNS-1", lines=[("VS-ENT", 1)], end_date="2026-12-31")
    factories.rate("USD", "1.2", D)
    # production/36 = 1620.00 USD; / 1.2 = 1350.00 EUR; 3% = 40.50; due 1390.50
    document = quote(cli, "SNS-1", "--level", "production", "--term", "36",
                     "--pay-currency", "EUR")
    assert document["payment"]["amount_due"] == "1390.50"
    assert (document["payment"]["service_level"], document["payment"]["term_months"]) == (
        "production", 36)


def test_legacy_currency_quote_is_paid_in_eur_without_fee(cli):
    # 295.00 LVL; r[USD] = 0.702804 makes LVL -> USD exactly 1: USD equivalent 295.00.
    # Paid in EUR: 295.00 / 0.702804 = 419.7472 -> 419.75, no FX fee.
    plist = factories.price_list("BALTIC-LVL", "LVL", {("VS-ENT", "basic", 12): "295.00"})
    factories.contract(plist, number="SNS-LV1", country="LV")
    factories.rate("USD", "0.702804", D)
    document = quote(cli, "SNS-LV1", "--pay-currency", "EUR")
    assert document["options"][0]["usd_equivalent"] == "295.00"
    payment = document["payment"]
    assert (payment["converted"], payment["fx_fee"], payment["amount_due"]) == (
        "419.75", "0.00", "419.75")


def test_cap_exactly_at_3000(cli):
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "1000.00",
                                               ("BK-AGT", "basic", 12): "0.01"})
    factories.contract(plist, number="SNS-AT", lines=[("VS-ENT", 3)])
    factories.contract(plist, number="SNS-OVER", lines=[("VS-ENT", 3), ("BK-AGT", 1)])
    at = quote(cli, "SNS-AT")  # 3 x 1000.00 = 3000.00: within
    assert (at["options"][0]["usd_equivalent"], at["options"][0]["within_cap"]) == (
        "3000.00", True)
    assert at["eligible"] is True
    over = quote(cli, "SNS-OVER")  # 3000.00 + 0.01 = 3000.01: over
    assert (over["options"][0]["total"], over["options"][0]["within_cap"]) == ("3000.01", False)
    assert (over["eligible"], over["reason"]) == (False, "over_cap")


#: Contract factory arguments that make one reason apply, and whether options are listed.
REASON_CONTRACTS = {
    "oem": (dict(channel="oem"), True),
    "level_not_online": (dict(level="business_critical"), False),
    "not_launched": (dict(country="DE"), True),  # DE launched on 2027-01-01 below
    "lapsed_too_long": (dict(end_date="2025-11-21"), True),  # D - E = 366 days
    "no_price": (dict(lines=[("VS-ENT", 1), ("NO-PRICE", 1)]), False),
    "over_cap": (dict(lines=[("VS-ENT", 7)]), True),  # 7 x 450.00 = 3150.00
    "cancelled": (dict(status="cancelled"), True),
}


@pytest.mark.parametrize("reason", list(REASON_CONTRACTS))
def test_reason_codes(cli, reason):
    factories.launch("DE", "2027-01-01")
    plist = factories.price_list("US", "USD", {**US_PRICES, ("NO-PRICE", "production", 12): "1"})
    arguments, listed = REASON_CONTRACTS[reason]
    factories.contract(plist, number="SNS-R", **arguments)
    document = quote(cli, "SNS-R")
    assert (document["eligible"], document["reason"]) == (False, reason)
    assert bool(document["options"]) is listed


def test_first_reason_wins(cli):
    # OEM, not launched and cancelled at once: the table's order puts oem first.
    factories.launch("DE", "2027-01-01")
    plist = factories.price_list("US", "USD", US_PRICES)
    factories.contract(plist, number="SNS-R", channel="oem", country="DE", status="cancelled")
    assert quote(cli, "SNS-R")["reason"] == "oem"


# --- bad input: exit != 0, one error line, nothing changed ---


@pytest.mark.parametrize(
    "number, args, fragments",
    [
        ("SNS-404", [], ["unknown contract number 'SNS-404'"]),
        ("SNS-004711", ["--pay-currency", "XYZ"], ["SNS-004711: XYZ is not a payment currency"]),
        # GBP is dated 2026-11-14, 8 days before D: stale.
        ("SNS-004711", ["--pay-currency", "GBP"],
         ["SNS-004711: no current exchange rate for paying a EUR quote in GBP",
          "older than 7 days"]),
        ("SNS-004711", ["--pay-currency", "LVL"], ["SNS-004711: LVL is not a payment currency"]),
        ("SNS-004711", ["--level", "basic"], ["no renewal option basic / 12 months"]),
        ("SNS-004711", ["--term", "36", "--pay-currency", "USD"],
         ["no renewal option production / 36 months"]),
    ],
)
def test_bad_quote_requests(example, number, args, fragments):
    assert_fails_unchanged(
        lambda: example("quote", number, "--date", D, *args, "--json"), *fragments)


def test_quote_without_a_usd_rate(cli):
    plist = factories.price_list("EMEA-EUR", "EUR", {("VS-ENT", "basic", 12): "420.00"})
    factories.contract(plist, number="SNS-EU", country="DE")
    assert_fails_unchanged(lambda: cli("quote", "SNS-EU", "--date", D, "--json"),
                           "SNS-EU: no exchange rate for USD on or before 2026-11-22")


def test_legacy_quote_cannot_be_paid_in_usd(cli):
    plist = factories.price_list("BALTIC-LVL", "LVL", {("VS-ENT", "basic", 12): "295.00"})
    factories.contract(plist, number="SNS-LV1", country="LV")
    factories.rate("USD", "1.0861", D)
    assert_fails_unchanged(
        lambda: cli("quote", "SNS-LV1", "--date", D, "--pay-currency", "USD", "--json"),
        "SNS-LV1: LVL quotes are paid in EUR")


@pytest.mark.parametrize("value", ["2026-02-30", "22.11.2026", "2026-11-2"])
def test_invalid_quote_date(example, value):
    before = table_rows()
    result = example("quote", "SNS-004711", "--date", value, "--json")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"'{value}' is not a date (YYYY-MM-DD)" in errors[0]
    assert table_rows() == before


@pytest.mark.parametrize("value", ["9999-12-31", "9997-01-01", "0001-01-01"])
def test_a_quote_date_out_of_range_is_one_line(example, value):
    before = table_rows()
    result = example("quote", "SNS-004711", "--date", value, "--json")
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert f"'{value}' is not a day from 1970-01-01 to 2999-12-31" in errors[0]
    assert table_rows() == before
