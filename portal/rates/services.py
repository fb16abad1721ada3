"""The exchange-rate store: history in, the rates in force on a date out."""
from functools import cache

from sqlalchemy import bindparam, func, select

from portal import logs
from portal.audit.models import record
from portal.dataversion import VersionedCache
from portal.extensions import db
from portal.money import EURO_LEGACY
from portal.rates import providers
from portal.rates.models import ExchangeRate
from portal.renewals.rules import Rate, RateTable


#: Rate tables read under a version token of the rates (``portal.dataversion``): a few
#: quote dates are asked for again and again (the dates of the open quotes).
RATE_TABLES = VersionedCache(size=64)


def rate_table(quote_date, version=None):
    """A ``RateTable`` with, for each currency, the latest rate dated on or before the date.
    ``version``: the rates' version token read in the caller's statement; the table read
    under the same token before is used again (a ``RateTable`` is never changed)."""
    return RATE_TABLES.get(version, quote_date, lambda: _read_rate_table(quote_date))


def _read_rate_table(quote_date):
    rows = db.session.execute(rates_in_force(), {"quote_date": quote_date})
    return RateTable(quote_date, [Rate(c, per_eur, as_of) for c, per_eur, as_of in rows])


@cache
def rates_in_force():
    """For each currency its latest rate dated on or before ``:quote_date``; built once
    (every quote page reads it, and building a statement costs more than running it)."""
    latest = (
        select(ExchangeRate.currency, func.max(ExchangeRate.as_of).label("as_of"))
        .where(ExchangeRate.as_of <= bindparam("quote_date"))
        .group_by(ExchangeRate.currency)
        .subquery()
    )
    return select(ExchangeRate.currency, ExchangeRate.per_eur, ExchangeRate.as_of).join(
        latest,
        (ExchangeRate.currency == latest.c.currency) & (ExchangeRate.as_of == latest.c.as_of),
    )


def upsert_rates(rates, source):
    """Insert or replace ``Rate`` values; returns how many were written. No commit."""
    written = 0
    for rate in rates:
        if rate.currency == "EUR" or rate.currency in EURO_LEGACY:
            continue  # fixed by definition, never stored
        row = db.session.scalar(
            select(ExchangeRate).where(
                ExchangeRate.currency == rate.currency, ExchangeRate.as_of == rate.as_of
            )
        )
        if row is None:
            row = ExchangeRate(currency=rate.currency, as_of=rate.as_of)
            db.session.add(row)
        row.per_eur = rate.per_eur
        row.source = source
        written += 1
    return written


def refresh_rates(source, today, timeout, actor):
    """Fetch ``today``'s rates from the provider ``source`` and store them, committed.
    Returns ``(written, newest day, currencies not covered)``; raises
    ``providers.ProviderError`` when the provider fails (nothing is written then)."""
    provider = providers.provider(source, timeout=timeout)
    with logs.provider_call(source, "rates.fetch"):
        rates = provider.fetch(today)
    written = upsert_rates(rates, source=source)
    record(actor, "rates.refresh", source, written=written)
    db.session.commit()
    missing = sorted(set(providers.WANTED) - {r.currency for r in rates})
    return written, max(r.as_of for r in rates), missing
