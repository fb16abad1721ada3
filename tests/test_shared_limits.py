"""Rate limits hold across gunicorn workers: the counters are in the database (the
default store), so two workers together answer no more link guesses than the limit."""
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from quote_page import portal_env, serve, session_cookie  # noqa: E402

from portal.checkout.routes import FORM_LIMIT, TOKEN_LIMIT  # noqa: E402

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


def test_form_posts_are_counted_without_waiting_for_their_own_transaction(tmp_path):
    """A POST opens a writing transaction (SQLite's write lock) before its rate limit is
    counted: the counter is written where that lock is not held, so each answer comes at
    once and the limit holds (before, each POST waited out the busy timeout and was not
    counted)."""
    env = portal_env(f"sqlite:///{tmp_path}/bench.db")
    env.pop("RATELIMIT_STORAGE_URI", None)
    for command in (["db", "upgrade"], ["demo"]):
        done = subprocess.run([sys.executable, "-m", "portal.cli", *command], env=env,
                              check=True, capture_output=True, text=True)
    link = re.search(r"http://\S+/r/(\S+)", done.stdout).group(1)
    process, port = serve("wsgi:app", env, 1, ROOT, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        # The session a renewal link and its first page give (with the CSRF secret).
        cookie = session_cookie(port, f"/r/{link}")
        with urllib.request.urlopen(urllib.request.Request(
                f"{base}/renewal", headers={"Cookie": cookie}), timeout=5) as response:
            page = response.read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        answers = Counter()
        per_minute = int(FORM_LIMIT.split()[0])
        for _ in range(per_minute + 3):
            post = urllib.request.Request(
                f"{base}/renewal/order", headers={"Cookie": cookie},
                data=urllib.parse.urlencode({"csrf_token": token, "update": "1"}).encode())
            try:  # a POST that waited for the lock would time out here
                answers[urllib.request.urlopen(post, timeout=5).status] += 1
            except urllib.error.HTTPError as error:
                answers[error.code] += 1
    finally:
        process.terminate()
        process.wait(10)
    assert answers[429] == 3 and sum(answers.values()) == per_minute + 3, answers
    assert os.path.exists(tmp_path / "bench.db-ratelimits")
