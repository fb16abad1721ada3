"""Renewal notices on a book of 100,000 contracts on PostgreSQL.

Starts a throwaway PostgreSQL on loopback (tests/pgserver.py), fills it with a book of N
contracts (default 100,000), one contact each, whose end dates put ``--small`` (1,000)
notices due on one day and ``--large`` (10,000) on another, the rest spread outside both
windows. Then it times:

- ``send_notices`` on each of the two days, split into the scan for due contracts, the
  quote, the PDF, and the rest (record, link, rendering and staging the email, commits);
- a second ``send_notices`` on the same day (nothing left to do: the scan alone);
- ``drain`` of the staged email, PDF attached, to an aiosmtpd sink on loopback (emails/s).

With ``--workers 1,2`` it runs the ``--large`` day on Celery instead, once per worker
count: a throwaway Redis on loopback (tests/redisserver.py), that many worker processes
(tests/celeryworkers.py, solo pool, one task at a time each), the day's task queued once;
each notice is a task rendering its PDF in a worker and queuing its email's delivery to
the SMTP sink. It samples the queue depth and the counts every 5 s and reports notices/s
from queuing the day to the last email delivered, and the ratio between the runs. The
notice state (records, quotes, links, outbox) is emptied before each run.

    python benchmarks/notices_bench.py [--contracts N] [--small N] [--large N] [--write]
    python benchmarks/notices_bench.py --small 0 --workers 1,2

``--write`` appends the figures to benchmarks/README.md.
"""
import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal import create_app  # noqa: E402
from portal.pricing.models import PriceEntry, PriceList, Product  # noqa: E402
from portal.contracts.models import Account, Contact, Contract, ContractLine  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.mail import outbox  # noqa: E402
from portal.mail.models import OutboxMessage  # noqa: E402
from portal.markets.services import seed_launch_dates  # noqa: E402
from portal.notices import services  # noqa: E402
from portal.rates.models import ExchangeRate  # noqa: E402
from portal.celery_app import enqueue, queue_depth, workers_ready  # noqa: E402
from portal.notices.models import NoticeRecord  # noqa: E402
from portal.notices.tasks import send_day  # noqa: E402
from tests.celeryworkers import Workers  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402
from tests.redisserver import RedisServer  # noqa: E402
from tests.smtpsink import SmtpSink  # noqa: E402

SMALL_DAY = date(2027, 1, 4)
LARGE_DAY = date(2027, 6, 1)
BATCH = 10_000


def build_book(contracts, small, large):
    """Insert the book with bulk inserts; returns nothing, prints the time taken."""
    db.session.add(Product(code="VS-ENT", name="Vault Server Enterprise"))
    plist = PriceList(code="US", currency="USD")
    db.session.add(plist)
    db.session.flush()
    for level, term, price in (("basic", 12, "450.00"), ("basic", 36, "1215.00"),
                               ("production", 12, "600.00"), ("production", 36, "1620.00")):
        db.session.add(PriceEntry(price_list_id=plist.id, product_code="VS-ENT",
                                  service_level=level, term_months=term, unit_price=price))
    for day in (SMALL_DAY, LARGE_DAY):
        db.session.add(ExchangeRate(currency="USD", per_eur="1.0861", as_of=day - timedelta(days=1)))
    db.session.commit()

    def end_date(n):
        if n < small:  # the 60-day notice is due on SMALL_DAY
            return SMALL_DAY + timedelta(days=60)
        if n < small + large:  # the 30-day notice is due on LARGE_DAY (spread over 1 day)
            return LARGE_DAY + timedelta(days=30)
        # the rest: outside every window of both days (60 days ahead, and the lapsed
        # reminders up to REINSTATEMENT_MAX_LAPSE_DAYS back): from 2027-08-01 over the
        # following two years
        rest = n - small - large
        return date(2027, 8, 1) + timedelta(days=rest % 730)

    for first in range(0, contracts, BATCH):
        ids = range(first + 1, min(first + BATCH, contracts) + 1)
        db.session.execute(insert(Account), [
            {"id": i, "name": f"Account {i}", "country": "US"} for i in ids])
        db.session.execute(insert(Contact), [
            {"id": i, "account_id": i, "name": f"Buyer {i}", "email": f"buyer{i}@book.example",
             "primary": True, "renewals": True} for i in ids])
        db.session.execute(insert(Contract), [
            {"id": i, "number": f"SNS-{i:06d}", "account_id": i, "channel": "direct",
             "price_list_id": plist.id, "service_level": "basic", "term_months": 12,
             "start_date": end_date(i - 1) - timedelta(days=364), "end_date": end_date(i - 1),
             "status": "active"} for i in ids])
        db.session.execute(insert(ContractLine), [
            {"contract_id": i, "product_code": "VS-ENT", "quantity": 1 + i % 5} for i in ids])
        db.session.commit()
    for table in ("account", "contact", "contract", "contract_line"):
        if db.engine.dialect.name == "postgresql":  # SQLite numbers on from the largest id
            db.session.execute(db.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()


class Timer:
    """Accumulates the time spent in wrapped functions."""

    def __init__(self):
        self.spent = defaultdict(float)
        self.originals = []

    def wrap(self, owner, name, label):
        original = getattr(owner, name)
        self.originals.append((owner, name, original))

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] += time.perf_counter() - start

        setattr(owner, name, timed)

    def restore(self):
        for owner, name, original in self.originals:
            setattr(owner, name, original)


@contextmanager
def clock(results, label):
    start = time.perf_counter()
    yield
    results[label] = time.perf_counter() - start


def _proc_cpu(pid, reaped=False):
    """CPU seconds (user + system) of process ``pid`` from /proc, with ``reaped`` the
    time of its children that have ended too; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(value) for value in fields[11:15 if reaped else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(parent):
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                yield int(stat.parent.name)
        except (OSError, ValueError):
            pass


class CpuMeter:
    """CPU time used by each part of a run: the worker processes, PostgreSQL (the
    postmaster, its live backends and those that ended), Redis and this process (the
    SMTP sink and the sampling)."""

    def __init__(self, workers, postgres, redis):
        postmaster = Path(postgres.datadir, "postmaster.pid").read_text().split()[0]
        self.roles = {"workers": lambda: sum(_proc_cpu(p.pid) for p in workers.processes),
                      "PostgreSQL": lambda: _proc_cpu(int(postmaster), reaped=True) + sum(
                          _proc_cpu(pid) for pid in _children(int(postmaster))),
                      "Redis": lambda: _proc_cpu(redis.process.pid),
                      "benchmark (SMTP sink)": lambda: _proc_cpu(os.getpid())}
        self.start = self.read()

    def read(self):
        return {role: read() for role, read in self.roles.items()}

    def spent(self):
        """CPU seconds per role since the meter was made."""
        now = self.read()
        return {role: now[role] - self.start[role] for role in now}


def explain_scan(day):
    """The plan of the scan query for the 60-day window, to show it uses the end-date index."""
    milestone, fewest, most = services.WINDOWS[-1]
    query = select(Contract.id).where(Contract.end_date >= day + timedelta(days=fewest),
                                      Contract.end_date <= day + timedelta(days=most))
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    rows = db.session.execute(db.text(f"EXPLAIN {compiled}")).scalars()
    return " / ".join(line.strip() for line in rows)


def run_day(day, label, figures):
    timer = Timer()
    timer.wrap(services, "due_contracts", "scan")
    timer.wrap(services, "build_quote", "quote")
    timer.wrap(services, "quote_pdf", "pdf")
    timer.wrap(services, "stage_email", "stage email")
    try:
        start = time.perf_counter()
        report = services.send_notices(day)
        total = time.perf_counter() - start
    finally:
        timer.restore()
    spent = dict(timer.spent)
    spent["other (record, link, commit)"] = total - sum(spent.values())
    figures.append((label, len(report.sent), total, spent))
    print(f"{label}: {len(report.sent)} notices, {report.emails} emails in {total:.1f} s "
          f"({len(report.sent) / total:.1f} notices/s)")
    for part, seconds in spent.items():
        print(f"    {part:32s} {seconds:8.2f} s  {100 * seconds / total:5.1f} %")
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--write", action="store_true", help="append to benchmarks/README.md")
    parser.add_argument("--workers", default=None,
                        help="comma-separated worker counts: run the large day on Celery")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per worker run")
    args = parser.parse_args()
    if args.workers:
        return bench_workers(args)

    server = PostgresServer()
    if not server.available:
        sys.exit("PostgreSQL is not installed")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as instance:
            app = create_app({"DATABASE_URL": server.create_database("notices_bench"),
                              "SECRET_KEY": "benchmark", "OUTBOX_DIR": instance})
            with app.app_context():
                results = bench(app, args)
                db.engine.dispose()
    finally:
        server.stop()
    if args.write:
        write_readme(args, results)


def bench(app, args):
    db.create_all()
    seed_launch_dates()
    db.session.commit()
    results, figures = {}, []
    with clock(results, "build"):
        build_book(args.contracts, args.small, args.large)
    print(f"book of {args.contracts} contracts built in {results['build']:.1f} s")
    results["plan"] = explain_scan(SMALL_DAY)
    print("scan plan:", results["plan"])

    if args.small:
        run_day(SMALL_DAY, f"day with {args.small} notices due", figures)
        with clock(results, "rerun"):
            again = services.send_notices(SMALL_DAY)
        assert again.sent == []
        print(f"second run on the same day: {results['rerun'] * 1000:.0f} ms, nothing to send")

        with SmtpSink() as sink:
            app.config["SMTP_URL"] = sink.url
            staged = db.session.scalar(select(func.count(OutboxMessage.id)))
            size = db.session.scalar(select(func.avg(func.length(OutboxMessage.mime))))
            with clock(results, "drain"):
                counts = outbox.drain()
            assert counts["sent"] == staged == len(sink.handler.messages)
        results["drained"] = staged
        results["size"] = int(size)
        print(f"drain: {staged} emails ({results['size'] / 1024:.0f} KiB each, PDF included) in "
              f"{results['drain']:.1f} s = {staged / results['drain']:.0f} emails/s")

    if args.large:
        run_day(LARGE_DAY, f"day with {args.large} notices due", figures)
    results["figures"] = figures
    return results


def bench_workers(args):
    counts = [int(n) for n in args.workers.split(",")]
    server, redis = PostgresServer(), RedisServer()
    if not server.available or not redis.available:
        sys.exit("PostgreSQL and redis-server must be installed")
    server.start()
    redis.start()
    runs = []
    try:
        # BATCH_NICENESS 0: the workers' own speed, as on a machine only for workers
        # (at the default 10 they would give way to anything else running here)
        settings = {"DATABASE_URL": server.create_database("notices_bench"),
                    "SECRET_KEY": "benchmark", "CELERY_BROKER_URL": redis.url,
                    "BATCH_NICENESS": "0"}
        app = create_app({**settings, "BATCH_NICENESS": 0})
        with app.app_context(), SmtpSink() as sink:
            db.create_all()
            seed_launch_dates()
            db.session.commit()
            start = time.perf_counter()
            build_book(args.contracts, 0, args.large)
            print(f"book of {args.contracts} contracts built in {time.perf_counter() - start:.1f} s")
            pdf_times = pdf_sample(LARGE_DAY, 100)
            print(f"quote PDF of a due contract, rendered here: median "
                  f"{statistics.median(pdf_times):.1f} ms, p90 "
                  f"{statistics.quantiles(pdf_times, n=10)[-1]:.1f} ms ({len(pdf_times)} PDFs)")
            for count in counts:
                runs.append(worker_run(count, args, {**settings, "SMTP_URL": sink.url}, sink,
                                       server, redis))
            db.session.remove()
            db.engine.dispose()
    finally:
        redis.stop()
        server.stop()
    if len(runs) > 1:
        print(f"scaling: {runs[-1] / runs[0]:.2f}x from {counts[0]} to {counts[-1]} workers")


def pdf_sample(day, count):
    """Milliseconds per quote PDF for the first ``count`` contracts due on ``day``, in
    this process (the first one, which loads the fonts, not counted); nothing is stored."""
    timer = Timer()
    timer.wrap(services, "quote_pdf", "pdf")
    times = []
    try:
        for contract_id, end_date, milestone in services.due_contracts(day)[:count + 1]:
            before = timer.spent["pdf"]
            services.prepare_notice(contract_id, milestone, day, services.RunReport(), end_date)
            db.session.rollback()
            times.append((timer.spent["pdf"] - before) * 1000)
    finally:
        timer.restore()
    return times[1:]


def worker_run(count, args, settings, sink, server, redis):
    """The large day on ``count`` workers; returns notices/s."""
    db.session.execute(db.text(
        "TRUNCATE notice_record, outbox_message, renewal_link, quote CASCADE"))
    db.session.commit()
    delivered = set()  # Message-IDs only: 10,000 parsed emails would not fit in memory

    async def count_data(server, session, envelope):
        found = re.search(rb"^Message-ID:\s*(\S+)", envelope.content, re.M | re.I)
        delivered.add(found.group(1) if found else len(delivered))
        return "250 OK"

    sink.handler.handle_DATA = count_data
    samples = []
    with Workers(count, settings) as workers:
        deadline = time.monotonic() + 300
        while not workers_ready(count):  # the clock starts when every worker listens
            if time.monotonic() > deadline:
                sys.exit(f"workers did not start:\n{workers.output()[-3000:]}")
        meter = CpuMeter(workers, server, redis)
        start = time.perf_counter()
        enqueue(send_day, LARGE_DAY.isoformat())
        print(f"{count} worker(s): t(s)  queued  notices  delivered")
        while len(delivered) < args.large:
            if time.perf_counter() - start > args.timeout or not workers.alive():
                print(workers.output()[-3000:])
                sys.exit(f"stopped after {time.perf_counter() - start:.0f} s")
            time.sleep(5)
            notices = db.session.scalar(select(func.count(NoticeRecord.id)))
            db.session.rollback()
            samples.append((time.perf_counter() - start, queue_depth(), notices, len(delivered)))
            print("  {:7.0f}  {:6d}  {:7d}  {:9d}".format(*samples[-1]), flush=True)
        total = time.perf_counter() - start
        cpu = meter.spent()
    rate = args.large / total
    print(f"{count} worker(s): {args.large} notices with PDFs delivered in {total:.1f} s = "
          f"{rate:.1f} notices/s; deepest queue {max(s[1] for s in samples)} tasks")
    print("  CPU per notice: " + ", ".join(
        f"{role} {seconds * 1000 / args.large:.1f} ms" for role, seconds in cpu.items())
        + f"; all {sum(cpu.values()) * 1000 / args.large:.1f} ms"
        f" ({sum(cpu.values()) / total:.2f} cores busy on average)")
    return rate


def write_readme(args, results):
    lines = [
        "",
        "## Renewal notices (`benchmarks/notices_bench.py`)",
        "",
        f"A book of {args.contracts:,} contracts (one contact each) on PostgreSQL (throwaway "
        "server on loopback, fsync off), one process, WeasyPrint PDF per notice.",
        "",
        "| run | notices | seconds | notices/s | scan | quote | PDF | staging email | rest |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, sent, total, spent in results["figures"]:
        part = [spent.get(k, 0.0) for k in ("scan", "quote", "pdf", "stage email",
                                              "other (record, link, commit)")]
        lines.append(f"| {label} | {sent:,} | {total:.1f} | {sent / total:.1f} | "
                     + " | ".join(f"{p:.2f} s ({100 * p / total:.0f} %)" for p in part) + " |")
    if "rerun" not in results:
        lines += ["", f"- Scan plan (60-day window): `{results['plan']}`.", ""]
        readme = ROOT / "benchmarks" / "README.md"
        with readme.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines))
        return
    lines += [
        "",
        f"- A second run on the same day (nothing due any more) takes "
        f"{results['rerun'] * 1000:.0f} ms: the scan reads only contracts ending within 60 "
        "days, through the `contract.end_date` index, and skips those already noticed "
        "through the unique (contract, end date, milestone) index.",
        f"- Scan plan (60-day window): `{results['plan']}`.",
        f"- Delivery: {results['drained']:,} emails of {results['size'] / 1024:.0f} KiB (PDF "
        f"included) to an aiosmtpd sink on loopback in {results['drain']:.1f} s = "
        f"{results['drained'] / results['drain']:.0f} emails/s, one SMTP connection, one "
        "transaction per message.",
        "- Where the time goes: rendering the quote PDF with WeasyPrint dominates; the scan "
        "is a few milliseconds. Two runs at once stay correct but do not go faster: both walk "
        "the same list and the second waits on each contract the first is noticing.",
        "",
    ]
    readme = ROOT / "benchmarks" / "README.md"
    with readme.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
