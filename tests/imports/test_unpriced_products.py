"""A renewal book whose lines name products no price list prices (discontinued ones).

Such a line never stops the import of a book: its contract imports and quotes ``no_price``
(or an earlier reason of the eligibility table) with no options. The staff console, the
checkout page, the renewal notice and the partner API show such a contract without error.
Runs on SQLite and PostgreSQL through the ``cli`` fixture.
"""
import io
import json
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from portal.pricing.models import Product
from portal.contracts.models import Contract
from portal.extensions import db
from portal.links.services import issue_link
from portal.mail.models import OutboxMessage
from portal.notices.services import send_notices
from portal.partners.keys import ensure_partner, issue_key
from portal.renewals.services import current_quote
from tests.access import (  # noqa: F401 - fixtures
    _cheap_password_hashing,
    _fresh_rate_limits,
    bearer,
    email_text,
    post_form,
    sales,
    sales_user,
    today,
    web,
)
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
)

PRICE_ROWS = [
    ("EMEA-EUR", "EUR", "VS-ENT", "Vault Server Enterprise", "production", "12", "600.00"),
    ("EMEA-EUR", "EUR", "VS-ENT", "Vault Server Enterprise", "production", "36", "1620.00"),
    # BK-AGT is a known product, but priced on the JP list only.
    ("JP", "JPY", "BK-AGT", "Backup Agent", "basic", "12", "12800"),
]
#: On no price list at all: discontinued.
GONE = "OLD-AGT"


def doc(number, account, end, lines, **overrides):
    return contract_doc(
        number,
        account={"name": account, "country": "DE", "region": None},
        contacts=[{"name": "Eva", "email": f"eva@{account.lower()}.example", "language": "en",
                   "primary": True}],
        start_date=(end - timedelta(days=364)).isoformat(), end_date=end.isoformat(),
        lines=[{"product_code": code, "quantity": quantity} for code, quantity in lines],
        **overrides,
    )


def book_docs(today):
    end = today + timedelta(days=45)
    return [
        doc("SNS-7001", "Alpha", end, [("VS-ENT", 4)]),
        doc("SNS-7002", "Beta", end, [("VS-ENT", 2), (GONE, 3)]),
        doc("SNS-7003", "Gamma", end, [(GONE, 1)], channel="oem"),
        doc("SNS-7004", "Delta", end, [(GONE, 1), ("BK-AGT", 5)], channel="partner",
            partner="NORTHWIND"),
        doc("SNS-7005", "Epsilon", end, [(GONE, 2)], service_level="business_critical"),
        doc("SNS-7006", "Zeta", today - timedelta(days=400), [(GONE, 2)]),
    ]


#: number -> (eligible, reason, lines) expected once the book is in.
EXPECTED = {
    "SNS-7001": (True, None, [("VS-ENT", 4)]),
    "SNS-7002": (False, "no_price", [("VS-ENT", 2), (GONE, 3)]),
    "SNS-7003": (False, "oem", [(GONE, 1)]),  # an earlier reason wins
    "SNS-7004": (False, "no_price", [(GONE, 1), ("BK-AGT", 5)]),
    "SNS-7005": (False, "level_not_online", [(GONE, 2)]),
    "SNS-7006": (False, "lapsed_too_long", [(GONE, 2)]),
}


@pytest.fixture
def priced(cli, tmp_path, today):
    """Price lists and a fresh USD rate, imported; no contracts yet."""
    for kind, path in (
        ("pricelists", write_csv(tmp_path / "pricelists.csv", PRICELIST_HEADER, PRICE_ROWS)),
        ("rates", write_csv(tmp_path / "rates.csv", RATES_HEADER,
                            [("USD", "1.0861", (today - timedelta(days=1)).isoformat())])),
    ):
        result = cli("import", kind, path)
        assert result.exit_code == 0, result.output
    return cli


@pytest.fixture
def book(priced, tmp_path, today):
    """The book, imported: returns its file."""
    path = write_json(tmp_path / "book.json", book_docs(today))
    result = priced("import", "contracts", path)
    assert result.exit_code == 0, result.output
    return path


def contract(number):
    return db.session.scalar(select(Contract).where(Contract.number == number))


def quote_json(cli, number, today):
    result = cli("quote", number, "--date", today.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- the import ---


def test_a_discontinued_line_does_not_stop_the_book(priced, tmp_path, today):
    before = row_counts()
    path = write_json(tmp_path / "book.json", book_docs(today))
    result = priced("import", "contracts", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"contracts: 6 imported from {path}"
    after = row_counts()
    for table, added in (("contract", 6), ("contract_line", 8), ("account", 6), ("contact", 6),
                         ("partner", 1), ("product", 1), ("audit_entry", 1)):
        assert after.pop(table) == before.pop(table) + added, table
    assert after == before
    # The discontinued product gets a row named after its code; known products keep theirs.
    assert db.session.get(Product, GONE).name == GONE
    assert db.session.get(Product, "BK-AGT").name == "Backup Agent"
    assert db.session.get(Product, "VS-ENT").name == "Vault Server Enterprise"
    for number, (_eligible, _reason, lines) in EXPECTED.items():
        item = contract(number)
        assert [(line.product_code, line.quantity) for line in item.lines] == lines, number
        assert item.price_list.code == "EMEA-EUR" and item.currency == "EUR"
    item = contract("SNS-7004")
    assert (item.channel, item.partner.code, item.account.name) == (
        "partner", "NORTHWIND", "Delta")
    assert (item.end_date - item.start_date).days == 364
    assert contract("SNS-7005").service_level == "business_critical"


def test_each_contract_quotes_by_the_eligibility_table(book, cli, today):
    for number, (eligible, reason, _lines) in EXPECTED.items():
        document = quote_json(cli, number, today)
        assert (document["contract"], document["eligible"], document["reason"]) == (
            number, eligible, reason), number
        assert document["currency"] == "EUR" and document["payment"] is None
        if eligible:
            # 4 x 600.00 production 12; 4 x 1620.00 production 36
            assert [(o["service_level"], o["term_months"], o["total"])
                    for o in document["options"]] == [
                ("production", 12, "2400.00"), ("production", 36, "6480.00")]
        else:
            assert document["options"] == [], number  # nothing can be priced


def test_plain_quote_output(book, cli, today):
    result = cli("quote", "SNS-7002", "--date", today.isoformat())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"SNS-7002 quoted {today.isoformat()} in EUR: not eligible (no_price)")


def test_choosing_an_option_of_an_unpriced_contract_is_a_clean_error(book, cli, today):
    assert_fails_unchanged(
        lambda: cli("quote", "SNS-7002", "--date", today.isoformat(), "--pay-currency", "EUR",
                    "--json"),
        "SNS-7002: no renewal option production / 12 months")


def test_no_price_needs_no_exchange_rate(cli, tmp_path, today):
    # Without any USD rate, a priced contract cannot be quoted, but an unpriced one can.
    path = write_csv(tmp_path / "p.csv", PRICELIST_HEADER, PRICE_ROWS)
    assert cli("import", "pricelists", path).exit_code == 0
    path = write_json(tmp_path / "book.json", book_docs(today))
    assert cli("import", "contracts", path).exit_code == 0
    document = quote_json(cli, "SNS-7002", today)
    assert (document["eligible"], document["reason"], document["options"]) == (
        False, "no_price", [])


def test_reimporting_the_book_changes_nothing(book, cli, today):
    rows = table_rows()
    quotes = {number: quote_json(cli, number, today) for number in EXPECTED}
    result = cli("import", "contracts", book)
    assert result.exit_code == 0, result.output
    again = table_rows()
    audited, earlier = again.pop("audit_entry"), rows.pop("audit_entry")
    assert len(new_rows(earlier, audited)) == 1 and len(audited) == len(earlier) + 1
    assert again == rows
    assert db.session.get(Product, GONE).name == GONE
    for number, (_eligible, _reason, lines) in EXPECTED.items():
        assert [(line.product_code, line.quantity) for line in contract(number).lines] == lines
        assert quote_json(cli, number, today) == quotes[number]


def test_a_later_price_list_names_and_prices_the_product(book, cli, tmp_path, today):
    rows = [("EMEA-EUR", "EUR", GONE, "Old Agent", "production", "12", "50.00")]
    result = cli("import", "pricelists", write_csv(tmp_path / "more.csv", PRICELIST_HEADER, rows))
    assert result.exit_code == 0, result.output
    assert db.session.get(Product, GONE).name == "Old Agent"
    document = quote_json(cli, "SNS-7002", today)
    # 2 x 600.00 + 3 x 50.00; no 36-month price for OLD-AGT, so 12 months only
    assert (document["eligible"], document["reason"]) == (True, None)
    assert [(o["term_months"], o["total"]) for o in document["options"]] == [(12, "1350.00")]
    # Importing the book again does not rename the product back to its code.
    assert cli("import", "contracts", book).exit_code == 0
    assert db.session.get(Product, GONE).name == "Old Agent"


@pytest.mark.parametrize("bad, fragments", [
    (dict(lines=[{"product_code": "NEW-GONE", "quantity": 0}]),
     ["(SNS-7999) lines[0]: quantity must be greater than zero"]),
    (dict(lines=[{"product_code": "NEW-GONE", "quantity": 1},
                 {"product_code": "NEW-GONE", "quantity": 2}]),
     ["(SNS-7999) lines[1]: product_code NEW-GONE appears twice"]),
    (dict(price_list="NOPE"), ["(SNS-7999): price list NOPE does not exist"]),
    (dict(end_date="2026-02-30"), ["(SNS-7999): end_date '2026-02-30' is not a date"]),
])
def test_other_faults_still_refuse_the_whole_book(book, cli, tmp_path, today, bad, fragments):
    # A new contract with a new unpriced product, then a bad one: nothing is written, not
    # even the new product row.
    good = doc("SNS-7998", "Eta", today + timedelta(days=45), [("NEW-GONE", 1)])
    wrong = {**doc("SNS-7999", "Theta", today + timedelta(days=45), [("VS-ENT", 1)]), **bad}
    path = write_json(tmp_path / "bad.json", [good, wrong])
    assert_fails_unchanged(lambda: cli("import", "contracts", path), *fragments)
    assert db.session.get(Product, "NEW-GONE") is None
    assert contract("SNS-7998") is None


# --- the pages, the notice and the partner API ---


def test_staff_console_shows_and_requotes_the_contract(book, sales, today):
    quote = current_quote(contract("SNS-7002"), today)
    assert (quote.eligible, quote.reason, quote.document["quote"]["options"]) == (
        False, "no_price", [])
    response = sales.get("/staff/contracts/SNS-7002")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert GONE in page and "no_price" in page
    assert f'name="qty-{GONE}"' not in page  # only products of the price list are quotable
    # Dropping the discontinued product gives a quote the customer can pay online.
    response = post_form(sales, "/staff/contracts/SNS-7002/quote", {"qty-VS-ENT": "2"})
    assert response.status_code == 303
    page = sales.get("/staff/contracts/SNS-7002").get_data(as_text=True)
    assert "New quote issued" in page and "1200.00 EUR" in page


def test_checkout_page_says_no_price(book, web):
    item = contract("SNS-7002")
    _link, token = issue_link(item, item.account.contacts[0], purpose="test")
    assert web.get(f"/r/{token}").status_code == 303
    response = web.get("/renewal")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'data-reason="no_price"' in page
    assert f'data-product="{GONE}"' in page and "Vault Server Enterprise" in page
    assert "data-amount-due" not in page and 'name="place"' not in page
    assert 'action="/renewal/change-request"' in page


def test_renewal_notice_lists_the_discontinued_product(book, today):
    report = send_notices(today)  # 45 days before the end: the 60-day notice
    assert report.errors == {}
    sent = {number for number, _milestone, _recipients in report.sent}
    assert {"SNS-7001", "SNS-7002", "SNS-7004", "SNS-7005"} <= sent
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.contract_id == contract("SNS-7002").id))
    text = email_text(message)
    assert GONE in text and "no online price" in text
    parsed = message_from_bytes(message.mime, policy=email_policy.default)
    (attachment,) = list(parsed.iter_attachments())
    pdf = "\n".join(page.extract_text()
                    for page in PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert "SNS-7002" in pdf and GONE in pdf


def test_partner_api_reports_no_price(book, client):
    _row, key = issue_key(ensure_partner("NORTHWIND"))
    response = client.get("/api/partner/v1/contracts/SNS-7004", headers=bearer(key))
    assert response.status_code == 200
    assert response.get_json()["renewal"] == {
        "eligible": False, "reason": "no_price", "state": "not_online", "open_order": None}
    listed = client.get("/api/partner/v1/contracts", headers=bearer(key)).get_json()
    assert [(c["number"], c["renewal"]["reason"]) for c in listed["contracts"]] == [
        ("SNS-7004", "no_price")]
