"""Operations basics: health and readiness endpoints, and one log line per failed
request, provider call and job run, in text or JSON."""
import json
import logging

import pytest

from portal import logs
from tests.conftest import make_app


@pytest.fixture
def fresh_app(tmp_path):
    """An app on an empty SQLite database that has not been migrated yet."""
    return make_app(f"sqlite:///{tmp_path / 'ready.db'}", tmp_path / "instance")


def test_healthz_answers_without_a_database(fresh_app):
    response = fresh_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers


def test_readyz_waits_for_the_migrations(fresh_app):
    client = fresh_app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"

    result = fresh_app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["database"] == "ok"


def test_readyz_reports_pending_migrations(fresh_app):
    assert fresh_app.test_cli_runner().invoke(args=["db", "upgrade", "0004"]).exit_code == 0
    response = fresh_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "migrations pending"


def test_readyz_reports_an_unreachable_database(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'missing-folder' / 'x.db'}", tmp_path / "i")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "unreachable" in response.get_json()["database"]


def test_a_failed_request_is_one_line_without_the_link_token(client, captured):
    response = client.get("/r/secret-token-value")
    assert response.status_code == 404
    lines = [r for r in captured if getattr(r, "event", None) == "request"]
    assert len(lines) == 1
    assert lines[0].path == "/r/<token>"
    assert lines[0].status == response.status_code
    assert "secret-token-value" not in logs.JsonFormatter().format(lines[0])


def test_a_successful_request_logs_nothing(client, captured):
    assert client.get("/healthz").status_code == 200
    assert not [r for r in captured if getattr(r, "event", None) == "request"]


def test_json_lines_carry_the_fields():
    record = logging.LogRecord("portal", logging.INFO, __file__, 1, "job run", None, None)
    record.event, record.job, record.counts = "job", "notices.send", {"notices": 3}
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "job run"
    assert line["job"] == "notices.send" and line["counts"] == {"notices": 3}
    assert line["time"].endswith("+00:00")
    text = logs.TextFormatter().format(record)
    assert text.endswith("job run event=job job=notices.send counts=notices:3")


def test_provider_calls_are_logged_with_the_order(captured):
    with logs.about(order="RN-1", contract="SNS-1"):
        with logs.provider_call("stripe", "PaymentIntentService.create"):
            pass
        with pytest.raises(RuntimeError):
            with logs.provider_call("stripe", "PaymentIntentService.retrieve", payment="pi_1"):
                raise RuntimeError("connection refused")
    ok, failed = [r for r in captured if getattr(r, "event", None) == "provider_call"]
    assert (ok.outcome, ok.order, ok.contract) == ("ok", "RN-1", "SNS-1")
    assert (failed.outcome, failed.payment, failed.levelno) == ("RuntimeError", "pi_1",
                                                                logging.WARNING)
    assert failed.error == "connection refused"


def test_a_job_run_is_one_line_with_its_counts(cli, captured):
    result = cli("notices", "send", "--date", "2026-11-29")
    assert result.exit_code == 0, result.output
    [line] = [r for r in captured if getattr(r, "event", None) == "job"]
    assert line.job == "notices.send"
    assert set(line.counts) == {"notices", "emails", "errors"}


def test_log_format_json_is_configured(tmp_path, capsys):
    make_app(f"sqlite:///{tmp_path / 'j.db'}", tmp_path / "i", LOG_FORMAT="json")
    logs.job_run("demo.job", {"done": 1})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["job"] == "demo.job"
    make_app(f"sqlite:///{tmp_path / 't.db'}", tmp_path / "i2")  # back to text
