"""Render the combined order page (``GET /renewal/contracts``) of an account with many due
contracts, in process, and count its SQL statements.

    python benchmarks/combined_page.py [--contracts 10,50] [--first-views 15] [--views 50]

For each size N: the demo data set in a SQLite database in a temporary folder, with
Contoso Inc. (whose SNS-100001 the renewal link is for) given more contracts like the
demo's own (products, levels and end dates from 59 days ahead to 60 days lapsed) until N
of its contracts are due. Then, with Flask's test client in this process, after a warm-up
on a copy of that database:

- the first view, which issues a quote for each contract: each one on a fresh copy of
  the database (median of ``--first-views``);
- later views, which find those quotes (median of ``--views``);

each as wall time (``time.perf_counter``) and CPU time (``time.process_time``), and the
SQL statements one view sends, grouped by the statement's text (those sent more than once
are listed), so what is sent once per contract shows as a count of about N.
"""
import argparse
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from quote_page import ROOT, portal_env  # the same database, secrets and base URL

PRODUCTS = [[("VS-ENT", 2), ("BK-AGT", 5)], [("BK-AGT", 8)], [("MON-CLD", 3)],
            [("VS-ENT", 1)], [("VS-ENT", 3), ("MON-CLD", 2)], [("BK-AGT", 2)]]
LEVELS = ["basic", "production", "basic", "production", "basic"]
CONTOSO = {"account": "Contoso Inc.", "email": "it@contoso.example"}


def more_contoso_contracts(count, today):
    """``count`` more due contracts of Contoso Inc., demo-like: ending from 59 days ahead
    to 60 days ago, their products and levels in turn."""
    from portal.demo.services import _contract

    return [_contract(f"SNS-2{index:05d}", 59 - (index * 7) % 120, "US", "US",
                      LEVELS[index % len(LEVELS)], PRODUCTS[index % len(PRODUCTS)],
                      today=today, **CONTOSO)
            for index in range(count)]


def prepare(folder, due):
    """A database at ``folder``/template.db with the demo data and ``due`` due contracts
    of Contoso Inc.; returns its path and the path of a renewal link for SNS-100001."""
    from sqlalchemy import select

    from portal import create_app
    from portal.checkout.combined import due_contracts
    from portal.extensions import db
    from portal.imports.services import upsert_contracts
    from portal.contracts.models import Contract
    from portal.links.models import RenewalLink
    from portal.timeutil import utc_today

    template = folder / "template.db"
    env = portal_env(f"sqlite:///{template}")
    portal = [sys.executable, "-m", "portal.cli"]
    for command in (["db", "upgrade"], ["demo"]):
        subprocess.run(portal + command, env=env, cwd=ROOT, check=True, capture_output=True)
    link = subprocess.run(portal + ["link", "SNS-100001", "--email", CONTOSO["email"]],
                          env=env, cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    app = create_app({key: env[key] for key in ("DATABASE_URL", "SECRET_KEY",
                                                "PORTAL_BASE_URL")})
    with app.app_context():
        today = utc_today()
        link_row = db.session.scalars(
            select(RenewalLink).join(Contract, RenewalLink.contract_id == Contract.id)
            .where(Contract.number == "SNS-100001").order_by(RenewalLink.id.desc())).first()
        have = len(due_contracts(link_row, today))
        upsert_contracts(more_contoso_contracts(max(0, due - have), today), "benchmark")
        db.session.commit()
        shown = len(due_contracts(link_row, today))
        db.engine.dispose()
    if shown != due:
        sys.exit(f"the account has {shown} due contracts, not {due}")
    return template, "/" + link.split("/", 3)[3]


def copy_database(source, target):
    """Copy a SQLite database in WAL mode whole (its log included), replacing ``target``."""
    for leftover in (target, target.with_name(target.name + "-wal"),
                     target.with_name(target.name + "-shm")):
        leftover.unlink(missing_ok=True)
    with sqlite3.connect(source) as read, sqlite3.connect(target) as write:
        read.backup(write)
    read.close()
    write.close()


class Views:
    """A test client on a copy of the template database, and the statements it sends."""

    def __init__(self, template, link_path):
        from sqlalchemy import event

        from portal import create_app
        from portal.extensions import db

        self.template = template
        self.database = template.with_name("views.db")
        copy_database(template, self.database)
        env = portal_env(f"sqlite:///{self.database}")
        self.app = create_app({key: env[key] for key in ("DATABASE_URL", "SECRET_KEY",
                                                         "PORTAL_BASE_URL")})
        self.client = self.app.test_client()
        assert self.client.get(link_path).status_code == 303
        with self.app.app_context():
            self.engine = db.engine
        self.statements = None
        event.listen(self.engine, "before_cursor_execute", self._count)

    def _count(self, _conn, _cursor, statement, *_args):
        if self.statements is not None:
            self.statements.append(statement)

    def fresh_database(self):
        """Back to the template: no quote of the day issued yet."""
        self.engine.dispose()
        copy_database(self.template, self.database)

    def view(self, count=False):
        """``(wall seconds, CPU seconds, statements or None)`` of one view."""
        self.statements = [] if count else None
        wall, cpu = time.perf_counter(), time.process_time()
        response = self.client.get("/renewal/contracts")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert response.status_code == 200, response.status_code
        statements, self.statements = self.statements, None
        return wall, cpu, statements, response.get_data(as_text=True)

    def close(self):
        self.engine.dispose()


def shapes(statements):
    """``{statement text with its literals and parameters dropped: times sent}``."""
    return Counter(re.sub(r"\s+", " ", re.sub(r"'[^']*'|\b\d+\b", "?", s)).strip()[:110]
                   for s in statements)


def measure(due, args):
    with tempfile.TemporaryDirectory() as folder:
        template, link_path = prepare(Path(folder), due)
        views = Views(template, link_path)
        try:
            _w, _c, _s, page = views.view()
            rows = len(re.findall(r'<section class="contract-row', page))
            assert rows == due, f"{rows} contracts shown"
            for _ in range(args.warm_up):
                views.view()
            first = []
            for _ in range(args.first_views):
                views.fresh_database()
                first.append(views.view())
            views.fresh_database()
            _w, _c, first_statements, _p = views.view(count=True)
            later = [views.view() for _ in range(args.views)]
            _w, _c, later_statements, _p = views.view(count=True)
        finally:
            views.close()
    return {"first": first, "later": later, "first_statements": first_statements,
            "later_statements": later_statements, "rows": rows}


def report(due, results):
    for name in ("first", "later"):
        samples = results[name]
        wall = statistics.median(s[0] for s in samples) * 1000
        cpu = statistics.median(s[1] for s in samples) * 1000
        statements = results[f"{name}_statements"]
        print(f"[{due} due] {name} view: median {wall:.1f} ms wall, {cpu:.1f} ms CPU "
              f"({len(samples)} views), {len(statements)} SQL statements", flush=True)
    for name in ("first", "later"):
        counted = shapes(results[f"{name}_statements"])
        once = sum(1 for times in counted.values() if times == 1)
        print(f"[{due} due] statements of a {name} view sent more than once "
              f"({once} more are sent once):")
        for shape, times in counted.most_common():
            if times > 1:
                print(f"    {times:5d}  {shape}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", default="10,50",
                        help="due contracts of the account, comma-separated sizes")
    parser.add_argument("--first-views", type=int, default=15,
                        help="first views timed, each on a fresh copy of the database")
    parser.add_argument("--views", type=int, default=50, help="later views timed")
    parser.add_argument("--warm-up", type=int, default=10)
    args = parser.parse_args()
    for due in (int(size) for size in args.contracts.split(",")):
        report(due, measure(due, args))


if __name__ == "__main__":
    main()
