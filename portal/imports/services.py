"""Importers for the formats of docs/interfaces.md ("Import formats"). All-or-nothing:
every row is checked before anything is written, and the caller commits only when the
whole file went in."""
import csv
import io
from decimal import Decimal

from sqlalchemy import select

from portal.pricing.models import PriceEntry, PriceList, Product
from portal.extensions import db
from portal.imports import contracts
from portal.imports import parsing as p
from portal.imports.parsing import ImportFault
from portal.money import EURO_LEGACY, MoneyError, parse_amount
from portal.rates.models import ExchangeRate
from portal.rates.services import upsert_rates
from portal.renewals.rules import Rate

PRICELIST_COLUMNS = (
    "price_list", "currency", "product_code", "product_name", "service_level",
    "term_months", "unit_price",
)
RATES_COLUMNS = ("currency", "per_eur", "as_of")


def read_text(path):
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ImportFault(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ImportFault(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise ImportFault(f"{path}: {error.strerror}") from None


def csv_rows(path, columns):
    """Yield ``(where, row)`` for each data row, after checking the header."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), strict=True)
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise ImportFault(f"{path}: header lacks column(s) {', '.join(missing)}")
    rows = []
    try:
        for row in reader:
            where = f"{path} row {reader.line_num}"
            if None in row or any(row.get(c) is None for c in columns):
                raise ImportFault(f"{where}: wrong number of fields")
            rows.append((where, row))
    except csv.Error as error:
        raise ImportFault(f"{path} row {reader.line_num}: {error}") from None
    if not rows:
        raise ImportFault(f"{path}: no data rows")
    return rows


# --- price lists ---


def import_pricelists(path):
    """Upsert price list entries; returns the number of entries written."""
    parsed = []
    seen = {}
    list_currency, list_row = {}, {}
    for where, row in csv_rows(path, PRICELIST_COLUMNS):
        code = p.text(row["price_list"], "price_list", where, max_length=32)
        currency = p.currency(row["currency"], "currency", where)
        known = list_currency.setdefault(code, currency)
        list_row.setdefault(code, where)
        if known != currency:
            raise ImportFault(f"{where}: currency {currency} differs from {known} of price list {code}")
        product = p.text(row["product_code"], "product_code", where, max_length=64)
        name = p.text(row["product_name"], "product_name", where)
        level = p.text(row["service_level"], "service_level", where, max_length=64)
        term = p.term_months(row["term_months"], where)
        p.decimal(row["unit_price"], "unit_price", where)  # a plain decimal, nothing else
        try:
            price = parse_amount(row["unit_price"].strip(), currency)
        except MoneyError as error:
            raise ImportFault(f"{where}: unit_price: {error}") from None
        p.fits_column(price, PriceEntry.__table__.c.unit_price, "unit_price", where)
        key = (code, product, level, term)
        if key in seen:
            raise ImportFault(f"{where}: duplicate of {seen[key]} for {code} {product} {level} {term}")
        seen[key] = where
        parsed.append((code, currency, product, name, level, term, price))

    lists = {}
    for code, currency in list_currency.items():
        price_list = db.session.scalar(select(PriceList).where(PriceList.code == code))
        if price_list is None:
            price_list = PriceList(code=code, currency=currency)
            db.session.add(price_list)
        elif price_list.currency != currency:
            raise ImportFault(f"{list_row[code]}: currency {currency} differs from "
                              f"{price_list.currency} of price list {code}")
        lists[code] = price_list
    db.session.flush()
    for code, _currency, product_code, name, level, term, price in parsed:
        product = db.session.get(Product, product_code)
        if product is None:
            db.session.add(Product(code=product_code, name=name))
        else:
            product.name = name
        db.session.flush()
        price_list = lists[code]
        entry = db.session.scalar(
            select(PriceEntry).where(
                PriceEntry.price_list_id == price_list.id,
                PriceEntry.product_code == product_code,
                PriceEntry.service_level == level,
                PriceEntry.term_months == term,
            )
        )
        if entry is None:
            entry = PriceEntry(price_list_id=price_list.id, product_code=product_code,
                               service_level=level, term_months=term)
            db.session.add(entry)
        entry.unit_price = price
    db.session.flush()
    return len(parsed)


# --- rates ---


def import_rates(path):
    rates = []
    seen = {}
    for where, row in csv_rows(path, RATES_COLUMNS):
        currency = p.currency(row["currency"], "currency", where)
        per_eur = p.decimal(row["per_eur"], "per_eur", where)
        if per_eur <= 0:
            raise ImportFault(f"{where}: per_eur must be greater than zero")
        p.fits_column(per_eur, ExchangeRate.__table__.c.per_eur, "per_eur", where)
        fixed = Decimal(1) if currency == "EUR" else EURO_LEGACY.get(currency)
        if fixed is not None and per_eur != fixed:
            raise ImportFault(f"{where}: {currency} is fixed at {fixed} per EUR, not {per_eur}")
        as_of = p.iso_date(row["as_of"], "as_of", where)
        key = (currency, as_of)
        if key in seen:
            raise ImportFault(f"{where}: duplicate of {seen[key]} for {currency} on {as_of}")
        seen[key] = where
        rates.append(Rate(currency, per_eur, as_of))
    written = upsert_rates(rates, source="import")
    db.session.flush()
    return written


# --- contracts ---

# At book scale, streamed and set-based: portal/imports/contracts.py.
import_contracts = contracts.import_contracts
upsert_contracts = contracts.upsert_contracts
