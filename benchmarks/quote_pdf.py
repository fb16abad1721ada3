"""Time of one quote PDF per email locale (the attachment of every renewal notice).

Builds one contract on a SQLite database in a temporary folder, renders its quote PDF
``--repeat`` times (default 30) in each email locale after one warm-up render, and prints
the median and 90th percentile per locale and over all of them, in milliseconds, and the
median CPU time of this process per PDF (steadier than the clock on a shared machine).

    python benchmarks/quote_pdf.py [--repeat N] [--locale L ...] [--profile]
"""
import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.i18n import EMAIL_LOCALES  # noqa: E402
from portal.links.services import issue_link, link_url  # noqa: E402
from portal.markets.services import seed_launch_dates  # noqa: E402
from portal.notices.services import notice_context, quote_pdf  # noqa: E402
from portal.renewals.services import issue_quote  # noqa: E402
from tests import factories  # noqa: E402

DAY = date(2027, 1, 30)


def contract_context():
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", DAY)
    plist = factories.price_list("US", "USD", {
        ("VS-ENT", "basic", 12): "450.00", ("VS-ENT", "basic", 36): "1215.00",
        ("VS-ENT", "production", 12): "600.00", ("VS-ENT", "production", 36): "1620.00"})
    contract = factories.contract(plist, end_date=date(2027, 3, 1))
    contact = contract.account.contacts[0]
    quote = issue_quote(contract, DAY)
    link, token = issue_link(contract, contact, purpose="notice")
    return notice_context(contract, quote, 30, contact, link, link_url(token))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--locale", action="append", choices=EMAIL_LOCALES)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative", help="profile order (tottime, ...)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="portal-pdf-bench-"))
    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
                      "SECRET_KEY": "bench"})
    app.instance_path = str(folder)
    everything, all_cpu = [], []
    with app.app_context(), app.test_request_context():
        db.create_all()
        seed_launch_dates()
        context = contract_context()
        profile = cProfile.Profile() if args.profile else None
        for locale in args.locale or EMAIL_LOCALES:
            quote_pdf(context, locale)  # warm-up: fonts and templates loaded once per process
            times, cpu = [], []
            for _ in range(args.repeat):
                if profile:
                    profile.enable()
                start, start_cpu = time.perf_counter(), time.process_time()
                size = len(quote_pdf(context, locale))
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
                if profile:
                    profile.disable()
            everything.extend(times)
            all_cpu.extend(cpu)
            print(f"{locale:8} median {statistics.median(times):6.1f} ms  "
                  f"p90 {statistics.quantiles(times, n=10)[-1]:6.1f} ms  "
                  f"CPU median {statistics.median(cpu):6.1f} ms  {size // 1024} KiB")
        print(f"{'all':8} median {statistics.median(everything):6.1f} ms  "
              f"p90 {statistics.quantiles(everything, n=10)[-1]:6.1f} ms  "
              f"CPU median {statistics.median(all_cpu):6.1f} ms  ({len(everything)} PDFs)")
        if profile:
            pstats.Stats(profile).sort_stats(args.sort).print_stats(30)


if __name__ == "__main__":
    main()
