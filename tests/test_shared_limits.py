"""Rate limits hold across gunicorn workers: the counters are in the database (the
default store), so two workers together answer no more link guesses than the limit."""
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from quote_page import portal_env, serve  # noqa: E402

from portal.checkout.routes import TOKEN_LIMIT  # noqa: E402

PER_MINUTE = int(TOKEN_LIMIT.split()[0])


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_link_guesses_are_counted_across_workers(tmp_path):
    env = portal_env(f"sqlite:///{tmp_path}/bench.db")
    env.pop("RATELIMIT_STORAGE_URI", None)  # the default: the portal's database
    subprocess.run([sys.executable, "-m", "portal.cli", "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    process, port = serve("wsgi:app", env, 2, ROOT, stderr=subprocess.DEVNULL)
    try:
        answers = Counter(_status(f"http://127.0.0.1:{port}/r/{secrets.token_urlsafe(32)}")
                          for _ in range(PER_MINUTE + 40))
    finally:
        process.terminate()
        process.wait(10)
    assert set(answers) <= {404, 429}, answers
    assert answers[404] <= PER_MINUTE and answers[429] >= 40, answers
    assert os.path.exists(tmp_path / "bench.db")
