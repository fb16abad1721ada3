"""Importers for the formats of docs/interfaces.md ("Import formats"). All-or-nothing:
every row is checked before anything is written, and the caller commits only when the
whole file went in."""
import csv
import io
import json
from decimal import Decimal

from sqlalchemy import select

from portal.catalog.models import PriceEntry, PriceList, Product
from portal.contracts.models import Account, Contact, Contract, ContractLine, Partner
from portal.extensions import db
from portal.imports import parsing as p
from portal.imports.parsing import ImportFault
from portal.money import EURO_LEGACY, MoneyError, parse_amount
from portal.rates.models import ExchangeRate
from portal.rates.services import upsert_rates
from portal.renewals.rules import CHANNELS, TERMS, Rate

PRICELIST_COLUMNS = (
    "price_list", "currency", "product_code", "product_name", "service_level",
    "term_months", "unit_price",
)
RATES_COLUMNS = ("currency", "per_eur", "as_of")
CONTRACT_STATUSES = ("active", "cancelled")


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
        term = _term(row["term_months"], where)
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


def _term(value, where):
    term = p.positive_int(value, "term_months", where)
    if term not in TERMS:
        raise ImportFault(f"{where}: term_months {term} is not one of "
                          f"{', '.join(map(str, TERMS))}")
    return term


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


def _object(value, where):
    if not isinstance(value, dict):
        raise ImportFault(f"{where}: must be a JSON object")
    return value


def _parse_contract(raw, where):
    raw = _object(raw, where)
    number = p.text(raw.get("number"), "number", where, max_length=64)
    where = f"{where} ({number})"
    channel = p.text(raw.get("channel"), "channel", where, max_length=16)
    if channel not in CHANNELS:
        raise ImportFault(f"{where}: channel {channel!r} is not one of {', '.join(CHANNELS)}")
    partner = p.text(raw.get("partner"), "partner", where, max_length=64, required=False)
    if channel == "partner" and partner is None:
        raise ImportFault(f"{where}: partner is missing for a partner contract")
    account = _object(raw.get("account"), f"{where} account")
    account_fields = {
        "name": p.text(account.get("name"), "account.name", where),
        "country": p.country(account.get("country"), "account.country", where),
        "region": p.text(account.get("region"), "account.region", where, max_length=6,
                         required=False),
    }
    region = account_fields["region"]
    if region and not p.REGION.match(region):
        raise ImportFault(f"{where}: account.region {region!r} is not ISO 3166-2")
    if region and region.split("-")[0] != account_fields["country"]:
        raise ImportFault(f"{where}: account.region {region!r} is not in account.country "
                          f"{account_fields['country']}")
    contacts_raw = raw.get("contacts")
    if not isinstance(contacts_raw, list) or not contacts_raw:
        raise ImportFault(f"{where}: contacts must be a non-empty list")
    contacts = []
    emails = set()
    for index, contact in enumerate(contacts_raw):
        at = f"{where} contacts[{index}]"
        contact = _object(contact, at)
        address = p.email(contact.get("email"), "email", at)
        if address in emails:
            raise ImportFault(f"{at}: email {address} appears twice")
        emails.add(address)
        primary = contact.get("primary", False)
        if not isinstance(primary, bool):
            raise ImportFault(f"{at}: primary must be true or false")
        renewals = contact.get("renewals", True)
        if not isinstance(renewals, bool):
            raise ImportFault(f"{at}: renewals must be true or false")
        contacts.append({
            "name": p.text(contact.get("name"), "name", at, required=False) or "",
            "email": address,
            "language": p.text(contact.get("language"), "language", at, max_length=16,
                               required=False),
            "primary": primary,
            "renewals": renewals,
        })
    if not any(c["primary"] for c in contacts):
        contacts[0]["primary"] = True
    price_list = p.text(raw.get("price_list"), "price_list", where, max_length=32)
    level = p.text(raw.get("service_level"), "service_level", where, max_length=64)
    term = _term(raw.get("term_months"), where)
    start = p.iso_date(raw.get("start_date"), "start_date", where)
    end = p.iso_date(raw.get("end_date"), "end_date", where)
    if end < start:
        raise ImportFault(f"{where}: end_date {end} is before start_date {start}")
    status = p.text(raw.get("status"), "status", where, required=False) or "active"
    if status not in CONTRACT_STATUSES:
        raise ImportFault(f"{where}: status {status!r} is not one of {', '.join(CONTRACT_STATUSES)}")
    lines_raw = raw.get("lines")
    if not isinstance(lines_raw, list) or not lines_raw:
        raise ImportFault(f"{where}: lines must be a non-empty list")
    lines = {}
    for index, line in enumerate(lines_raw):
        at = f"{where} lines[{index}]"
        line = _object(line, at)
        code = p.text(line.get("product_code"), "product_code", at, max_length=64)
        if code in lines:
            raise ImportFault(f"{at}: product_code {code} appears twice")
        lines[code] = p.positive_int(line.get("quantity"), "quantity", at)
    return {
        "number": number, "channel": channel, "partner": partner, "account": account_fields,
        "contacts": contacts, "price_list": price_list, "service_level": level,
        "term_months": term, "start_date": start, "end_date": end, "status": status,
        "lines": lines, "where": where,
    }


def import_contracts(path):
    """Upsert accounts, contacts, partners, contracts and lines; returns contracts written."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ImportFault(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    return upsert_contracts(data, path)


def upsert_contracts(data, path):
    """Check then write a decoded contracts list; ``path`` names it in errors."""
    if not isinstance(data, list):
        raise ImportFault(f"{path}: must be a JSON list of contracts")
    if not data:
        raise ImportFault(f"{path}: no contracts")
    parsed = []
    numbers = {}
    for index, raw in enumerate(data):
        contract = _parse_contract(raw, f"{path} [{index}]")
        if contract["number"] in numbers:
            raise ImportFault(
                f"{contract['where']}: duplicate contract number, also at [{numbers[contract['number']]}]"
            )
        numbers[contract["number"]] = index
        parsed.append(contract)

    price_lists = {pl.code: pl for pl in db.session.scalars(select(PriceList))}
    for contract in parsed:
        if contract["price_list"] not in price_lists:
            raise ImportFault(f"{contract['where']}: price list {contract['price_list']} does not exist")

    _add_unpriced_products({code for contract in parsed for code in contract["lines"]})
    for contract in parsed:
        _write_contract(contract, price_lists[contract["price_list"]])
    db.session.flush()
    return len(parsed)


def _add_unpriced_products(codes):
    """A line may name a product no price list prices (a discontinued one is normal in a
    renewal book): its contract imports and quotes ``no_price``. Lines refer to the product
    table, so such a code gets a product row named after the code; a later price list
    import that prices it gives it its real name. Existing products are left as they are."""
    known = set(db.session.scalars(select(Product.code)))
    for code in sorted(codes - known):
        db.session.add(Product(code=code, name=code))
    db.session.flush()


def _partner(code):
    if code is None:
        return None
    partner = db.session.scalar(select(Partner).where(Partner.code == code))
    if partner is None:
        partner = Partner(code=code, name=code)
        db.session.add(partner)
        db.session.flush()
    return partner


def _account(fields):
    account = db.session.scalar(
        select(Account).where(Account.name == fields["name"], Account.country == fields["country"])
    )
    if account is None:
        account = Account(name=fields["name"], country=fields["country"])
        db.session.add(account)
    account.region = fields["region"]
    db.session.flush()
    return account


def _write_contract(fields, price_list):
    partner = _partner(fields["partner"])
    account = _account(fields["account"])
    by_email = {c.email: c for c in account.contacts}
    for contact_fields in fields["contacts"]:
        contact = by_email.get(contact_fields["email"])
        if contact is None:
            contact = Contact(email=contact_fields["email"])
            account.contacts.append(contact)
        contact.name = contact_fields["name"]
        contact.language = contact_fields["language"]
        contact.primary = contact_fields["primary"]
        contact.renewals = contact_fields["renewals"]
    contract = db.session.scalar(select(Contract).where(Contract.number == fields["number"]))
    if contract is None:
        contract = Contract(number=fields["number"])
    contract.account = account
    contract.partner = partner
    contract.channel = fields["channel"]
    contract.price_list = price_list
    contract.service_level = fields["service_level"]
    contract.term_months = fields["term_months"]
    contract.start_date = fields["start_date"]
    contract.end_date = fields["end_date"]
    contract.status = fields["status"]
    existing = {line.product_code: line for line in contract.lines}
    for code, line in existing.items():
        if code not in fields["lines"]:
            contract.lines.remove(line)
    for code, quantity in fields["lines"].items():
        line = existing.get(code)
        if line is None:
            contract.lines.append(ContractLine(product_code=code, quantity=quantity))
        else:
            line.quantity = quantity
    db.session.add(contract)
