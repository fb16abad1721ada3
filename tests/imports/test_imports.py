"""``portal import pricelists|contracts|rates`` and ``portal demo`` through the CLI.

Runs on SQLite and PostgreSQL (the ``cli`` fixture). Bad input must give a non-zero exit,
one error line naming the file, row and field, and an unchanged database.
"""
import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.pricing.models import PriceList, Product
from portal.contracts.models import Account, Contract, Partner
from portal.extensions import db
from portal.rates.models import ExchangeRate
from tests.imports.helpers import (
    PRICELIST_HEADER,
    RATES_HEADER,
    assert_fails_unchanged,
    contract_doc,
    row_counts,
    new_rows,
    table_rows,
    write_csv,
    write_json,
    write_text,
)

EMEA_ROWS = [
    ("EMEA-EUR", "EUR", "VS-ENT", "Vault Server Enterprise", "production", "12", "600.00"),
    ("EMEA-EUR", "EUR", "VS-ENT", "Vault Server Enterprise", "production", "36", "1620.00"),
    ("EMEA-EUR", "EUR", "BK-AGT", "Backup Agent", "basic", "12", "79.00"),
]
JP_ROW = ("JP", "JPY", "VS-ENT", "Vault Server Enterprise", "basic", "12", "68000")


@pytest.fixture
def emea(cli, tmp_path):
    """The EMEA-EUR price list and one contract on it (SNS-004711), imported."""
    path = write_csv(tmp_path / "base.csv", PRICELIST_HEADER, EMEA_ROWS + [JP_ROW])
    assert cli("import", "pricelists", path).exit_code == 0
    path = write_json(tmp_path / "base.json", [contract_doc()])
    result = cli("import", "contracts", path)
    assert result.exit_code == 0, result.output
    return cli


def prices(code):
    plist = db.session.scalar(select(PriceList).where(PriceList.code == code))
    return plist.currency, plist.prices()


def contract(number):
    return db.session.scalar(select(Contract).where(Contract.number == number))


# --- price lists ---


def test_import_pricelists(cli, tmp_path):
    path = write_csv(tmp_path / "pricelists.csv", PRICELIST_HEADER, EMEA_ROWS + [JP_ROW])
    result = cli("import", "pricelists", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"pricelists: 4 imported from {path}"
    currency, entries = prices("EMEA-EUR")
    assert currency == "EUR"
    assert entries == {
        ("VS-ENT", "production", 12): Decimal("600.00"),
        ("VS-ENT", "production", 36): Decimal("1620.00"),
        ("BK-AGT", "basic", 12): Decimal("79.00"),
    }
    assert prices("JP") == ("JPY", {("VS-ENT", "basic", 12): Decimal("68000")})
    assert db.session.get(Product, "BK-AGT").name == "Backup Agent"


def test_import_pricelists_upserts(emea, tmp_path):
    before = row_counts()
    rows = [("EMEA-EUR", "EUR", "VS-ENT", "Vault Server Ent.", "production", "12", "612.50")]
    result = emea("import", "pricelists", write_csv(tmp_path / "p2.csv", PRICELIST_HEADER, rows))
    assert result.exit_code == 0, result.output
    assert prices("EMEA-EUR")[1][("VS-ENT", "production", 12)] == Decimal("612.50")
    assert db.session.get(Product, "VS-ENT").name == "Vault Server Ent."
    after = row_counts()
    assert after["price_entry"] == before["price_entry"]  # replaced, not added
    assert after["audit_entry"] == before["audit_entry"] + 1


# --- rates ---


def test_import_rates(cli, tmp_path):
    rows = [("USD", "1.0861", "2026-11-20"), ("JPY", "162.35", "2026-11-20"),
            ("USD", "1.0900", "2026-11-21"), ("EUR", "1", "2026-11-21")]
    result = cli("import", "rates", write_csv(tmp_path / "rates.csv", RATES_HEADER, rows))
    assert result.exit_code == 0, result.output
    stored = {(r.currency, r.as_of): r.per_eur for r in db.session.scalars(select(ExchangeRate))}
    # EUR is 1 by definition and never stored.
    assert stored == {("USD", date(2026, 11, 20)): Decimal("1.0861"),
                      ("JPY", date(2026, 11, 20)): Decimal("162.35"),
                      ("USD", date(2026, 11, 21)): Decimal("1.09")}
    # Upsert: the same (currency, date) is replaced.
    rows = [("USD", "1.0999", "2026-11-21")]
    result = cli("import", "rates", write_csv(tmp_path / "rates2.csv", RATES_HEADER, rows))
    assert result.exit_code == 0, result.output
    assert db.session.scalar(
        select(ExchangeRate.per_eur).where(ExchangeRate.as_of == date(2026, 11, 21))
    ) == Decimal("1.0999")
    assert db.session.scalar(select(db.func.count()).select_from(ExchangeRate)) == 3


# --- contracts ---


def test_import_contracts(emea, tmp_path):
    item = contract("SNS-004711")
    assert (item.channel, item.service_level, item.term_months, item.currency) == (
        "direct", "production", 12, "EUR")
    assert (item.start_date, item.end_date) == (date(2025, 12, 1), date(2026, 11, 30))
    assert [(line.product_code, line.quantity) for line in item.lines] == [("VS-ENT", 4)]
    assert (item.account.name, item.account.country) == ("Muster GmbH", "DE")
    (contact,) = item.account.contacts
    assert (contact.email, contact.language, contact.primary) == ("eva@muster.example", "de", True)


def test_import_contracts_upserts(emea, tmp_path):
    before = row_counts()
    doc = contract_doc(
        channel="partner", partner="NORTHWIND",
        account={"name": "Muster GmbH", "country": "DE", "region": "DE-BY"},
        contacts=[{"name": "Eva Muster", "email": "EVA@muster.example", "primary": True},
                  {"name": "Max Muster", "email": "max@muster.example"}],
        end_date="2027-11-30",
        lines=[{"product_code": "BK-AGT", "quantity": 10}],
    )
    result = emea("import", "contracts", write_json(tmp_path / "again.json", [doc]))
    assert result.exit_code == 0, result.output
    item = contract("SNS-004711")
    assert item.end_date == date(2027, 11, 30)
    assert [(line.product_code, line.quantity) for line in item.lines] == [("BK-AGT", 10)]
    assert item.partner.code == "NORTHWIND" and item.account.region == "DE-BY"
    assert [c.email for c in item.account.contacts] == ["eva@muster.example",
                                                        "max@muster.example"]
    after = row_counts()
    assert (after["contract"], after["account"], after["contract_line"]) == (
        before["contract"], before["account"], before["contract_line"])
    assert after["contact"] == before["contact"] + 1
    assert db.session.scalar(select(Partner.name)) == "NORTHWIND"
    assert db.session.scalar(select(db.func.count()).select_from(Account)) == 1


# --- bad input: exit != 0, one line naming file/row/field, nothing changed ---

PRICELIST_FAULTS = [
    # (rows, fragments of the error line)
    pytest.param([EMEA_ROWS[0], ("EMEA-EUR", "EUR", "VS-ENT", "Vault", "basic", "12")],
                 ["bad.csv row 3: wrong number of fields"], id="short-row"),
    pytest.param([EMEA_ROWS[0] + ("extra",)], ["bad.csv row 2: wrong number of fields"],
                 id="long-row"),
    pytest.param([("X", "XYZ", "VS-ENT", "Vault", "basic", "12", "1.00")],
                 ["bad.csv row 2: currency 'XYZ' is not a supported currency"],
                 id="unknown-currency"),
    pytest.param([EMEA_ROWS[0], ("EMEA-EUR", "EUR", "VS-ENT", "Vault", "basic", "12", "-1.00")],
                 ["bad.csv row 3: unit_price", "'-1.00' must not be negative"],
                 id="negative-price"),
    pytest.param([("JP", "JPY", "VS-ENT", "Vault", "basic", "36", "183600.5")],
                 ["bad.csv row 2: unit_price", "more decimals than JPY allows (0)"],
                 id="jpy-decimals"),
    pytest.param([("US", "USD", "VS-ENT", "Vault", "basic", "12", "450.001")],
                 ["bad.csv row 2: unit_price", "more decimals than USD allows (2)"],
                 id="usd-decimals"),
    pytest.param([("US", "USD", "VS-ENT", "Vault", "basic", "12", "4,50")],
                 ["bad.csv row 2: unit_price '4,50' is not a plain decimal number"],
                 id="not-a-number"),
    *[pytest.param([("US", "USD", "VS-ENT", "Vault", "basic", "12", price)],
                   [f"bad.csv row 2: unit_price {price!r} is not a plain decimal number"],
                   id=f"not-plain-{price}") for price in ("1e3", "+10.00", "10.", ".5")],
    pytest.param([("US", "USD", "VS-ENT", "Vault", "basic", "24", "450.00")],
                 ["bad.csv row 2: term_months 24 is not one of 12, 36"], id="term-24"),
    pytest.param([("US", "USD", "VS-ENT", "Vault", "basic", "twelve", "450.00")],
                 ["bad.csv row 2: term_months 'twelve' is not a whole number"],
                 id="bad-term"),
    pytest.param([("US", "USD", "", "Vault", "basic", "12", "450.00")],
                 ["bad.csv row 2: product_code is missing"], id="missing-product"),
    pytest.param([EMEA_ROWS[0], EMEA_ROWS[0]],
                 ["bad.csv row 3: duplicate of", "row 2"], id="duplicate-row"),
    pytest.param([("EMEA-EUR", "EUR", "VS-ENT", "Vault", "basic", "12", "1.00"),
                  ("EMEA-EUR", "GBP", "BK-AGT", "Backup", "basic", "12", "1.00")],
                 ["bad.csv row 3: currency GBP differs from EUR of price list EMEA-EUR"],
                 id="two-currencies"),
    # A new list first, then an existing list in another currency: found while writing,
    # so the new list must be rolled back too.
    pytest.param([("NEW", "CHF", "VS-ENT", "Vault", "basic", "12", "1.00"),
                  ("EMEA-EUR", "GBP", "VS-ENT", "Vault", "basic", "12", "1.00")],
                 ["bad.csv row 3: currency GBP differs from EUR of price list EMEA-EUR"],
                 id="existing-list-other-currency"),
    # Larger than the database column holds (14 integer digits).
    pytest.param([("US", "USD", "VS-ENT", "Vault", "basic", "12", "100000000000000.00")],
                 ["bad.csv row 2: unit_price", "too large"], id="price-too-large"),
]


@pytest.mark.parametrize("rows, fragments", PRICELIST_FAULTS)
def test_bad_pricelists(emea, tmp_path, rows, fragments):
    path = write_csv(tmp_path / "bad.csv", PRICELIST_HEADER, rows)
    assert_fails_unchanged(lambda: emea("import", "pricelists", path), *fragments)
    assert db.session.scalar(select(PriceList).where(PriceList.code == "NEW")) is None


@pytest.mark.parametrize(
    "text, fragments",
    [
        pytest.param("price_list,currency,product_code\nUS,USD,VS-ENT\n",
                     ["bad.csv: header lacks column(s) product_name, service_level"],
                     id="header"),
        pytest.param(",".join(PRICELIST_HEADER) + "\n", ["bad.csv: no data rows"], id="empty"),
        pytest.param('price_list,currency,product_code,product_name,service_level,'
                     'term_months,unit_price\nUS,USD,VS-ENT,"Vault "x" Server",basic,12,1.00\n'
                     'US,USD,BK-AGT,Backup,basic,12,"1.00\n',
                     ["bad.csv row"], id="broken-quoting"),
    ],
)
def test_malformed_pricelist_files(emea, tmp_path, text, fragments):
    path = write_text(tmp_path / "bad.csv", text)
    assert_fails_unchanged(lambda: emea("import", "pricelists", path), *fragments)


def test_missing_and_non_utf8_files(emea, tmp_path):
    missing = str(tmp_path / "nope.csv")
    assert_fails_unchanged(lambda: emea("import", "pricelists", missing), "nope.csv: no such file")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"currency,per_eur,as_of\nUSD,1.0,2026-11-20 \xe9\n")
    assert_fails_unchanged(lambda: emea("import", "rates", str(latin)),
                           "latin.csv: not UTF-8 text")


@pytest.mark.parametrize(
    "rows, fragments",
    [
        pytest.param([("USD", "1.0861", "2026-11-20"), ("XYZ", "1.5", "2026-11-20")],
                     ["bad.csv row 3: currency 'XYZ' is not a supported currency"],
                     id="unknown-currency"),
        pytest.param([("USD", "1.0861", "2026-02-30")],
                     ["bad.csv row 2: as_of '2026-02-30' is not a date (YYYY-MM-DD)"],
                     id="invalid-date"),
        pytest.param([("USD", "1.0861", "20.11.2026")],
                     ["bad.csv row 2: as_of '20.11.2026' is not a date"], id="date-format"),
        pytest.param([("USD", "0", "2026-11-20")],
                     ["bad.csv row 2: per_eur must be greater than zero"], id="zero"),
        pytest.param([("USD", "-1.08", "2026-11-20")],
                     ["bad.csv row 2: per_eur must be greater than zero"], id="negative"),
        pytest.param([("USD", "1,08", "2026-11-20")],
                     ["bad.csv row 2: per_eur '1,08' is not a plain decimal number"],
                     id="not-a-number"),
        pytest.param([("USD", "1.08", "2026-11-20"), ("USD", "1.09", "2026-11-20")],
                     ["bad.csv row 3: duplicate of", "USD on 2026-11-20"], id="duplicate"),
        pytest.param([("USD", "1.08", "2026-11-20", "x")],
                     ["bad.csv row 2: wrong number of fields"], id="long-row"),
        # More decimals than the rate column keeps would be silently changed.
        pytest.param([("USD", "1.08612345678901", "2026-11-20")],
                     ["bad.csv row 2: per_eur", "decimals"], id="too-precise"),
        pytest.param([("JPY", "100000000000000", "2026-11-20")],
                     ["bad.csv row 2: per_eur", "too large"], id="too-large"),
        pytest.param([("EUR", "1.5", "2026-11-20")],
                     ["bad.csv row 2: EUR is fixed at 1 per EUR, not 1.5"], id="eur"),
        pytest.param([("LVL", "0.7", "2026-11-20")],
                     ["bad.csv row 2: LVL is fixed at 0.702804 per EUR, not 0.7"], id="lvl"),
    ],
)
def test_bad_rates(emea, tmp_path, rows, fragments):
    path = write_csv(tmp_path / "bad.csv", RATES_HEADER, rows)
    assert_fails_unchanged(lambda: emea("import", "rates", path), *fragments)


CONTRACT_FAULTS = [
    pytest.param([contract_doc(), contract_doc()],
                 ["bad.json [1] (SNS-004711): duplicate contract number, also at [0]"],
                 id="duplicate-number"),
    pytest.param([contract_doc("SNS-1"), contract_doc("SNS-2", price_list="NOPE")],
                 ["bad.json [1] (SNS-2): price list NOPE does not exist"],
                 id="missing-price-list"),
    pytest.param([contract_doc("SNS-1", term_months=24)],
                 ["bad.json [0] (SNS-1): term_months 24 is not one of 12, 36"], id="term-24"),
    pytest.param([contract_doc("SNS-1", account={"name": "M", "country": "DE",
                                                 "region": "CA-QC"})],
                 ["bad.json [0] (SNS-1): account.region 'CA-QC' is not in account.country DE"],
                 id="region-of-another-country"),
    pytest.param([contract_doc("SNS-1", end_date="2026-02-30")],
                 ["bad.json [0] (SNS-1): end_date '2026-02-30' is not a date (YYYY-MM-DD)"],
                 id="invalid-date"),
    pytest.param([contract_doc("SNS-1", start_date="2026-12-01", end_date="2026-11-30")],
                 ["bad.json [0] (SNS-1): end_date 2026-11-30 is before start_date"],
                 id="end-before-start"),
    # A product code no price list prices is not a fault (tests/imports/test_unpriced_products.py),
    # but the rest of such a line is checked as strictly as any other.
    pytest.param([contract_doc("SNS-1", lines=[{"product_code": "NOPE", "quantity": 0}])],
                 ["bad.json [0] (SNS-1) lines[0]: quantity must be greater than zero"],
                 id="unpriced-product-zero-quantity"),
    pytest.param([contract_doc("SNS-1", lines=[{"product_code": "N" * 65, "quantity": 1}])],
                 ["bad.json [0] (SNS-1) lines[0]: product_code is longer than 64"],
                 id="product-code-too-long"),
    pytest.param([contract_doc("SNS-1", lines=[{"product_code": "", "quantity": 1}])],
                 ["bad.json [0] (SNS-1) lines[0]: product_code is missing"],
                 id="product-code-missing"),
    pytest.param([contract_doc("SNS-1", lines=[{"product_code": "VS-ENT", "quantity": 0}])],
                 ["bad.json [0] (SNS-1) lines[0]: quantity must be greater than zero"],
                 id="zero-quantity"),
    pytest.param([contract_doc("SNS-1", lines=[{"product_code": "VS-ENT", "quantity": 1.5}])],
                 ["bad.json [0] (SNS-1) lines[0]: quantity 1.5 is not a whole number"],
                 id="fractional-quantity"),
    # Larger than the database integer: refused before writing, not a driver error.
    pytest.param([contract_doc("SNS-1", lines=[{"product_code": "VS-ENT",
                                                "quantity": 3_000_000_000}])],
                 ["bad.json [0] (SNS-1) lines[0]: quantity", "too large"],
                 id="huge-quantity"),
    pytest.param([contract_doc("SNS-1", channel="reseller")],
                 ["bad.json [0] (SNS-1): channel 'reseller' is not one of direct, partner, oem"],
                 id="bad-channel"),
    pytest.param([contract_doc("SNS-1", channel="partner")],
                 ["bad.json [0] (SNS-1): partner is missing for a partner contract"],
                 id="partner-missing"),
    pytest.param([contract_doc("SNS-1", account={"name": "X", "country": "ZZ"})],
                 ["bad.json [0] (SNS-1): account.country 'ZZ' is not an ISO 3166-1"],
                 id="bad-country"),
    pytest.param([contract_doc("SNS-1", contacts=[{"email": "not-an-address"}])],
                 ["bad.json [0] (SNS-1) contacts[0]: email 'not-an-address' is not an email"],
                 id="bad-email"),
    # Two mailboxes to a mail server: the envelope would get "x", the To: header the spy.
    pytest.param([contract_doc("SNS-1", contacts=[{"email": "x,spy@evil.example"}])],
                 ["bad.json [0] (SNS-1) contacts[0]: email 'x,spy@evil.example' is not an "
                  "email address"], id="address-list"),
    pytest.param([contract_doc("SNS-1", contacts=[{"email": "Eva <eva@muster.example>"}])],
                 ["contacts[0]: email 'Eva <eva@muster.example>' is not an email address"],
                 id="display-name"),
    pytest.param([contract_doc("SNS-1", contacts=[{"email": "eva@muster.example\nBcc: a@b.example"}])],
                 ["contacts[0]: email", "control character"], id="header-injection"),
    pytest.param([contract_doc("SNS-1", account={"name": "Nul\u0000GmbH", "country": "DE"})],
                 ["bad.json [0] (SNS-1): account.name", "control character"], id="nul-byte"),
    pytest.param({"number": "SNS-1"}, ["bad.json: must be a JSON list of contracts"],
                 id="not-a-list"),
    pytest.param([], ["bad.json: no contracts"], id="empty"),
]


@pytest.mark.parametrize("data, fragments", CONTRACT_FAULTS)
def test_bad_contracts(emea, tmp_path, data, fragments):
    path = write_json(tmp_path / "bad.json", data)
    assert_fails_unchanged(lambda: emea("import", "contracts", path), *fragments)
    assert contract("SNS-1") is None


def test_bad_json(emea, tmp_path):
    path = write_text(tmp_path / "bad.json", '[{"number": "SNS-1",]')
    assert_fails_unchanged(lambda: emea("import", "contracts", path),
                           "bad.json: not valid JSON (line 1:")


def test_a_bad_contract_leaves_the_good_ones_out(emea, tmp_path):
    # The first contract would change SNS-004711; the second is bad: nothing changes.
    good = contract_doc(end_date="2030-01-01")
    path = write_json(tmp_path / "bad.json", [good, contract_doc("SNS-2", price_list="NOPE")])
    assert_fails_unchanged(lambda: emea("import", "contracts", path), "price list NOPE")
    assert contract("SNS-004711").end_date == date(2026, 11, 30)


# --- demo ---


def test_demo_is_idempotent(cli):
    first = cli("demo")
    assert first.exit_code == 0, first.output
    rows = table_rows()
    second = cli("demo")
    assert second.exit_code == 0, second.output
    again = table_rows()
    audited, earlier = again.pop("audit_entry"), rows.pop("audit_entry")
    assert len(new_rows(earlier, audited)) == 1 and len(audited) == len(earlier) + 1
    assert again == rows
    assert len(rows["contract"]) == 17
    for number in (f"SNS-1000{n:02d}" for n in range(1, 18)):
        assert number in first.stdout and number in second.stdout


def test_reimporting_an_unchanged_book_writes_nothing(emea, tmp_path):
    """Only what changed is written: an unchanged contract keeps its row and timestamp,
    a changed one is updated in place."""
    other = contract_doc(number="SNS-004712", end_date="2027-01-31",
                         account={"name": "Other AG", "country": "DE", "region": None},
                         contacts=[{"name": "Ola", "email": "ola@other.example"}])
    path = write_json(tmp_path / "book.json", [contract_doc(), other])
    assert emea("import", "contracts", path).exit_code == 0
    first, second = contract("SNS-004711"), contract("SNS-004712")
    stamps = {c.number: (c.id, c.updated_at, [line.id for line in c.lines])
              for c in (first, second)}
    db.session.execute(db.update(Contract).where(Contract.number == "SNS-004711")
                       .values(updated_at=date(2020, 1, 1)))
    db.session.expire_all()
    assert emea("import", "contracts", path).exit_code == 0
    assert contract("SNS-004711").updated_at.date() == date(2020, 1, 1)  # not touched
    changed = contract_doc(end_date="2027-11-30", lines=[{"product_code": "VS-ENT", "quantity": 5}])
    path = write_json(tmp_path / "changed.json", [changed, other])
    assert emea("import", "contracts", path).exit_code == 0
    item = contract("SNS-004711")
    assert item.updated_at.date() > date(2020, 1, 1) and item.end_date == date(2027, 11, 30)
    assert [(line.id, line.quantity) for line in item.lines] == [(stamps["SNS-004711"][2][0], 5)]
    assert contract("SNS-004712").id == stamps["SNS-004712"][0]


def test_a_book_with_a_byte_order_mark_and_many_batches_imports(emea, tmp_path):
    from portal.imports import contracts as importer

    docs = [contract_doc(number=f"SNS-9{n:05d}") for n in range(importer.BATCH + 5)]
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(docs).encode())
    result = emea("import", "contracts", str(path))
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(db.func.count()).select_from(Contract)
                             .where(Contract.number.like("SNS-9%"))) == importer.BATCH + 5


def test_a_fault_in_a_later_batch_leaves_the_earlier_ones_unwritten(emea, tmp_path):
    from portal.imports import contracts as importer

    docs = [contract_doc(number=f"SNS-8{n:05d}") for n in range(importer.BATCH + 2)]
    docs[-1]["end_date"] = "not a date"
    assert_fails_unchanged(
        lambda: emea("import", "contracts", write_json(tmp_path / "late.json", docs)),
        "end_date 'not a date' is not a date")
    assert contract("SNS-800000") is None
