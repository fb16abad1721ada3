"""Helpers for command-line tests: import files in tmp_path, table contents, one-line errors."""
import csv
import json

from sqlalchemy import func, select

from portal.extensions import db

PRICELIST_HEADER = ("price_list", "currency", "product_code", "product_name", "service_level",
                    "term_months", "unit_price")
RATES_HEADER = ("currency", "per_eur", "as_of")


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def write_json(path, data):
    return write_text(path, json.dumps(data))


def contract_doc(number="SNS-004711", **overrides):
    """The contract of the docs/interfaces.md example, with overrides."""
    doc = {
        "number": number, "channel": "direct", "partner": None,
        "account": {"name": "Muster GmbH", "country": "DE", "region": None},
        "contacts": [{"name": "Eva Muster", "email": "eva@muster.example", "language": "de",
                      "primary": True}],
        "price_list": "EMEA-EUR", "service_level": "production", "term_months": 12,
        "start_date": "2025-12-01", "end_date": "2026-11-30",
        "lines": [{"product_code": "VS-ENT", "quantity": 4}],
    }
    doc.update(overrides)
    return doc


def row_counts():
    """``{table: rows}`` for every table of the schema."""
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def assert_one_line_error(result, *fragments):
    """The command failed cleanly (no traceback) with one error line holding ``fragments``."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def table_rows():
    """``{table: rows}`` for every table of the schema, each row with all its values, in
    an order that does not depend on the database."""
    db.session.flush()
    return {
        table.name: sorted((tuple(row) for row in db.session.execute(select(table))), key=repr)
        for table in db.metadata.sorted_tables
    }


def new_rows(before, after):
    """Rows of ``after`` that ``before`` (rows of the same table) does not hold, as they are."""
    known = {repr(row) for row in before}
    return [row for row in after if repr(row) not in known]


def assert_fails_unchanged(invoke, *fragments):
    """Run ``invoke()``; it must fail with one error line and leave every row of every
    table as it was: none added or removed, no value changed."""
    before = table_rows()
    line = assert_one_line_error(invoke(), *fragments)
    after = table_rows()
    for name, rows in before.items():
        assert after[name] == rows, f"table {name} changed"
    return line
