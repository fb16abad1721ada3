"""A throwaway Redis server on loopback (Debian's ``redis-server``) for the broker tests
and the benchmark: no persistence, its own port, stopped with the tests."""
import shutil
import socket
import subprocess
import tempfile
import time

from tests.pgserver import _free_port

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer:
    def __init__(self):
        self.process = None
        self.port = None
        self.folder = None

    @property
    def available(self):
        return shutil.which(REDIS_SERVER) is not None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=30):
        self.folder = tempfile.mkdtemp(prefix="portal-redis-")
        self.port = _free_port()
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.folder, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self.url

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
