"""Test fixtures: the app on SQLite and on PostgreSQL, each test in a rolled-back transaction.

Every test that uses ``app`` (or ``db_session``, ``client``, ``cli``) runs once per
database backend. Set ``PORTAL_TEST_BACKENDS=sqlite`` to run on SQLite only; CI runs both,
and a missing PostgreSQL is an error there rather than a skip.

Time zones are hostile on purpose, set here before anything else is imported: the test
process runs in ``Asia/Tokyo`` (UTC+9) and every PostgreSQL session in
``America/New_York`` (UTC-5/-4; the throwaway server's ``timezone`` and ``PGTZ`` for a
``TEST_DATABASE_URL``). Timestamps are UTC (portal/timeutil.py), so a local clock or the
database clock that slips in shows up as hours off instead of passing by luck.
"""
import os
import time

TEST_PROCESS_TZ = "Asia/Tokyo"
os.environ["TZ"] = TEST_PROCESS_TZ
time.tzset()

from tests.pgserver import SERVER_TIMEZONE as TEST_DATABASE_TZ  # noqa: E402  (stdlib only)

os.environ["PGTZ"] = TEST_DATABASE_TZ
# Rate limits count in memory here: each test runs inside one transaction that holds the
# database's write lock (SQLite), which the shared counters' own connection would wait
# for. tests/test_faults.py counts them in the database, across gunicorn workers.
os.environ.setdefault("RATELIMIT_STORAGE_URI", "memory://")

import ipaddress  # noqa: E402
import logging  # noqa: E402
from contextlib import contextmanager  # noqa: E402
import socket  # noqa: E402

import pytest  # noqa: E402
from flask_sqlalchemy.session import Session as FlaskSession  # noqa: E402
from portal import create_app, logs  # noqa: E402
from portal.i18n.tools import compile_all  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.markets.services import seed_launch_dates  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

BACKENDS = os.environ.get("PORTAL_TEST_BACKENDS", "sqlite,postgresql").split(",")


# --- no network beyond loopback ---

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = host == "localhost"
        if not allowed:
            raise RuntimeError(f"test tried to reach {host}: only loopback is allowed")
    return _real_connect(self, address)



def pytest_configure(config):
    """Compile the catalogs once, in the controlling process, before any worker starts
    (the install does the same; this keeps a run after editing a catalog honest)."""
    if not hasattr(config, "workerinput"):
        compile_all()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


# --- databases ---


@pytest.fixture(scope="session")
def postgres_server():
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    yield from throwaway_server(PostgresServer(), "PostgreSQL")


def throwaway_server(server, name):
    """Start a server of the suite's own (skipped when not installed, except on CI), yield
    it, stop it."""
    if not server.available:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; CI must test on it")
        pytest.skip(f"{name} is not installed")
    server.start()
    yield server
    server.stop()


def _database_url(backend, request, tmp_path_factory, name):
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp(name) / 'portal.db'}"
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    server = request.getfixturevalue("postgres_server")
    return server.create_database(name)


def make_app(database_url, instance_path, **overrides):
    config = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        "PORTAL_BASE_URL": "http://127.0.0.1:5000",
        # Commands run in this process (the CLI runner) would lower its CPU priority for
        # good; tests of BATCH_NICENESS run their commands and workers as processes.
        "BATCH_NICENESS": 0,
        **overrides,
    }
    app = create_app(config)
    app.instance_path = str(instance_path)
    return app


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="session")
def base_app(backend, request, tmp_path_factory):
    """One migrated database per backend for the whole session."""
    url = _database_url(backend, request, tmp_path_factory, "portal_test")
    app = make_app(url, tmp_path_factory.mktemp("instance"))
    with app.app_context():
        db.create_all()  # tests/test_migrations.py proves the migrations build the same schema
        seed_launch_dates()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


class _ConnectionBoundSession(FlaskSession):
    """Flask-SQLAlchemy's session picks the app's engine for every model and ignores
    ``bind``; use the test's connection, or commits would escape the rolled-back
    transaction."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return bind or self.bind


@pytest.fixture
def app(base_app):
    """The app inside one transaction that is rolled back after the test.

    Code under test may commit: with ``create_savepoint`` its commits release savepoints
    inside the outer transaction, which the fixture rolls back.
    """
    with base_app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        db.session = db._make_scoped_session(
            {"bind": connection, "join_transaction_mode": "create_savepoint",
             "class_": _ConnectionBoundSession}
        )
        try:
            yield base_app
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@contextmanager
def own_database_app(url, instance_path, **overrides):
    """An app on a database of its own whose commits are real, for tests where threads
    must see each other's work: schema created and launch dates seeded, emptied after."""
    app = make_app(url, instance_path, **overrides)
    with app.app_context():
        db.create_all()
        seed_launch_dates()
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def committing_app(request, tmp_path):
    """``own_database_app`` on the throwaway PostgreSQL; skipped without it."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not among the test backends")
    server = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("needs the throwaway PostgreSQL server")
    name = "committing_" + request.module.__name__.rpartition(".")[2]
    with own_database_app(server.create_database(name), tmp_path) as app:
        yield app


@pytest.fixture
def captured():
    """The ``portal`` logger's records."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    logs.LOGGER.addHandler(handler)
    yield records
    logs.LOGGER.removeHandler(handler)


@pytest.fixture
def db_session(app):
    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def cli(app):
    """Invoke ``portal`` commands in the test transaction: ``cli("quote", "SNS-1", "--json")``."""
    runner = app.test_cli_runner(mix_stderr=False) if _runner_takes_mix_stderr() else (
        app.test_cli_runner()
    )

    def invoke(*args, input=None):
        return runner.invoke(args=list(args), input=input)

    return invoke


def _runner_takes_mix_stderr():
    import inspect

    from click.testing import CliRunner

    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters
