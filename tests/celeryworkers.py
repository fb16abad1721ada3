"""Real Celery worker processes (``celery -A portal.worker:celery worker``) for tests and the
benchmark: each one a process of its own, solo pool, bound to the given broker and
database through the environment, as in production."""
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Workers:
    def __init__(self, count, environment):
        self.count = count
        self.environment = environment
        self.processes = []
        self.logs = []

    def start(self):
        folder = Path(tempfile.mkdtemp(prefix="portal-workers-"))
        env = {**os.environ, **{name: str(value) for name, value in self.environment.items()}}
        for number in range(1, self.count + 1):
            log = open(folder / f"worker{number}.log", "wb")  # noqa: SIM115 (closed in stop)
            self.logs.append(log)
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal.worker:celery", "worker",
                 "--pool=solo", "--concurrency=1", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel=WARNING",
                 "-n", f"worker{number}@127.0.0.1"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        return self

    def kill(self, index):
        """SIGKILL one worker: no clean-up, no acknowledgement of its task in hand."""
        process = self.processes[index]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def alive(self):
        return [process for process in self.processes if process.poll() is None]

    def output(self):
        for log in self.logs:
            log.flush()
        return "\n".join(Path(log.name).read_text(errors="replace") for log in self.logs)

    def stop(self):
        for process in self.alive():
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for log in self.logs:
            log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
