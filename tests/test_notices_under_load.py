"""The notices job on 2,000 due contracts while 16 clients load the quote page (gunicorn,
2 workers, SQLite in WAL mode): no 5xx, no socket errors, nothing logged by the server,
and the page keeps at least half of its throughput alone. The job is started as a
deployment starts it (`portal notices send`, no `nice` in front): it lowers its own CPU
priority to BATCH_NICENESS. benchmarks/notices_under_load.py
does the work and prints the same figures when run by hand."""
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from notices_under_load import measure  # noqa: E402


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_the_quote_page_keeps_serving_while_the_notices_job_runs():
    # Paired windows (job stopped / running, alternating) so that the other tests running
    # beside this one weigh on both figures alike.
    figures = measure(contracts=2000, seconds=12, connections=16, workers=2, rounds=3)
    shown = json.dumps(figures)
    assert figures["job_running_during_load"], shown
    assert figures["job_niceness"] == 10, shown  # the portal's default, set by the job itself
    for run in ("alone", "with_job"):
        assert figures[run]["errors"] == 0 and figures[run]["socket_errors"] == 0, shown
    assert figures["server_errors"] == 0, shown
    assert figures["ratio"] >= 0.5, shown
