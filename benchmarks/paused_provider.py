"""Paying while the payment provider is paused: how long the customer waits, what the
customer sees, and whether the rest of the site keeps answering meanwhile.

    python benchmarks/paused_provider.py [--payers 2] [--threads 4]

gunicorn (2 workers, ``--threads`` threads each; 1 means plain sync workers) serves the
demo data with card payments through the local Stripe emulator (localstripe) on
127.0.0.1, with the default provider deadlines (PROVIDER_CONNECT_TIMEOUT_SECONDS=3,
PROVIDER_READ_TIMEOUT_SECONDS=8, PROVIDER_MAX_RETRIES=1). A card order is placed, then
the emulator is stopped with SIGSTOP (its port accepts connections, nothing answers),
``--payers`` clients open the card page at once while another client requests
``/healthz`` and the quote page every 0.25 s; then the emulator continues (SIGCONT) and
the card page is opened again.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quote_page import portal_env, serve  # noqa: E402

from portal.payments.emulator import Emulator  # noqa: E402
from tests.checkout.conftest import csrf_token, field_value  # noqa: E402


class SessionCookie(urllib.request.BaseHandler):
    """Keeps the portal's session cookie over plain HTTP on loopback (a cookie jar drops
    a ``Secure`` ``__Host-`` cookie there)."""

    def __init__(self):
        self.cookie = None

    def http_request(self, request):
        if self.cookie:
            request.add_unredirected_header("Cookie", self.cookie)
        return request

    def http_response(self, _request, response):
        for header in response.headers.get_all("Set-Cookie") or ():
            self.cookie = header.split(";", 1)[0]
        return response


def browser():
    return urllib.request.build_opener(SessionCookie())


def fetch(opener, url, data=None):
    """``(status, body, seconds)``; an HTTP error is an answer like any other."""
    started = time.monotonic()
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=120) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, text, time.monotonic() - started


def place_card_order(opener, base, link):
    fetch(opener, link)
    _status, page, _ = fetch(opener, f"{base}/renewal")
    choice = {"service_level": "basic", "term_months": "12", "pay_currency": "USD",
              "payment_method": "visa"}
    _status, page, _ = fetch(opener, f"{base}/renewal/order",
                             {"csrf_token": csrf_token(page), **choice, "update": "1"})
    status, _page, _ = fetch(opener, f"{base}/renewal/order", {
        "csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
        **choice, "place": "1"})
    return status


def run(payers, threads):
    with tempfile.TemporaryDirectory() as folder, Emulator() as emulator:
        env = portal_env(f"sqlite:///{folder}/bench.db")
        env.update(emulator.config())
        env["PORTAL_BASE_URL"] = "http://127.0.0.1"
        portal = [sys.executable, "-m", "portal.cli"]
        subprocess.run(portal + ["db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run(portal + ["demo"], env=env, check=True, capture_output=True)
        link = subprocess.run(portal + ["link", "SNS-100001", "--email", "it@contoso.example"],
                              env=env, check=True, capture_output=True, text=True).stdout.strip()
        options = ("--worker-class", "gthread", "--threads", str(threads)) if threads > 1 else ()
        server_log = open(Path(folder) / "gunicorn.log", "w")
        process, port = serve("wsgi:app", env, 2, ROOT, stderr=server_log, options=options)
        base = f"http://127.0.0.1:{port}"
        customer = browser()
        try:
            placed = place_card_order(customer, base, base + "/" + link.split("/", 3)[3])
            assert fetch(customer, f"{base}/renewal/pay")[0] == 200, "the card page must open"
            os.kill(emulator.process.pid, signal.SIGSTOP)
            pays, others, done = [], {"healthz": [], "quote page": []}, threading.Event()

            def pay():
                pays.append(fetch(customer, f"{base}/renewal/pay"))

            def watch():
                while not done.is_set():
                    others["healthz"].append(fetch(browser(), f"{base}/healthz"))
                    others["quote page"].append(fetch(customer, f"{base}/renewal"))
                    time.sleep(0.25)

            watcher = threading.Thread(target=watch)
            watcher.start()
            payer_threads = [threading.Thread(target=pay) for _ in range(payers)]
            for thread in payer_threads:
                thread.start()
            for thread in payer_threads:
                thread.join()
            done.set()
            watcher.join()
            os.kill(emulator.process.pid, signal.SIGCONT)
            after = fetch(customer, f"{base}/renewal/pay")
        finally:
            os.kill(emulator.process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(10)
            server_log.close()
            logged = (Path(folder) / "gunicorn.log").read_text()
    errors = [line for line in logged.splitlines() if "Error:" in line or "ERROR" in line]
    print(f"gunicorn: 2 workers x {threads} thread(s); order placed: HTTP {placed}")
    for status, text, seconds in pays:
        print(f"card page, provider paused: HTTP {status} in {seconds:.1f} s; "
              f"says nothing was charged: {'Nothing was charged' in text}")
    for name, answers in others.items():
        times = [seconds for _status, _text, seconds in answers]
        statuses = sorted({status for status, _text, _seconds in answers})
        print(f"{name} meanwhile: {len(times)} requests, HTTP {statuses}, "
              f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    print(f"card page after the provider continues: HTTP {after[0]} in {after[2]:.1f} s")
    print(f"errors logged by the server: {len(errors)}")
    for line in errors[:5]:
        print("  " + line[:200])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    run(args.payers, args.threads)


if __name__ == "__main__":
    main()
