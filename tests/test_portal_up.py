"""``portal up`` on a port of its own, and a command run beside it from another folder:
with the settings ``portal up`` prints, the command's links lead to that server."""
import os
import queue
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

PORTAL = str(Path(sys.executable).parent / "portal")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lines_of(process):
    """The process's output lines, read in a thread, as a queue; and the thread."""
    lines = queue.Queue()

    def read():
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, reader


def read_until(lines, marker, seconds=120):
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"no {marker!r} in the output:\n" + "\n".join(seen))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_a_command_beside_portal_up_links_to_its_port(tmp_path):
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("STRIPE_", "PORTAL_BASE_URL", "CELERY_", "SMTP_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}", SECRET_KEY="portal-up-test",
               OUTBOX_DIR=str(tmp_path / "outbox"))
    up = subprocess.Popen([PORTAL, "up", "--port", str(port)], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, reader = lines_of(up)
    try:
        output = read_until(lines, "Portal on")
        export = next(line for line in output if "export " in line)
        settings = dict(item.split("=", 1)
                        for item in shlex.split(export.split("export ", 1)[1]))
        assert settings["PORTAL_BASE_URL"] == f"http://127.0.0.1:{port}"
        assert settings["STRIPE_API_BASE"].startswith("http://127.0.0.1:")

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        link = subprocess.run([PORTAL, "link", "SNS-100001", "--email", "it@contoso.example"],
                              cwd=elsewhere, env={**env, **settings}, capture_output=True,
                              text=True, timeout=120, check=True).stdout.strip()
        assert link.startswith(f"http://127.0.0.1:{port}/r/"), link
        try:  # the link opens the checkout on that server
            urllib.request.build_opener(NoRedirect).open(link, timeout=30)
            raise AssertionError("the link did not redirect")
        except urllib.error.HTTPError as response:
            assert response.code == 303 and response.headers["Location"].endswith("/renewal")
    finally:
        up.terminate()
        up.wait(30)
        reader.join(10)
        up.stdout.close()
