"""The portal as an operator installs it: a wheel built from the sources, installed with
the locked dependencies into a new virtual environment, run from an unrelated directory.

Migrates, loads the demo, sends the notices (each in its contact's language, with the
PDF quote), delivers them to the outbox, and serves every kind of page under gunicorn.
"""
import email
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email import policy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UV = shutil.which("uv")

pytestmark = pytest.mark.skipif(UV is None and not os.environ.get("CI"),
                                reason="uv is not installed")


def run(*args, cwd, env=None, timeout=300):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def source_tree(target):
    """The checkout's files, as a fresh clone of it would hold them (no .venv, no build
    output, no compiled catalogs)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A new virtual environment holding the wheel and the locked runtime packages."""
    assert UV, "uv is needed to build and install the wheel"
    base = tmp_path_factory.mktemp("wheel")
    source = source_tree(base / "source")
    run(UV, "build", "--wheel", "--out-dir", base / "dist", source, cwd=base)
    [wheel] = (base / "dist").glob("renewal_portal-*.whl")
    requirements = base / "requirements.txt"
    run(UV, "export", "--locked", "--no-dev", "--no-emit-project", "--format",
        "requirements-txt", "--output-file", requirements, cwd=source)
    venv = base / "venv"
    run(UV, "venv", "--quiet", "--python", sys.executable, venv, cwd=base)
    python = venv / "bin" / "python"
    run(UV, "pip", "install", "--quiet", "--python", python, "--require-hashes",
        "-r", requirements, cwd=base)
    run(UV, "pip", "install", "--quiet", "--python", python, "--no-deps", wheel, cwd=base)
    return venv


@pytest.fixture(scope="module")
def operator_env(installed, tmp_path_factory):
    work = tmp_path_factory.mktemp("elsewhere")  # an unrelated directory
    env = {
        "PATH": f"{installed / 'bin'}:/usr/bin:/bin",
        "HOME": str(work),
        "DATABASE_URL": f"sqlite:///{work / 'portal.db'}",
        "SECRET_KEY": "wheel-smoke-secret",
        "PORTAL_BASE_URL": "http://127.0.0.1:5000",
        "LANG": "C.UTF-8",
    }
    return work, env


def portal(operator_env, *args):
    work, env = operator_env
    return run("portal", *args, cwd=work, env=env)


def test_the_wheel_carries_its_assets(installed):
    package = next(installed.glob("lib/python*/site-packages/portal"))
    assets = package / "_assets"
    assert (assets / "templates" / "notices" / "quote_pdf.html").is_file()
    assert (assets / "static" / "portal.css").is_file()
    compiled = sorted(p.parts[-3] for p in assets.glob("translations/*/LC_MESSAGES/messages.mo"))
    assert len(compiled) == 30 and {"de", "ja", "es_419", "zh_Hans"} <= set(compiled)
    assert (package / "demo" / "company.toml").is_file()
    assert (package / "migrations" / "alembic.ini").is_file() or \
        any((package / "migrations" / "versions").glob("0001_*.py"))


def test_commands_send_every_email_in_its_language(installed, operator_env):
    work, env = operator_env
    portal(operator_env, "db", "upgrade")
    links = portal(operator_env, "demo")
    assert links.count("/r/") >= 10
    sent = portal(operator_env, "notices", "send")
    assert "notice(s)" in sent
    drained = portal(operator_env, "outbox", "drain")
    assert re.search(r"sent [1-9]\d*", drained), drained

    outbox = next(installed.glob("var/portal-instance/outbox"))
    messages = {}
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        messages[message["To"]] = message
    german = messages["eva@muster.example"]  # SNS-100002, contact language de
    japanese = messages["renew@sakura.example"]  # SNS-100004, ja
    assert "Vertrag" in german["Subject"] or "Verlängerung" in german["Subject"]
    german_text = german.get_body(("plain",)).get_content()
    assert german_text.startswith("Guten Tag") and "Abonnementvertrag" in german_text
    assert "Your support" not in german_text
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", japanese["Subject"])
    for message in (german, japanese):
        [pdf] = [part for part in message.iter_attachments()
                 if part.get_content_type() == "application/pdf"]
        assert pdf.get_content().startswith(b"%PDF")
        text = message.get_body(("plain",)).get_content()
        assert "(demo)" in text  # the contracting party of the demo configuration
        assert "portal.example/legal/renewal-terms" in text


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url, headers=None, opener=urllib.request.urlopen):
    """``(status, headers, body)`` of a GET; HTTP errors are answers too."""
    try:
        with opener(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read().decode()


def test_gunicorn_serves_every_kind_of_page(installed, operator_env):
    work, env = operator_env
    portal(operator_env, "db", "upgrade")
    links = portal(operator_env, "demo")
    german_link = re.search(r"SNS-100002.*\n\s+(\S+/r/\S+)", links).group(1)
    port = free_port()
    log_path = work / "gunicorn.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            ["gunicorn", "-c", "python:portal.gunicorn_conf", "portal.wsgi:app"], cwd=work,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1",
                 "LOG_FORMAT": "json"},
            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                fetch(f"{base}/healthz")
                break
            except OSError:
                time.sleep(0.1)
        assert fetch(f"{base}/readyz")[0] == 200
        assert "--accent" in fetch(f"{base}/brand.css")[2]
        assert fetch(f"{base}/static/portal.css")[0] == 200

        no_redirect = urllib.request.build_opener(NoRedirect).open
        status, headers, _ = fetch(base + german_link.split("5000", 1)[1], opener=no_redirect)
        assert status in (302, 303)
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        location = headers["Location"]
        status, _, page = fetch(location if location.startswith("http") else base + location,
                                headers={"Cookie": cookie})
        assert status == 200
        assert 'lang="de"' in page
        assert "data-amount-due" in page
        assert "Renewal Portal International Limited (demo)" in page
        assert fetch(f"{base}/staff/sign-in")[0] == 200
        assert fetch(f"{base}/no-such-page")[0] == 404
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    loggers = {line["logger"] for line in lines}
    assert {"gunicorn.error", "gunicorn.access", "portal"} <= loggers  # all of them JSON
    assert any(line.get("status") == 404 and line.get("path") == "/no-such-page"
               for line in lines)
    token = german_link.rsplit("/r/", 1)[1]
    assert token not in log_path.read_text()


def test_gunicorn_stops_on_a_bad_setting(installed, operator_env):
    work, env = operator_env
    result = subprocess.run(
        ["gunicorn", "--bind", f"127.0.0.1:{free_port()}", "portal.wsgi:app"], cwd=work,
        env={**env, "FX_FEE_RATE": "abc"}, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Error: FX_FEE_RATE: 'abc' is not a decimal number" in result.stderr
