"""Contract imports at book scale: batches, the numbers seen so far in a temporary table,
and on PostgreSQL the COPY staging path (portal/imports/staging.py), which must write
exactly what the set-based path writes. Runs on SQLite and PostgreSQL."""
from datetime import datetime

import pytest
from sqlalchemy import select

from portal.contracts.models import Account, Contact, Contract, ContractLine, Partner
from portal.extensions import db
from portal.imports import contracts as importer
from portal.imports.parsing import ImportFault
from portal.pricing.models import Product
from tests.imports.helpers import (
    PRICELIST_HEADER,
    assert_fails_unchanged,
    contract_doc,
    write_csv,
    write_json,
)

PRICES = [("EMEA-EUR", "EUR", "VS-ENT", "Vault Server Enterprise", "production", "12", "600.00"),
          ("US", "USD", "VS-ENT", "Vault Server Enterprise", "basic", "12", "450.00")]
LONG_AGO = datetime(2020, 1, 1)


@pytest.fixture
def priced(cli, tmp_path):
    assert cli("import", "pricelists",
               write_csv(tmp_path / "prices.csv", PRICELIST_HEADER, PRICES)).exit_code == 0
    return cli


@pytest.fixture
def small_batches(monkeypatch):
    """Three contracts a batch, so that a short book spans several."""
    monkeypatch.setattr(importer, "BATCH", 3)


def contact(email, name="", **flags):
    return {"email": email, "name": name, **flags}


def book():
    """Partners new and shared, an account named by several contracts (its region and a
    shared contact changing on the way: the last word wins), products no price list
    prices, and text that COPY must escape (a backslash, ``\\N``, a tab-like ``\\t``)."""
    muster = {"name": "Muster GmbH", "country": "DE", "region": None}
    docs = {doc["number"]: doc for doc in [
        contract_doc("SNS-1", account=muster,
                     contacts=[contact("eva@muster.example", "Eva", primary=True),
                               contact("max@muster.example", "Max", renewals=False)]),
        contract_doc("SNS-2", channel="partner", partner="ZETA",
                     account={**muster, "region": "DE-BY"},
                     contacts=[contact("max@muster.example", "Max M.", language="de")],
                     lines=[{"product_code": "VS-ENT", "quantity": 2},
                            {"product_code": "OLD-B", "quantity": 1}]),
        contract_doc("SNS-3", channel="partner", partner="ALPHA",
                     account={"name": "Back\\slash \\N Ltd", "country": "US", "region": None},
                     contacts=[contact("it@backslash.example", "\\N")],
                     price_list="US", service_level="basic",
                     lines=[{"product_code": "OLD-A", "quantity": 3}]),
        contract_doc("SNS-4", channel="partner", partner="ZETA", status="cancelled",
                     account={"name": "Ünïcode Sàrl \\t", "country": "FR", "region": None},
                     contacts=[contact("a@unicode.example"), contact("b@unicode.example")]),
        contract_doc("SNS-5", account={**muster, "region": "DE-BE"},
                     contacts=[contact("eva@muster.example", "Eva Muster", primary=True),
                               contact("max@muster.example", "Max Muster")],
                     end_date="2027-11-30"),
    ]}
    # In batches of three, SNS-2 and SNS-5 share a batch: the last word wins inside one
    # batch as it does across batches.
    return [docs[number] for number in ("SNS-1", "SNS-3", "SNS-4", "SNS-2", "SNS-5")]


def changed_book():
    """The book again, with changes of every kind and two new contracts."""
    docs = book()
    by_number = {doc["number"]: doc for doc in docs}
    by_number["SNS-1"]["lines"] = [{"product_code": "VS-ENT", "quantity": 7}]
    by_number["SNS-2"]["lines"] = [{"product_code": "OLD-C", "quantity": 1}]  # OLD-B gone
    by_number["SNS-3"]["account"]["region"] = "US-NY"
    by_number["SNS-4"]["contacts"][1]["renewals"] = False
    by_number["SNS-5"]["end_date"] = "2028-11-30"
    docs.append(contract_doc("SNS-6", channel="partner", partner="MIDDLE",
                             account={"name": "New Co", "country": "GB", "region": None},
                             contacts=[contact("new@newco.example", language="en-GB")]))
    docs.append(contract_doc("SNS-7", account={"name": "Muster GmbH", "country": "DE",
                                               "region": "DE-BY"}))
    return docs


def book_state():
    """Every imported row by its natural keys (ids differ between runs), each table in
    id order (so new rows must come in the same order), and which contracts changed."""
    accounts = {a.id: (a.name, a.country) for a in db.session.scalars(select(Account))}
    numbers = {c.id: c.number for c in db.session.scalars(select(Contract))}
    partners = {p.id: p.code for p in db.session.scalars(select(Partner))}
    by_id = lambda model: db.session.scalars(select(model).order_by(model.id))  # noqa: E731
    return {
        "partner": [(p.code, p.name) for p in by_id(Partner)],
        "product": sorted((p.code, p.name) for p in db.session.scalars(select(Product))),
        "account": [(a.name, a.country, a.region) for a in by_id(Account)],
        "contact": [(accounts[c.account_id], c.email, c.name, c.language, c.primary,
                     c.renewals) for c in by_id(Contact)],
        "contract": [(c.number, accounts[c.account_id], partners.get(c.partner_id),
                      c.channel, c.price_list.code, c.service_level, c.term_months,
                      c.start_date, c.end_date, c.status, c.updated_at != LONG_AGO)
                     for c in by_id(Contract)],
        "contract_line": [(numbers[line.contract_id], line.product_code, line.quantity)
                          for line in by_id(ContractLine)],
    }


def import_twice():
    """Import the book, mark every contract as untouched, import the changed book."""
    importer.upsert_contracts(book(), "book")
    db.session.execute(db.update(Contract).values(updated_at=LONG_AGO))
    first = book_state()
    importer.upsert_contracts(changed_book(), "changed")
    return first, book_state()


def test_both_ways_of_writing_give_the_same_rows(priced, backend, small_batches, monkeypatch):
    if backend != "postgresql":
        pytest.skip("the COPY staging path is PostgreSQL's")
    savepoint = db.session.begin_nested()
    staged = import_twice()
    savepoint.rollback()
    monkeypatch.setattr(importer, "StagedBatches", importer.SetBasedBatches)
    set_based = import_twice()
    assert staged == set_based
    first, second = staged
    assert first["partner"] == [("ALPHA", "ALPHA"), ("ZETA", "ZETA")]
    assert ("MIDDLE", "MIDDLE") in second["partner"]
    assert first["account"][0] == ("Muster GmbH", "DE", "DE-BE")  # the last word
    assert first["account"][1] == ("Back\\slash \\N Ltd", "US", None)
    assert ((("Muster GmbH", "DE"), "max@muster.example", "Max Muster", None, False, True)
            in first["contact"])
    assert (("Back\\slash \\N Ltd", "US"), "it@backslash.example", "\\N", None, True,
            True) in first["contact"]
    changed = {row[0] for row in second["contract"] if row[-1]}
    assert changed == {"SNS-5", "SNS-6", "SNS-7"}  # new lines alone do not touch SNS-1, 2
    assert ("SNS-2", "OLD-C", 1) in second["contract_line"]
    assert ("SNS-2", "OLD-B", 1) not in second["contract_line"]


def test_reimporting_an_unchanged_book_writes_no_row(priced, backend):
    """PostgreSQL counts the rows a transaction inserted, updated and deleted."""
    if backend != "postgresql":
        pytest.skip("the row counters are PostgreSQL's")
    importer.upsert_contracts(changed_book(), "book")
    tables = ("partner", "product", "account", "contact", "contract", "contract_line")
    count = ("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"
             " WHERE relname IN :tables")
    statement = db.text(count).bindparams(db.bindparam("tables", expanding=True))
    before = dict(db.session.execute(statement, {"tables": tables}).all())
    changed = changed_book()
    changed[0]["end_date"] = "2027-12-31"
    importer.upsert_contracts(changed, "book")  # the counters see a change
    once = dict(db.session.execute(statement, {"tables": tables}).all())
    assert once == {**before, "contract": before["contract"] + 1}
    importer.upsert_contracts(changed, "book")
    assert dict(db.session.execute(statement, {"tables": tables}).all()) == once


def test_the_import_leaves_no_temporary_table_or_setting_behind(priced, backend):
    importer.upsert_contracts(book(), "book")
    if backend == "postgresql":
        assert db.session.scalar(db.text(
            "SELECT count(*) FROM pg_class WHERE relpersistence = 't'"
            " AND relname LIKE 'import%'")) == 0
        assert db.session.execute(db.text(
            "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
        )).one() == ("on", "on")
    else:
        assert db.session.scalar(db.text(
            "SELECT count(*) FROM sqlite_temp_master WHERE name LIKE 'import%'")) == 0
    importer.upsert_contracts(book(), "book")  # and it can run again in the transaction


def test_a_number_repeated_in_a_later_batch_is_refused(priced, tmp_path, small_batches):
    docs = [contract_doc(f"SNS-{n}") for n in range(8)] + [contract_doc("SNS-1")]
    path = write_json(tmp_path / "twice.json", docs)
    assert_fails_unchanged(lambda: priced("import", "contracts", path),
                           "twice.json [8] (SNS-1): duplicate contract number, also at [1]")


def test_the_first_fault_of_a_batch_is_named_whatever_its_kind(priced, small_batches):
    """A number of an earlier batch before a bad row of the same batch: the number."""
    docs = [contract_doc(f"SNS-{n}") for n in range(3)]
    docs += [contract_doc("SNS-0"), contract_doc("SNS-9", end_date="never")]
    with pytest.raises(ImportFault, match=r"^book \[3\] \(SNS-0\): duplicate contract "
                                          r"number, also at \[0\]$"):
        importer.upsert_contracts(docs, "book")
    db.session.rollback()
    docs[3] = contract_doc("SNS-3")
    with pytest.raises(ImportFault, match=r"^book \[4\] \(SNS-9\): end_date 'never'"):
        importer.upsert_contracts(docs, "book")
    db.session.rollback()


def test_a_fault_found_while_writing_comes_before_a_later_batchs(priced, small_batches):
    """The number repeated in the second batch is found while that batch is written (on
    PostgreSQL in a second thread, while the third is parsed): it is the one named."""
    docs = [contract_doc(f"SNS-{n}") for n in range(3)]
    docs += [contract_doc("SNS-3"), contract_doc("SNS-1"), contract_doc("SNS-5")]
    docs += [contract_doc("SNS-6", end_date="never")]
    with pytest.raises(ImportFault, match=r"^book \[4\] \(SNS-1\): duplicate contract "
                                          r"number, also at \[1\]$"):
        importer.upsert_contracts(docs, "book")
    db.session.rollback()
