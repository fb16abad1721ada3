"""The quote page under load while ``portal notices send`` works through a day with many
notices due, on SQLite (WAL), against the same page alone.

    python benchmarks/notices_under_load.py [--contracts 2000] [--seconds 20]
        [--connections 16] [--workers 2] [--batch-niceness N] [--finish]

A SQLite database in a temporary folder gets a book of ``--contracts`` contracts, all with
their 60-day notice due on one day (benchmarks/notices_bench.py builds it), and a renewal
link for the first contract. gunicorn (``--workers`` sync workers, 127.0.0.1) serves the
portal; wrk (``--connections`` connections) loads the quote page for ``--seconds`` alone,
then again while ``portal notices send`` runs in its own process, started exactly as a
deployment starts it (each notice: a quote, a PDF, an email, then a short write); the
command lowers its own CPU priority to ``BATCH_NICENESS`` (default 10;
``--batch-niceness`` sets the variable, 0 to compare with a job at the web's priority).
The job is stopped after the measurement unless ``--finish`` lets it run to the end. Prints requests/s, p99, non-2xx responses and socket
errors for both runs, their ratio, the job's progress and any server error logged.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from notices_bench import SMALL_DAY, build_book  # noqa: E402
from quote_page import portal_env, run_wrk, serve, session_cookie  # noqa: E402

from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.notices.models import NoticeRecord  # noqa: E402


def prepare(folder, contracts):
    """Migrate, build the book, issue a link; returns the environment and the link path."""
    env = portal_env(f"sqlite:///{folder}/bench.db")
    portal = [sys.executable, "-m", "portal.cli"]
    subprocess.run(portal + ["db", "upgrade"], env=env, check=True, capture_output=True)
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "SECRET_KEY": env["SECRET_KEY"]})
    with app.app_context():
        build_book(contracts, contracts, 0)
        db.engine.dispose()
    link = subprocess.run(portal + ["link", "SNS-000001", "--email", "buyer1@book.example"],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()
    return env, "/" + link.split("/", 3)[3]


def niceness(pid):
    """The CPU niceness of a running process (None once it has ended)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    except (OSError, IndexError, ValueError):
        return None


def noticed(env):
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "SECRET_KEY": env["SECRET_KEY"]})
    with app.app_context():
        count = db.session.query(NoticeRecord).count()
        db.engine.dispose()
    return count


def combined(runs):
    """One figure for several wrk windows of equal length: mean throughput, worst p99,
    all errors."""
    return {"rps": round(sum(r["rps"] for r in runs) / len(runs), 2),
            "p99_ms": max(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs)}


def measure(contracts=2000, seconds=20, connections=16, workers=2, finish=False,
            batch_niceness=None, rounds=1):
    """Both runs' figures and the job's, as a dict. ``batch_niceness``: the job's
    ``BATCH_NICENESS`` (None: the portal's default). With ``rounds`` > 1 the two runs are
    paired: once the job is running, windows with the job stopped (SIGSTOP) and running
    (SIGCONT) alternate, ``seconds / rounds`` each, so whatever else the machine is doing
    weighs on both runs alike; the first window alone is taken before the job starts."""
    figures = {"contracts": contracts, "connections": connections, "workers": workers,
               "seconds": seconds, "batch_niceness": batch_niceness, "rounds": rounds}
    window = max(1, round(seconds / rounds))
    with tempfile.TemporaryDirectory() as folder:
        env, link_path = prepare(folder, contracts)
        server_log = Path(folder) / "gunicorn.log"
        with open(server_log, "w") as log:
            process, port = serve("wsgi:app", env, workers, ROOT, stderr=log)
        job = None
        try:
            cookie = [f"Cookie: {session_cookie(port, link_path)}"]
            url = f"http://127.0.0.1:{port}/renewal"
            run_wrk(url, 2, connections, cookie)  # warm up: templates, catalogs, a quote
            alone = [run_wrk(url, window, connections, cookie)]
            job_log = Path(folder) / "notices.log"
            started = time.monotonic()
            job_env = dict(env)
            if batch_niceness is not None:
                job_env["BATCH_NICENESS"] = str(batch_niceness)
            with open(job_log, "w") as log:
                job = subprocess.Popen(
                    [sys.executable, "-m", "portal.cli", "notices", "send", "--date",
                     SMALL_DAY.isoformat()],
                    env=job_env, stdout=log, stderr=subprocess.STDOUT)
            time.sleep(3)  # past the scan, into the quotes, PDFs and writes
            with_job = [run_wrk(url, window, connections, cookie)]
            running = [job.poll() is None]
            for _round in range(rounds - 1):
                job.send_signal(signal.SIGSTOP)
                try:
                    alone.append(run_wrk(url, window, connections, cookie))
                finally:
                    job.send_signal(signal.SIGCONT)
                with_job.append(run_wrk(url, window, connections, cookie))
                running.append(job.poll() is None)
            figures["alone"], figures["with_job"] = combined(alone), combined(with_job)
            figures["job_niceness"] = niceness(job.pid)  # set by the job itself as it starts
            figures["job_running_during_load"] = all(running)
            if finish:
                job.wait(timeout=3 * 3600)
                figures["job_exit"] = job.returncode
                figures["job_seconds"] = round(time.monotonic() - started, 1)
        finally:
            if job is not None and job.poll() is None:
                job.send_signal(signal.SIGTERM)
                job.wait(60)
            process.terminate()
            process.wait(10)
        figures["notices_stored"] = noticed(env)
        text = server_log.read_text()
        figures["server_errors"] = text.count("Traceback") + text.count("database is locked")
    figures["ratio"] = round(figures["with_job"]["rps"] / figures["alone"]["rps"], 2)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-niceness", type=int, default=None,
                        help="BATCH_NICENESS for the job (default: the portal's, 10; "
                             "0: the job at the server's priority)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate this many windows alone (job stopped) and with the job")
    parser.add_argument("--finish", action="store_true",
                        help="let the notices job run to the end and time it")
    args = parser.parse_args()
    figures = measure(args.contracts, args.seconds, args.connections, args.workers,
                      args.finish, args.batch_niceness, args.rounds)
    for run in ("alone", "with_job"):
        f = figures[run]
        print(f"quote page {run:9} {f['rps']:8.1f} req/s  p99 {f['p99_ms']:8.1f} ms  "
              f"non-2xx {f['errors']}  socket errors {f['socket_errors']}")
    print(f"throughput with the job / alone: {figures['ratio']:.2f}")
    print(f"notices stored: {figures['notices_stored']} of {figures['contracts']}"
          + (f" in {figures['job_seconds']} s, exit {figures['job_exit']}"
             if "job_seconds" in figures else " (job stopped after the measurement)"))
    print(f"server errors logged: {figures['server_errors']}; the job ran at niceness "
          f"{figures['job_niceness']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
