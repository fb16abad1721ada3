"""Partner webhooks to a receiver on loopback, on PostgreSQL.

Starts a throwaway PostgreSQL on loopback (tests/pgserver.py) and an HTTP receiver on
127.0.0.1 that answers 200 to every POST (tests/webhook_receiver.py), registers it as
the endpoint of one partner, and measures:

- throughput: ``--events`` (default 1,000) events recorded ahead, then one
  ``deliver_due_webhooks`` run; events delivered per second, and again with ``--runs``
  (default 2) runs at once, as concurrent workers would;
- latency: ``--renewals`` (default 30) renewals paid one after another while a delivery
  loop runs back to back in another thread (``--poll`` seconds of pause between runs
  that find nothing, default 0.2); for each, the time from the commit of the payment to
  the receiver holding its ``contract.renewed`` event.

    python benchmarks/webhooks_bench.py [--events N] [--runs N] [--renewals N] [--poll S]
"""
import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.markets.services import seed_launch_dates  # noqa: E402
from portal.orders.services import place_order, record_payment  # noqa: E402
from portal.partners import webhooks  # noqa: E402
from portal.partners.events import contract_summary, record_event  # noqa: E402
from portal.partners.keys import ensure_partner  # noqa: E402
from portal.partners.models import WebhookDelivery  # noqa: E402
from portal.renewals.services import issue_quote  # noqa: E402
from portal.timeutil import utc_today  # noqa: E402
from tests import factories  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402
from tests.webhook_receiver import WebhookReceiver  # noqa: E402


def setup(receiver):
    seed_launch_dates()
    today = utc_today()
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", today - timedelta(days=1))
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
    partner = ensure_partner("BENCH", "Bench Partner")
    webhooks.register(partner, receiver.url, production=False)
    db.session.commit()
    return partner, plist, today


def partner_contract(partner, plist, today, days_to_end=20):
    contract = factories.contract(plist, end_date=today + timedelta(days=days_to_end))
    contract.partner, contract.channel = partner, "partner"
    db.session.flush()
    return contract


def throughput(app, partner, plist, today, receiver, events, runs):
    contract = partner_contract(partner, plist, today)
    for _ in range(events):
        record_event(contract, "contract.expiring", {"contract": contract_summary(contract)})
    db.session.commit()
    before = len(receiver.received)
    started = time.perf_counter()
    if runs == 1:
        counts = [webhooks.deliver_due_webhooks(limit=events)]
    else:
        counts = []

        def worker():
            with app.app_context():
                counts.append(webhooks.deliver_due_webhooks(limit=events))
                db.session.remove()

        threads = [threading.Thread(target=worker) for _ in range(runs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    delivered = sum(c["delivered"] for c in counts)
    ids = [json.loads(body)["id"] for _, body, _ in receiver.received[before:]]
    print(f"throughput, {runs} run(s): {delivered} events in {elapsed:.2f} s = "
          f"{delivered / elapsed:.0f} events/s; received {len(ids)}, "
          f"distinct {len(set(ids))}")


def renewed_arrived(receiver, number):
    """Whether the receiver holds the ``contract.renewed`` event of contract ``number``
    (its bodies are scanned from where the last look stopped)."""
    seen = receiver.__dict__.setdefault("scanned", 0)
    bodies = [body for _, body, _ in receiver.received[seen:]]
    receiver.scanned = seen + len(bodies)
    found = receiver.__dict__.setdefault("renewed", set())
    for body in bodies:
        event = json.loads(body)
        if event["type"] == "contract.renewed":
            found.add(event["data"]["contract"]["number"])
    return number in found


def latency(app, partner, plist, today, receiver, renewals, poll):
    stop = threading.Event()

    def loop():
        with app.app_context():
            while not stop.is_set():
                counts = webhooks.deliver_due_webhooks(limit=100)
                if not any(counts.values()):
                    time.sleep(poll)
            db.session.remove()

    thread = threading.Thread(target=loop)
    thread.start()
    delays = []
    try:
        for _ in range(renewals):
            contract = partner_contract(partner, plist, today)
            order = place_order(issue_quote(contract, today), "basic", 12, "USD",
                                "bank_transfer", contact_id=None, today=today, actor="bench")
            db.session.commit()
            record_payment(order.id, provider="bank", provider_ref=f"bench-{order.reference}",
                           amount=order.amount_due, currency="USD", received_on=today,
                           actor="bench")
            db.session.commit()
            committed = time.monotonic()
            while not renewed_arrived(receiver, contract.number):
                time.sleep(0.002)
            delays.append(time.monotonic() - committed)
    finally:
        stop.set()
        thread.join()
    delays.sort()
    print(f"latency, renewal commit -> contract.renewed received ({renewals} renewals, "
          f"{poll} s pause when idle): median {statistics.median(delays) * 1000:.0f} ms, "
          f"p90 {delays[int(len(delays) * 0.9) - 1] * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--renewals", type=int, default=30)
    parser.add_argument("--poll", type=float, default=0.2)
    args = parser.parse_args()
    server = PostgresServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as instance, WebhookReceiver() as receiver:
            app = create_app({"DATABASE_URL": server.create_database("webhooks_bench"),
                              "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"})
            app.instance_path = instance
            with app.app_context():
                db.create_all()
                partner, plist, today = setup(receiver)
                throughput(app, partner, plist, today, receiver, args.events, 1)
                if args.runs > 1:
                    throughput(app, partner, plist, today, receiver, args.events, args.runs)
                latency(app, partner, plist, today, receiver, args.renewals, args.poll)
                left = db.session.scalars(select(WebhookDelivery.status)).all()
                print("deliveries:", {s: left.count(s) for s in sorted(set(left))})
    finally:
        server.stop()


if __name__ == "__main__":
    main()
