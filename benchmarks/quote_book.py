"""Quote a whole book of contracts with the pure renewal rules.

Generates a book of N contracts (default 100,000) in a SQLite file database under a temporary
directory, then loads every contract with its lines, the price lists, the launch dates and the
open orders in a handful of bulk queries, builds one ``RateTable`` for the quote date and
calls ``rules.quote`` for each contract. Prints the time of each phase, quotes per second
and the peak memory of the quoting process.

    python benchmarks/quote_book.py [--contracts N] [--seed S] [--tracemalloc]

The book is generated in a child process, so the peak memory printed is the quoting's own.
"""
import argparse
import multiprocessing
import random
import resource
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

from sqlalchemy import insert, select

from portal import create_app
from portal.pricing.models import PriceEntry, PriceList
from portal.contracts.models import Account, Contract, ContractLine
from portal.extensions import db
from portal.imports.services import import_pricelists
from portal.markets.models import MarketLaunch
from portal.markets.services import seed_launch_dates
from portal.orders.models import Order
from portal.rates.models import ExchangeRate
from portal.rates.services import rate_table
from portal.renewals import rules
from portal.renewals.services import RENEWED_UNTIL_DAYS_BEFORE_END
from portal.timeutil import utc_today

#: Price list code -> countries whose accounts buy from it (the demo price lists).
MARKETS = {
    "US": ("US", "CA"), "EMEA-EUR": ("DE", "FR", "NL", "IT"), "UK": ("GB",), "JP": ("JP",),
    "KR": ("KR",), "BR": ("BR",), "BALTIC-LVL": ("LV",),
}
#: Units per 1 EUR, stored for the day before the quote date.
RATES = {"USD": "1.0861", "GBP": "0.8412", "JPY": "162.35", "KRW": "1459.20", "BRL": "6.0692"}
LEVELS = (("basic", 60), ("production", 37), ("business_critical", 3))
CHANNELS = (("direct", 88), ("partner", 10), ("oem", 2))
QUANTITIES = (1, 1, 1, 1, 2, 2, 2, 3, 4, 5, 8, 10)
BATCH = 20_000


def app_for(path):
    return create_app({"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "benchmark"})


def insert_batches(model, rows):
    for start in range(0, len(rows), BATCH):
        db.session.execute(insert(model.__table__), rows[start:start + BATCH])


def generate(path, contracts, seed, today):
    """Create the schema and a book of ``contracts`` contracts in the SQLite file ``path``."""
    rng = random.Random(seed)
    app = app_for(path)
    with app.app_context():
        db.create_all()
        seed_launch_dates()
        with resources.as_file(
            resources.files("portal.demo").joinpath("data/pricelists.csv")
        ) as csv_path:
            import_pricelists(str(csv_path))
        insert_batches(ExchangeRate, [
            {"currency": code, "per_eur": Decimal(value), "as_of": today - timedelta(days=1),
             "source": "benchmark"} for code, value in RATES.items()])
        lists = {pl.code: pl.id for pl in db.session.scalars(select(PriceList))}
        products = defaultdict(set)
        for list_id, product in db.session.execute(
            select(PriceEntry.price_list_id, PriceEntry.product_code)
        ):
            products[list_id].add(product)
        products = {list_id: sorted(codes) for list_id, codes in products.items()}

        # Draw every random column at once: much faster than per-contract calls.
        markets = rng.choices(list(MARKETS), k=contracts)
        channels = rng.choices(*zip(*CHANNELS), k=contracts)
        levels = rng.choices(*zip(*LEVELS), k=contracts)
        terms = rng.choices((12, 36), k=contracts)
        ends = rng.choices(range(-420, 401), k=contracts)
        quantities = iter(rng.choices(QUANTITIES, k=contracts * 3))
        accounts, rows, lines = [], [], []
        for number, code, channel, level, term, offset in zip(
            range(1, contracts + 1), markets, channels, levels, terms, ends
        ):
            list_id = lists[code]
            accounts.append({"id": number, "name": f"Account {number:06d}",
                             "country": rng.choice(MARKETS[code])})
            end = today + timedelta(days=offset)
            rows.append({
                "id": number, "number": f"SNS-{number:06d}", "account_id": number,
                "channel": channel, "price_list_id": list_id, "service_level": level,
                "term_months": term, "start_date": end - timedelta(days=364), "end_date": end,
                "status": "cancelled" if rng.random() < 0.01 else "active",
            })
            offered = products[list_id]
            for product in rng.sample(offered, rng.randint(1, len(offered))):
                lines.append({"contract_id": number, "product_code": product,
                              "quantity": next(quantities)})
        for model, batch in ((Account, accounts), (Contract, rows), (ContractLine, lines)):
            insert_batches(model, batch)
        db.session.commit()
        return len(lines)


def load_book(today):
    """Everything the rules need for every contract, in bulk: ``(facts, prices by list)``."""
    prices = defaultdict(dict)
    currency = {}
    for list_id, list_currency, product, level, term, price in db.session.execute(
        select(PriceList.id, PriceList.currency, PriceEntry.product_code,
               PriceEntry.service_level, PriceEntry.term_months, PriceEntry.unit_price)
        .join(PriceEntry, PriceEntry.price_list_id == PriceList.id)
    ):
        prices[list_id][(product, level, term)] = price
        currency[list_id] = list_currency
    launches = {country: day for country, day in db.session.execute(
        select(MarketLaunch.country, MarketLaunch.launch_date))}

    lines = defaultdict(list)
    for contract_id, product, quantity in db.session.execute(
        select(ContractLine.contract_id, ContractLine.product_code, ContractLine.quantity)
        .order_by(ContractLine.contract_id, ContractLine.id)
    ):
        lines[contract_id].append(rules.Line(product, quantity))

    # ``already_renewed`` as renewals.services decides it, for the whole book at once.
    awaiting = set(db.session.scalars(
        select(Order.contract_id).where(Order.status == "awaiting_payment")))
    paid_until = defaultdict(set)
    for contract_id, term_end in db.session.execute(
        select(Order.contract_id, Order.term_end).where(Order.status == "paid")
    ):
        paid_until[contract_id].add(term_end)

    book = []
    for (contract_id, number, channel, level, end, status, list_id, country) in db.session.execute(
        select(Contract.id, Contract.number, Contract.channel, Contract.service_level,
               Contract.end_date, Contract.status, Contract.price_list_id, Account.country)
        .join(Account, Account.id == Contract.account_id)
        .order_by(Contract.id)
    ):
        renewed = end in paid_until.get(contract_id, ()) and (
            (end - today).days > RENEWED_UNTIL_DAYS_BEFORE_END)
        book.append((rules.ContractFacts(
            number=number, channel=channel, service_level=level, end_date=end,
            currency=currency[list_id], lines=tuple(lines[contract_id]),
            launch_date=launches.get(country), cancelled=status == "cancelled",
            renewal_in_progress=contract_id in awaiting or renewed,
        ), list_id))
    return book, prices


def quote_book(path, today, trace):
    app = app_for(path)
    with app.app_context():
        settings = rules.Settings.from_config(app.config)
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        book, prices = load_book(today)
        rates = rate_table(today)
        loaded = time.perf_counter()
        reasons = Counter()
        options = 0
        for facts, list_id in book:
            result = rules.quote(facts, prices[list_id], rates, today, settings)
            reasons[result.reason or "eligible"] += 1
            options += len(result.options)
        done = time.perf_counter()
        traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
        db.session.remove()
    return len(book), options, reasons, loaded - started, done - loaded, traced_peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also report the Python heap peak (slows quoting down)")
    args = parser.parse_args(argv)
    today = utc_today()
    with tempfile.TemporaryDirectory(prefix="quote-book-") as tmp:
        path = Path(tmp) / "book.db"
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            line_count = pool.apply(generate, (str(path), args.contracts, args.seed, today))
        generated = time.perf_counter() - started
        count, options, reasons, load_s, quote_s, traced = quote_book(path, today, args.tracemalloc)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"book: {count:,} contracts, {line_count:,} lines, generated in {generated:.1f} s")
    print(f"quote date: {today.isoformat()}; {options:,} options priced")
    print(f"load (bulk queries + facts): {load_s:.2f} s")
    print(f"quote (rules.quote x {count:,}): {quote_s:.2f} s = {count / quote_s:,.0f} quotes/s")
    print(f"load + quote: {load_s + quote_s:.2f} s = {count / (load_s + quote_s):,.0f} quotes/s")
    print(f"peak RSS of the quoting process: {peak_rss_mib:,.0f} MiB")
    if traced is not None:
        print(f"peak Python heap while loading and quoting (tracemalloc): "
              f"{traced / 2**20:,.0f} MiB")
    print("outcome: " + ", ".join(f"{reason} {n:,}" for reason, n in reasons.most_common()))


if __name__ == "__main__":
    main()
