"""Headless Chromium (Debian's package, never a downloaded browser) and a portal served on
loopback for it, shared by the browser tests. Screenshots go under test-artifacts/."""
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from portal.extensions import db
from portal.payments.emulator import LOOPBACK

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

needs_chromium = pytest.mark.skipif(not shutil.which(CHROMIUM),
                                    reason="Chromium is not installed")


@contextmanager
def serving(app, port):
    """Serve ``app`` on 127.0.0.1:``port`` in a thread until the block ends."""
    server = make_server(LOOPBACK, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser, locale="en-US"):
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.set_default_timeout(30000)  # a loaded CI machine is slow
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (one Playwright may run at a time in a process)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    with new_page(browser) as opened:
        yield opened


def screenshot(page, folder, name):
    (ARTIFACTS / folder).mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
