"""Fixtures of the mail tests."""
import pytest

from tests.smtpsink import SmtpSink


@pytest.fixture
def smtp(app, monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "SMTP_URL", sink.url)
        monkeypatch.setitem(app.config, "SMTP_TIMEOUT_SECONDS", 5)
        yield sink.handler
