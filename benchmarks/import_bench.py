"""Import a whole contract book the way the nightly ERP export does.

Writes a contracts.json of N contracts (default 100,000; each with an account, one or two
contacts and one to three lines, a few on discontinued products), then runs
``portal import contracts`` on it in a fresh process, on SQLite and on a throwaway
PostgreSQL server: first into an empty database, then again with the same file (nothing
changes), then with a file where 1 % of the contracts changed. Prints contracts per
second (wall clock, and the importing process's own CPU time, which a busy machine
disturbs less; on PostgreSQL also the CPU time of the server process that served the
import) and the peak memory (RSS) of each import process, and the peak memory of an
import of a book twice as long into an empty database, which shows whether memory
grows with the file.

    python benchmarks/import_bench.py [--contracts N] [--backends sqlite,postgresql]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pgserver import PostgresServer  # noqa: E402

MARKETS = {"US": ("US", "CA"), "EMEA-EUR": ("DE", "FR", "NL", "IT"), "UK": ("GB",),
           "JP": ("JP",), "KR": ("KR",), "BR": ("BR",)}
PRODUCTS = ("VS-ENT", "BK-AGT", "MON-CLD")


def book(count, seed=7, changed=0.0):
    """The contracts of a book; ``changed``: the share whose end date and quantities moved."""
    rng = random.Random(seed)
    moved = random.Random(seed + 1)
    lists = list(MARKETS)
    start = date(2026, 1, 1)
    for n in range(count):
        price_list = lists[n % len(lists)]
        country = MARKETS[price_list][n % len(MARKETS[price_list])]
        end = start + timedelta(days=rng.randrange(0, 730))
        lines = [{"product_code": code, "quantity": rng.choice((1, 2, 3, 5, 10))}
                 for code in rng.sample(PRODUCTS, rng.randint(1, 3))]
        if n % 997 == 0:
            lines.append({"product_code": f"OLD-{n % 13}", "quantity": 1})  # discontinued
        if changed and moved.random() < changed:
            end += timedelta(days=365)
            lines[0]["quantity"] += 1
        contacts = [{"name": f"Buyer {n}", "email": f"buyer{n}@customer{n}.example",
                     "language": None, "primary": True}]
        if n % 3 == 0:
            contacts.append({"name": f"Finance {n}", "email": f"ap{n}@customer{n}.example",
                             "primary": False})
        yield {"number": f"SNS-{n:07d}", "channel": "direct", "partner": None,
               "account": {"name": f"Customer {n} Ltd", "country": country, "region": None},
               "contacts": contacts, "price_list": price_list, "service_level": "basic",
               "term_months": 12, "start_date": (end - timedelta(days=364)).isoformat(),
               "end_date": end.isoformat(), "lines": lines}


def write_book(path, count, changed=0.0):
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n")
        for index, contract in enumerate(book(count, changed=changed)):
            out.write(("," if index else "") + json.dumps(contract) + "\n")
        out.write("]\n")


def child(database_url, path):
    """Run in a fresh process: import one file and report time and peak memory."""
    import resource

    from portal import create_app
    from portal.extensions import db
    from portal.imports.services import import_contracts

    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "benchmark"})
    with app.app_context():
        server = server_process(db.session)
        started, cpu_started = time.perf_counter(), time.process_time()
        server_started = cpu_seconds(server)
        count = import_contracts(path)
        db.session.commit()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        server_cpu = cpu_seconds(server) - server_started if server else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"count": count, "seconds": seconds, "cpu": cpu, "peak_mib": peak,
                      "server_cpu": server_cpu}))


def server_process(session):
    """The process id of the PostgreSQL backend serving this session, if any."""
    if session.connection().dialect.name != "postgresql":
        return None
    return session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()


def cpu_seconds(pid):
    """User and system CPU time of a process on this machine (from /proc), in seconds."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(database_url, path):
    result = subprocess.run([sys.executable, __file__, "--child", database_url, str(path)],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def prepare(database_url, workdir):
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "benchmark"}
    portal = [sys.executable, "-m", "portal.cli"]
    subprocess.run([*portal, "db", "upgrade"], env=env, check=True, cwd=workdir,
                   capture_output=True)
    prices = ROOT / "portal" / "demo" / "data" / "pricelists.csv"
    subprocess.run([*portal, "import", "pricelists", str(prices)], env=env, check=True,
                   cwd=workdir, capture_output=True)


def measure(backend, database_url, files, workdir):
    prepare(database_url, workdir)
    rows = []
    for label, path in (("empty database", files["full"]), ("same file again", files["full"]),
                        ("1 % changed", files["changed"])):
        figures = run_child(database_url, path)
        rows.append((backend, label, figures))
        server = (f", server's CPU {figures['server_cpu']:.1f} s"
                  if figures["server_cpu"] is not None else "")
        print(f"{backend:10} {label:16} {figures['count']:>8} contracts "
              f"{figures['seconds']:7.1f} s {figures['count'] / figures['seconds']:8.0f}/s "
              f"(importer's CPU {figures['cpu']:.1f} s{server}) "
              f"peak {figures['peak_mib']:.0f} MiB", flush=True)
    return rows


def measure_memory(backend, database_url, files, workdir):
    """Peak memory of importing the book twice as long, into an empty database."""
    prepare(database_url, workdir)
    figures = run_child(database_url, files["double"])
    print(f"{backend:10} {'twice the book':16} {figures['count']:>8} contracts "
          f"{figures['seconds']:7.1f} s {figures['count'] / figures['seconds']:8.0f}/s "
          f"peak {figures['peak_mib']:.0f} MiB", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        workdir = Path(tmp)
        files = {"full": workdir / "book.json", "changed": workdir / "book-changed.json",
                 "double": workdir / "book-double.json"}
        write_book(files["full"], args.contracts)
        write_book(files["changed"], args.contracts, changed=0.01)
        write_book(files["double"], 2 * args.contracts)
        size = files["full"].stat().st_size / 2**20
        print(f"book: {args.contracts} contracts, {size:.0f} MiB of JSON", flush=True)
        backends = args.backends.split(",")
        if "sqlite" in backends:
            measure("sqlite", f"sqlite:///{workdir / 'book.db'}", files, workdir)
            measure_memory("sqlite", f"sqlite:///{workdir / 'double.db'}", files, workdir)
        if "postgresql" in backends:
            server = PostgresServer()
            server.start()
            try:
                measure("postgresql", server.create_database("bench"), files, workdir)
                measure_memory("postgresql", server.create_database("double"), files,
                               workdir)
            finally:
                server.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
