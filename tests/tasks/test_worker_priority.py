"""A worker process lowers its own CPU priority to BATCH_NICENESS as it starts (started
exactly as docs/deploy.md starts it, with no `nice` in front)."""
from pathlib import Path

from portal.celery_app import workers_ready
from tests.tasks.conftest import wait_for


def niceness(pid):
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_a_worker_runs_at_the_batch_niceness(broker_app, workers):
    with broker_app.app_context():
        group = workers(1, BATCH_NICENESS=6)
        wait_for(lambda: workers_ready(1), 120, "the worker listening", group)
        (process,) = group.processes
        assert niceness(process.pid) == 6
