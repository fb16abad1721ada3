"""Factories for test data: small, explicit, with defaults a test can override."""
from datetime import date
from decimal import Decimal
from itertools import count

from portal.pricing.models import PriceEntry, PriceList, Product
from portal.contracts.models import Account, Contact, Contract, ContractLine, Partner
from portal.extensions import db
from portal.markets.models import MarketLaunch
from portal.rates.models import ExchangeRate

_numbers = count(1)


def product(code="VS-ENT", name="Vault Server Enterprise"):
    existing = db.session.get(Product, code)
    if existing:
        return existing
    item = Product(code=code, name=name)
    db.session.add(item)
    db.session.flush()
    return item


def price_list(code="US", currency="USD", prices=None):
    """``prices``: ``{(product, level, term): "123.45"}``."""
    plist = PriceList(code=code, currency=currency)
    db.session.add(plist)
    db.session.flush()
    for (product_code, level, term), price in (prices or {}).items():
        product(product_code, product_code.title())
        db.session.add(PriceEntry(price_list_id=plist.id, product_code=product_code,
                                  service_level=level, term_months=term,
                                  unit_price=Decimal(price)))
    db.session.flush()
    return plist


def rate(currency, per_eur, as_of):
    row = ExchangeRate(currency=currency, per_eur=Decimal(per_eur),
                       as_of=date.fromisoformat(as_of) if isinstance(as_of, str) else as_of)
    db.session.add(row)
    db.session.flush()
    return row


def launch(country, launch_date="2013-06-10"):
    row = db.session.get(MarketLaunch, country)
    if row is None:
        row = MarketLaunch(country=country, launch_date=date.fromisoformat(launch_date))
        db.session.add(row)
    else:
        row.launch_date = date.fromisoformat(launch_date)
    db.session.flush()
    return row


def contract(plist, *, lines=(("VS-ENT", 1),), number=None, level="basic", term=12,
             end_date="2026-12-31", start_date=None, country="US", channel="direct",
             partner=None, status="active", email=None, language=None, region=None,
             account=None):
    """A contract of a new account with one primary contact, or of ``account``."""
    number = number or f"SNS-T{next(_numbers):05d}"
    if account is None:
        account = Account(name=f"Account {number}", country=country, region=region)
        account.contacts.append(Contact(name="Pat Buyer",
                                        email=email or f"buyer@{number.lower()}.example",
                                        language=language, primary=True))
    end = date.fromisoformat(end_date) if isinstance(end_date, str) else end_date
    start = start_date or date(end.year - 1, 1, 1)
    partner_row = None
    if partner:
        partner_row = Partner(code=partner, name=partner)
        db.session.add(partner_row)
    item = Contract(number=number, account=account, partner=partner_row, channel=channel,
                    price_list=plist, service_level=level, term_months=term,
                    start_date=start, end_date=end, status=status)
    for code, quantity in lines:
        product(code, code.title())
        item.lines.append(ContractLine(product_code=code, quantity=quantity))
    db.session.add(item)
    db.session.flush()
    return item
