"""``portal import contracts FILE.json`` at book scale (docs/interfaces.md, "Import
formats").

The file is read as a stream (one contract at a time, never the whole list in memory)
and written in batches with set-based statements that write only what changed:
re-importing an unchanged book reads and compares, and writes nothing. On PostgreSQL a
batch goes through COPY into staging tables and is merged by a few joins
(portal/imports/staging.py); on other databases one query per table finds what a batch
already has and one statement per table writes the difference. All-or-nothing still
holds: the whole file is one transaction, which the caller commits only when every
contract went in, and rolls back on the first fault.
"""
import json
from itertools import islice

import ijson
from sqlalchemy import bindparam, delete, insert, select, tuple_, update

from portal.pricing.models import PriceList, Product
from portal.contracts.models import Account, Contact, Contract, ContractLine, Partner
from portal.extensions import db
from portal.imports import parsing as p
from portal.imports.parsing import ImportFault
from portal.imports.staging import (CONTRACT_FIELDS, SEEN_NUMBERS, SeenNumbers,
                                    StagedBatches)
from portal.renewals.rules import CHANNELS

CONTRACT_STATUSES = ("active", "cancelled")
#: Contracts written per batch: large enough for few round trips, small enough that the
#: lookups' IN lists stay well within every database's limits.
BATCH = 1000
CONTACT_FIELDS = ("name", "language", "primary", "renewals")


def import_contracts(path):
    """Upsert the contracts of a JSON file; returns the number of contracts written."""
    try:
        with open(path, "rb") as handle:
            return upsert_contracts(_stream(handle, path), path)
    except FileNotFoundError:
        raise ImportFault(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFault(f"{path}: is a directory") from None
    except UnicodeDecodeError:
        raise ImportFault(f"{path}: not UTF-8 text") from None
    except ijson.JSONError as error:
        raise ImportFault(f"{path}: not valid JSON ({_json_reason(path, error)})") from None


def _stream(handle, path):
    """Yield each element of the top-level JSON list, refusing any other document."""
    head = handle.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()  # a byte order mark is fine
    if not head:
        raise ImportFault(f"{path}: not valid JSON (the file is empty)")
    if not head.startswith(b"["):
        raise ImportFault(f"{path}: must be a JSON list of contracts")
    handle.seek(0)
    if handle.read(3) != b"\xef\xbb\xbf":
        handle.seek(0)
    yield from ijson.items(handle, "item", use_float=True)


def _json_reason(path, error):
    """Where the document breaks, as ``line N: what``. The streaming parser does not
    count lines, so a broken file (only then) is read once more by the standard one."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            json.load(handle)
    except json.JSONDecodeError as decoded:
        return f"line {decoded.lineno}: {decoded.msg}"
    except (OSError, UnicodeDecodeError):
        pass
    return str(error).splitlines()[0][:120] or "unexpected end of file"


def upsert_contracts(contracts, path):
    """Check and write contracts (an iterable of decoded JSON objects, e.g. a list or a
    stream); ``path`` names the source in errors. Returns the number written.

    Memory stays flat however long the book: one batch at a time is parsed, staged,
    checked and written, and the numbers of the batches before it wait in a temporary
    table (portal/imports/staging.py) to refuse a number the file repeats."""
    price_lists = dict(db.session.execute(select(PriceList.code, PriceList.id)).all())
    on_postgresql = db.session.connection().dialect.name == "postgresql"
    book = StagedBatches() if on_postgresql else SetBasedBatches()
    count = 0
    items = iter(contracts)
    while batch := list(islice(items, BATCH)):
        parsed, fault = _parse_batch(batch, count, path, price_lists)
        book.stage(parsed)
        earlier = book.earlier_numbers()
        # The first fault in file order: a number an earlier batch had, else the parser's.
        for contract in parsed:
            if contract["number"] in earlier:
                raise ImportFault(f"{contract['where']}: duplicate contract number, "
                                  f"also at [{earlier[contract['number']]}]")
        if fault:
            raise fault
        book.write()
        count += len(parsed)
    if not count:
        raise ImportFault(f"{path}: no contracts")
    book.drop()
    db.session.expire_all()  # objects loaded before the import see the new rows
    return count


def _parse_batch(batch, start, path, price_lists):
    """``(contracts, fault)``: the batch's contracts parsed in file order up to the first
    fault (``None`` when there is none). ``start`` is the first one's place in the file."""
    parsed, here = [], {}
    for position, raw in enumerate(batch, start):
        try:
            contract = _parse_contract(raw, f"{path} [{position}]")
            if contract["number"] in here:
                raise ImportFault(f"{contract['where']}: duplicate contract number, "
                                  f"also at [{here[contract['number']]}]")
            if contract["price_list"] not in price_lists:
                raise ImportFault(f"{contract['where']}: price list "
                                  f"{contract['price_list']} does not exist")
        except ImportFault as fault:
            return parsed, fault
        here[contract["number"]] = position
        contract["position"] = position
        contract["price_list_id"] = price_lists[contract["price_list"]]
        parsed.append(contract)
    return parsed, None


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
    contacts = _parse_contacts(raw.get("contacts"), where)
    price_list = p.text(raw.get("price_list"), "price_list", where, max_length=32)
    level = p.text(raw.get("service_level"), "service_level", where, max_length=64)
    term = p.term_months(raw.get("term_months"), where)
    start = p.iso_date(raw.get("start_date"), "start_date", where)
    end = p.iso_date(raw.get("end_date"), "end_date", where)
    if end < start:
        raise ImportFault(f"{where}: end_date {end} is before start_date {start}")
    status = p.text(raw.get("status"), "status", where, required=False) or "active"
    if status not in CONTRACT_STATUSES:
        raise ImportFault(f"{where}: status {status!r} is not one of "
                          f"{', '.join(CONTRACT_STATUSES)}")
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


def _parse_contacts(contacts_raw, where):
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
        flags = {}
        for flag, default in (("primary", False), ("renewals", True)):
            flags[flag] = contact.get(flag, default)
            if not isinstance(flags[flag], bool):
                raise ImportFault(f"{at}: {flag} must be true or false")
        contacts.append({
            "name": p.text(contact.get("name"), "name", at, required=False) or "",
            "email": address,
            "language": p.text(contact.get("language"), "language", at, max_length=16,
                               required=False),
            **flags,
        })
    if not any(c["primary"] for c in contacts):
        contacts[0]["primary"] = True
    return contacts


# --- writing one batch, on any database ---


class SetBasedBatches(SeenNumbers):
    """Any database: one query per table finds what a batch already has; only what
    changed is then inserted, updated or deleted, each with one statement for all its
    rows."""

    def stage(self, contracts):
        self.contracts = contracts

    def earlier_numbers(self):
        numbers = SEEN_NUMBERS.c.number
        return dict(db.session.execute(
            select(numbers, SEEN_NUMBERS.c.position)
            .where(numbers.in_([c["number"] for c in self.contracts]))).all())

    def write(self):
        _write_batch(self.contracts)
        _write(insert(SEEN_NUMBERS), [{"number": c["number"], "position": c["position"]}
                                      for c in self.contracts])


def _write_batch(contracts):
    partners = _ensure_partners({c["partner"] for c in contracts if c["partner"]})
    accounts = _ensure_accounts(contracts)
    _sync_contacts(contracts, accounts)
    _add_unpriced_products({code for c in contracts for code in c["lines"]})
    ids = _sync_contracts(contracts, accounts, partners)
    _sync_lines(contracts, ids)


def _ensure_partners(codes):
    """``{code: id}``, adding the partners not seen before (named after their code)."""
    if not codes:
        return {}
    found = dict(db.session.execute(
        select(Partner.code, Partner.id).where(Partner.code.in_(codes))).all())
    missing = sorted(codes - found.keys())
    if missing:
        _write(insert(Partner.__table__), [{"code": c, "name": c} for c in missing])
        found.update(db.session.execute(
            select(Partner.code, Partner.id).where(Partner.code.in_(missing))).all())
    return found


def _ensure_accounts(contracts):
    """``{(name, country): id}``; a new account is added, a changed region updated (the
    file's last word on an account wins)."""
    wanted = {}
    for contract in contracts:
        account = contract["account"]
        wanted[(account["name"], account["country"])] = account["region"]
    keys = list(wanted)
    rows = db.session.execute(
        select(Account.name, Account.country, Account.id, Account.region)
        .where(tuple_(Account.name, Account.country).in_(keys))).all()
    ids = {(name, country): id_ for name, country, id_, _region in rows}
    changed = [{"id": id_, "region": wanted[(name, country)]}
               for name, country, id_, region in rows if region != wanted[(name, country)]]
    if changed:
        _update_by_id(Account, changed)
    missing = [key for key in keys if key not in ids]
    if missing:
        _write(insert(Account.__table__), [
            {"name": name, "country": country, "region": wanted[(name, country)]}
            for name, country in missing])
        ids.update(((name, country), id_) for name, country, id_ in db.session.execute(
            select(Account.name, Account.country, Account.id)
            .where(tuple_(Account.name, Account.country).in_(missing))).all())
    return ids


def _sync_contacts(contracts, accounts):
    """Add new contacts of each account, update changed ones (by email); contacts the
    file does not name are kept."""
    wanted = {}
    for contract in contracts:
        account_id = accounts[(contract["account"]["name"], contract["account"]["country"])]
        for contact in contract["contacts"]:
            wanted[(account_id, contact["email"])] = contact
    existing = {(row.account_id, row.email): row for row in db.session.execute(
        select(Contact.id, Contact.account_id, Contact.email, *map(_column(Contact),
                                                                   CONTACT_FIELDS))
        .where(Contact.account_id.in_({account_id for account_id, _ in wanted})))}
    new, changed = [], []
    for (account_id, email), contact in wanted.items():
        row = existing.get((account_id, email))
        values = {field: contact[field] for field in CONTACT_FIELDS}
        if row is None:
            new.append({"account_id": account_id, "email": email, **values})
        elif any(getattr(row, field) != value for field, value in values.items()):
            changed.append({"id": row.id, **values})
    if new:
        _write(insert(Contact.__table__), new)
    if changed:
        _update_by_id(Contact, changed)


def _add_unpriced_products(codes):
    """A line may name a product no price list prices (a discontinued one is normal in a
    renewal book): its contract imports and quotes ``no_price``. Lines refer to the product
    table, so such a code gets a product row named after the code; a later price list
    import that prices it gives it its real name. Existing products are left as they are."""
    known = set(db.session.scalars(select(Product.code).where(Product.code.in_(codes))))
    missing = sorted(codes - known)
    if missing:
        _write(insert(Product.__table__), [{"code": c, "name": c} for c in missing])


def _sync_contracts(contracts, accounts, partners):
    """Insert new contracts and update changed ones; returns ``{number: id}``."""
    wanted = {}
    for contract in contracts:
        wanted[contract["number"]] = {
            "account_id": accounts[(contract["account"]["name"],
                                    contract["account"]["country"])],
            "partner_id": partners.get(contract["partner"]),
            "price_list_id": contract["price_list_id"],
            **{field: contract[field] for field in CONTRACT_FIELDS
               if field not in ("account_id", "partner_id", "price_list_id")},
        }
    rows = db.session.execute(
        select(Contract.id, Contract.number, *map(_column(Contract), CONTRACT_FIELDS))
        .where(Contract.number.in_(wanted))).all()
    ids = {row.number: row.id for row in rows}
    changed = [{"id": row.id, **wanted[row.number]} for row in rows
               if any(getattr(row, f) != v for f, v in wanted[row.number].items())]
    if changed:
        _update_by_id(Contract, changed)
    missing = [number for number in wanted if number not in ids]
    if missing:
        _write(insert(Contract.__table__), [{"number": n, **wanted[n]} for n in missing])
        ids.update(db.session.execute(
            select(Contract.number, Contract.id).where(Contract.number.in_(missing))).all())
    return ids


def _sync_lines(contracts, ids):
    """Make each contract's lines exactly the file's: add, change quantities, remove."""
    wanted = {(ids[c["number"]], code): quantity
              for c in contracts for code, quantity in c["lines"].items()}
    existing = {(row.contract_id, row.product_code): row for row in db.session.execute(
        select(ContractLine.id, ContractLine.contract_id, ContractLine.product_code,
               ContractLine.quantity)
        .where(ContractLine.contract_id.in_(set(ids.values()))))}
    gone = [row.id for key, row in existing.items() if key not in wanted]
    if gone:
        _write(delete(ContractLine.__table__).where(ContractLine.__table__.c.id.in_(gone)))
    new = [{"contract_id": contract_id, "product_code": code, "quantity": quantity}
           for (contract_id, code), quantity in wanted.items()
           if (contract_id, code) not in existing]
    if new:
        _write(insert(ContractLine.__table__), new)
    changed = [{"id": existing[key].id, "quantity": quantity}
               for key, quantity in wanted.items()
               if key in existing and existing[key].quantity != quantity]
    if changed:
        _update_by_id(ContractLine, changed)


def _write(statement, rows=None):
    """A Core INSERT, UPDATE or DELETE on the session's connection; with ``rows``, one
    statement for all of them (executemany)."""
    return db.session.connection().execute(statement, rows)


def _update_by_id(model, rows):
    """One UPDATE of the given columns for many rows, each ``{"id": ..., column: value}``
    (every row names the same columns)."""
    table = model.__table__
    columns = [name for name in rows[0] if name != "id"]
    statement = (update(table).where(table.c.id == bindparam("row_id"))
                 .values({name: bindparam(f"new_{name}") for name in columns}))
    _write(statement, [{"row_id": row["id"], **{f"new_{n}": row[n] for n in columns}}
                       for row in rows])


def _column(model):
    return lambda name: getattr(model, name)
