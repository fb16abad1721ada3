"""Batch work lowers its own CPU priority (BATCH_NICENESS, default 10), so pages are
served first on a machine that also runs the notices job; no `nice` in front of the
command is needed. Each case runs in a process of its own: a niceness cannot be raised
back, and the test process must keep its own."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal import create_app
from portal.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

NOTICES_COMMAND = """
import os, sys
from portal import create_app
app = create_app({"DATABASE_URL": "sqlite:///" + sys.argv[1], "SECRET_KEY": "test-secret"})
with app.app_context():
    from portal.extensions import db
    db.create_all()
result = app.test_cli_runner().invoke(args=["notices", "send", "--date", "2027-01-04"])
assert result.exit_code == 0, result.output
print(os.nice(0))
"""


def run_notices_command(tmp_path, **environment):
    env = {key: value for key, value in os.environ.items() if key != "BATCH_NICENESS"}
    completed = subprocess.run(
        [sys.executable, "-c", NOTICES_COMMAND, str(tmp_path / "batch.db")],
        env={**env, **environment}, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return int(completed.stdout.split()[-1])


def test_the_notices_command_runs_at_the_batch_niceness_by_default(tmp_path):
    assert run_notices_command(tmp_path) == max(10, os.nice(0))


def test_the_batch_niceness_is_a_setting_and_zero_leaves_the_priority_alone(tmp_path):
    assert run_notices_command(tmp_path, BATCH_NICENESS="4") == max(4, os.nice(0))
    assert run_notices_command(tmp_path, BATCH_NICENESS="0") == os.nice(0)


@pytest.mark.parametrize("value", ["20", "-1", "low"])
def test_a_niceness_out_of_range_stops_the_start(value, monkeypatch):
    monkeypatch.setenv("BATCH_NICENESS", value)
    with pytest.raises(ConfigError, match="BATCH_NICENESS"):
        create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "test-secret"})
