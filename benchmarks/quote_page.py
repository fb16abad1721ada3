"""Serve the quote page with gunicorn and load it with wrk, beside a minimal Flask page.

    python benchmarks/quote_page.py [--seconds 15] [--connections 16] [--workers 2]
                                    [--database sqlite,postgresql] [--views 300]

For each database: first the quote page in this process (Flask's test client, after a
warm-up): the median CPU time of one view (``time.process_time``) and the number of SQL
statements one view sends. Then both servers on 127.0.0.1 with the same gunicorn settings,
one after the other: requests/s, p99 latency and worker memory (RSS) for each, and the
ratio. The portal runs on the demo data set in a SQLite database in a temporary folder, or
in a throwaway PostgreSQL (tests/pgserver.py, fsync off), and wrk requests the quote page
with the session cookie a renewal link gives.
"""
import argparse
import os
import statistics
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the portal (and tests/pgserver.py) of this checkout


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def worker_rss_mb(master_pid):
    """Resident memory of each gunicorn worker (children of the master), in MiB."""
    children = subprocess.run(["ps", "-o", "rss=", "--ppid", str(master_pid)],
                              capture_output=True, text=True).stdout.split()
    return [int(kb) / 1024 for kb in children]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def session_cookie(port, link_path):
    """The session cookie a browser holds after opening the link and its first page (the
    first form adds its CSRF secret to the session, and the browser keeps that cookie)."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"http://127.0.0.1:{port}{link_path}")
        raise RuntimeError("the renewal link did not redirect")
    except urllib.error.HTTPError as response:
        cookie = response.headers.get("Set-Cookie", "").split(";", 1)[0]
    with opener.open(urllib.request.Request(f"http://127.0.0.1:{port}/renewal",
                                            headers={"Cookie": cookie})) as page:
        renewed = page.headers.get("Set-Cookie")
    return renewed.split(";", 1)[0] if renewed else cookie


def run_wrk(url, seconds, connections, headers=()):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", output)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "errors": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0}


def serve(app_spec, env, workers, cwd, stderr=None, options=()):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", *options, app_spec],
        env=env, cwd=cwd, stderr=stderr,
    )
    wait_for(port)
    return process, port


def portal_env(database_url):
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "SECRET_KEY": "benchmark-secret",
        "PORTAL_BASE_URL": "http://127.0.0.1",
    })
    return env


def in_process(env, link_path, views, warm_up=50):
    """``(median CPU ms of one quote page view, SQL statements of one view)`` in this process."""
    from sqlalchemy import event

    from portal import create_app
    from portal.extensions import db

    app = create_app({key: env[key] for key in ("DATABASE_URL", "SECRET_KEY", "PORTAL_BASE_URL")})
    client = app.test_client()
    assert client.get(link_path).status_code == 303
    for _ in range(warm_up):
        assert client.get("/renewal").status_code == 200
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    client.get("/renewal")
    event.remove(engine, "before_cursor_execute", listener)
    times = []
    for _ in range(views):
        start = time.process_time()
        client.get("/renewal")
        times.append(time.process_time() - start)
    with app.app_context():
        db.engine.dispose()
    return statistics.median(times) * 1000, len(statements)


def measure(database_url, args):
    env = portal_env(database_url)
    portal = [sys.executable, "-m", "portal.cli"]
    subprocess.run(portal + ["db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run(portal + ["demo"], env=env, cwd=ROOT, check=True, capture_output=True)
    link = subprocess.run(portal + ["link", "SNS-100001", "--email", "it@contoso.example"],
                          env=env, cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    link_path = "/" + link.split("/", 3)[3]
    results = {"in process": in_process(env, link_path, args.views)}

    process, port = serve("wsgi:app", env, args.workers, ROOT)
    try:
        cookie = session_cookie(port, link_path)
        run_wrk(f"http://127.0.0.1:{port}/renewal", 2, args.connections, [f"Cookie: {cookie}"])
        results["quote page"] = run_wrk(f"http://127.0.0.1:{port}/renewal", args.seconds,
                                        args.connections, [f"Cookie: {cookie}"])
        results["quote page"]["rss_mb"] = worker_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)

    process, port = serve("minimal_app:app", env, args.workers, ROOT / "benchmarks")
    try:
        run_wrk(f"http://127.0.0.1:{port}/", 2, args.connections)
        results["minimal page"] = run_wrk(f"http://127.0.0.1:{port}/", args.seconds,
                                          args.connections)
        results["minimal page"]["rss_mb"] = worker_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)
    return results


def report(database, results):
    cpu_ms, statements = results["in process"]
    print(f"[{database}] in process: median CPU {cpu_ms:.2f} ms per view, "
          f"{statements} SQL statements per view")
    for name in ("quote page", "minimal page"):
        figures = results[name]
        rss = ", ".join(f"{mb:.0f}" for mb in figures["rss_mb"])
        print(f"[{database}] {name:13} {figures['rps']:9.1f} req/s  p99 "
              f"{figures['p99_ms']:7.1f} ms  non-2xx {figures['errors']}  "
              f"socket errors {figures['socket_errors']}  worker RSS MiB: {rss}")
    ratio = results["quote page"]["rps"] / results["minimal page"]["rps"]
    print(f"[{database}] quote page / minimal page throughput: {ratio:.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default="sqlite,postgresql",
                        help="sqlite, postgresql or both, comma-separated")
    parser.add_argument("--views", type=int, default=300,
                        help="quote page views timed in process (after 50 of warm-up)")
    args = parser.parse_args()

    for database in args.database.split(","):
        if database == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                report(database, measure(f"sqlite:///{folder}/bench.db", args))
        elif database == "postgresql":
            from tests.pgserver import PostgresServer

            server = PostgresServer()
            if not server.available:
                sys.exit("PostgreSQL is not installed")
            server.start()
            try:
                report(database, measure(server.create_database("bench"), args))
            finally:
                server.stop()
        else:
            sys.exit(f"unknown database {database!r}: sqlite or postgresql")


if __name__ == "__main__":
    main()
