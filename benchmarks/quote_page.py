"""Serve the quote page with gunicorn and load it with wrk, beside a minimal Flask page.

    python benchmarks/quote_page.py [--seconds 15] [--connections 16] [--workers 2]

Both servers run on 127.0.0.1 with the same gunicorn settings, one after the other, and
the script prints requests/s, p99 latency and worker memory (RSS) for each, and the ratio.
The portal runs on a SQLite database in a temporary folder with the demo data set, and
wrk requests the quote page with the session cookie a renewal link gives.
"""
import argparse
import os
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
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"http://127.0.0.1:{port}{link_path}")
    except urllib.error.HTTPError as response:
        cookie = response.headers.get("Set-Cookie", "")
        return cookie.split(";", 1)[0]
    raise RuntimeError("the renewal link did not redirect")


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


def portal_env(folder):
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"sqlite:///{folder}/bench.db",
        "SECRET_KEY": "benchmark-secret",
        "PORTAL_BASE_URL": "http://127.0.0.1",
    })
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        env = portal_env(folder)
        portal = [sys.executable, "-m", "portal.cli"]
        subprocess.run(portal + ["db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run(portal + ["demo"], env=env, check=True, capture_output=True)
        link = subprocess.run(portal + ["link", "SNS-100001", "--email", "it@contoso.example"],
                              env=env, check=True, capture_output=True, text=True).stdout.strip()
        link_path = "/" + link.split("/", 3)[3]

        results = {}
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

    for name, figures in results.items():
        rss = ", ".join(f"{mb:.0f}" for mb in figures["rss_mb"])
        print(f"{name:13} {figures['rps']:9.1f} req/s  p99 {figures['p99_ms']:7.1f} ms  "
              f"non-2xx {figures['errors']}  worker RSS MiB: {rss}")
    ratio = results["quote page"]["rps"] / results["minimal page"]["rps"]
    print(f"quote page / minimal page throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
