"""The database layer under faults and concurrency, on a SQLite file of its own (the
``app`` fixture's rolled-back transaction would hold the write lock for the whole test):

- WAL: a reading transaction reads while another connection holds the write lock;
- a reading request that must write after another connection wrote runs again as a
  writer, instead of failing with "database is locked";
- a connection that saw the database read-only is dropped, so the worker recovers by
  itself;
- a command's database error names the real cause.
"""
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from portal import cli as portal_cli
from portal.extensions import WriteLockNeeded, db, write_intent
from tests.conftest import make_app


@pytest.fixture
def file_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'faults.db'}", tmp_path / "instance")
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("create table counter (n integer not null)"))
            connection.execute(text("insert into counter values (0)"))
    yield app
    with app.app_context():
        db.engine.dispose()


def _holding_the_write_lock(app, release):
    """Take SQLite's write lock in another thread and keep it until ``release`` is set."""
    taken = threading.Event()

    def hold():
        with app.app_context(), write_intent(True), db.engine.begin() as connection:
            connection.execute(text("update counter set n = n + 1"))
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    return thread


def test_the_database_is_in_wal_mode_and_reads_do_not_wait_for_a_writer(file_app):
    release = threading.Event()
    writer = _holding_the_write_lock(file_app, release)
    try:
        with file_app.app_context(), write_intent(False):
            started = time.monotonic()
            assert db.session.execute(text("pragma journal_mode")).scalar() == "wal"
            assert db.session.execute(text("select n from counter")).scalar() == 0
            db.session.rollback()
            assert time.monotonic() - started < 1  # the snapshot, not the writer's turn
    finally:
        release.set()
        writer.join()


def test_a_read_that_must_write_after_another_writer_asks_to_be_run_as_a_writer(file_app):
    with file_app.app_context(), write_intent(False):
        assert db.session.execute(text("select n from counter")).scalar() == 0
        other = sqlite3.connect(file_app.config["DATABASE_URL"].removeprefix("sqlite:///"))
        other.execute("update counter set n = 10")
        other.commit()
        other.close()
        with pytest.raises(WriteLockNeeded):
            db.session.execute(text("update counter set n = n + 1"))
        db.session.rollback()


def test_a_reading_request_that_writes_runs_again_as_a_writer(file_app):
    attempts = []

    def bump():
        n = db.session.execute(text("select n from counter")).scalar()
        attempts.append(n)
        if len(attempts) == 1:  # another worker writes between this read and its write
            other = sqlite3.connect(file_app.config["DATABASE_URL"].removeprefix("sqlite:///"))
            other.execute("update counter set n = n + 100")
            other.commit()
            other.close()
        db.session.execute(text("update counter set n = n + 1"))
        db.session.commit()
        return "ok"

    file_app.add_url_rule("/bump", "bump", bump)
    response = file_app.test_client().get("/bump")
    assert response.status_code == 200 and attempts == [0, 100]
    with file_app.app_context():
        assert db.session.execute(text("select n from counter")).scalar() == 101


def _recovers_from_a_connection_stuck_read_only(engine, stick, refused, match):
    """``stick(connection)`` leaves a pooled connection read-only: the write that meets it
    is refused (``refused`` matching ``match``) and the connection dropped, so the next
    transaction works without a restart."""
    with engine.connect() as connection:  # the pool keeps this connection...
        stick(connection)  # ...stuck read-only
    with pytest.raises(refused, match=match):
        with engine.begin() as connection:
            connection.execute(text("update counter set n = 1"))
    # The database is writable again: the next transaction works, no restart needed.
    with engine.begin() as connection:
        connection.execute(text("update counter set n = 2"))
    with engine.connect() as connection:
        assert connection.execute(text("select n from counter")).scalar() == 2


def test_a_connection_that_saw_the_database_read_only_is_dropped(file_app):
    with file_app.app_context():
        _recovers_from_a_connection_stuck_read_only(
            db.engine, lambda connection: connection.exec_driver_sql("pragma query_only = on"),
            OperationalError, "readonly")


def _read_only_session(connection):
    """As a connection opened on a standby stays."""
    connection.exec_driver_sql("set session characteristics as transaction read only")
    connection.commit()


def test_a_postgresql_connection_that_saw_the_database_read_only_is_dropped(committing_app):
    with committing_app.app_context():
        engine = db.engine
        with engine.begin() as connection:
            connection.execute(text("create table counter (n integer not null)"))
            connection.execute(text("insert into counter values (0)"))
        _recovers_from_a_connection_stuck_read_only(engine, _read_only_session, DBAPIError,
                                                    "read-only")
        with engine.begin() as connection:
            connection.execute(text("drop table counter"))


@pytest.mark.parametrize("reason, expected", [
    ("database or disk is full", "the database cannot be written now (database or disk is full)"),
    ("attempt to write a readonly database", "the database cannot be written now"),
    ("no such table: notice_record", "run 'portal db upgrade'"),
    ("near \"x\": syntax error", "database error (near \"x\": syntax error)"),
])
def test_a_command_names_the_real_database_fault(monkeypatch, capsys, tmp_path, reason,
                                                expected):
    def failing(*_args, **_kwargs):
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError(reason))

    monkeypatch.setattr("portal.notices.cli.send_notices", failing)
    monkeypatch.setattr(portal_cli, "_create_app", lambda: make_app(
        f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "instance"))
    with pytest.raises(SystemExit) as exit_status:
        portal_cli.main(["notices", "send"])
    error = capsys.readouterr().err
    assert exit_status.value.code == 1 and expected in error
    assert error.count("\n") == 1  # one line
    if "upgrade" not in expected:
        assert "portal db upgrade" not in error
