"""A throwaway PostgreSQL server on loopback for the test suite.

PostgreSQL refuses to run as root, so as root the cluster is created and started as the
``postgres`` system user. ``TEST_DATABASE_URL`` skips all this and uses that server.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


#: The server's session time zone: far from UTC on purpose, so a timestamp taken from the
#: database clock (now(), CURRENT_TIMESTAMP) or read back in the session's zone shows up as
#: hours off instead of passing by luck. The application stores and compares UTC only.
SERVER_TIMEZONE = "America/New_York"


def _bindir():
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    return None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.bindir = _bindir()
        self.datadir = None
        self.port = None
        self.url = None

    @property
    def available(self):
        return self.bindir is not None

    def _run(self, *args):
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self):
        root = tempfile.mkdtemp(prefix="portal-pg-")
        self.datadir = os.path.join(root, "data")
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        self._root = root
        self._run("initdb", "-D", self.datadir, "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        self.port = _free_port()
        self._run(
            "pg_ctl", "-D", self.datadir, "-w", "-t", "60", "-l",
            os.path.join(self.datadir, "server.log"), "-o",
            f"-h 127.0.0.1 -p {self.port} -k {root} -c fsync=off -c max_connections=200"
            f" -c timezone={SERVER_TIMEZONE} -c log_timezone=UTC",
            "start",
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        return self.url

    def create_database(self, name):
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                                       dbname="postgres", autocommit=True)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self):
        if self.datadir:
            try:
                self._run("pg_ctl", "-D", self.datadir, "-m", "immediate", "stop")
            except subprocess.CalledProcessError:
                pass
            shutil.rmtree(self._root, ignore_errors=True)
