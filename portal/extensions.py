"""Flask extensions, created unbound and initialised in ``create_app``."""
import re
import sqlite3
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import registry as Registry

from portal import pgcursor
from portal.errors import PortalError
from portal.timeutil import UtcDateTime

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    # Every ``Mapped[datetime]`` column holds naive UTC (portal/timeutil.py). The map is
    # given to the registry: Flask-SQLAlchemy subclasses this base.
    registry = Registry(metadata=MetaData(naming_convention=NAMING_CONVENTION),
                        type_annotation_map={datetime: UtcDateTime})


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


#: Whether the transactions opened in this context may write. On SQLite a writing
#: transaction begins ``IMMEDIATE`` (it takes the write lock first, so it never fails
#: half-way); a reading one begins plainly and, in WAL mode, never waits for a writer.
_write_intent = ContextVar("write_intent", default=True)


class WriteLockNeeded(PortalError):
    """A SQLite transaction that began as a read tried to write while another connection
    held the write lock (or had written since it began), or a reading request on
    PostgreSQL is about to write: run the unit of work again as a writing transaction."""


@contextmanager
def _within(variable, value):
    """The block runs with the context ``variable`` set to ``value``."""
    token = variable.set(bool(value))
    try:
        yield
    finally:
        variable.reset(token)


def write_intent(writes):
    """Open the transactions of this block as writing (``True``) or reading (``False``)."""
    return _within(_write_intent, writes)


def set_write_intent(writes):
    _write_intent.set(bool(writes))


#: Whether this context is a web request that only reads (GET, HEAD, OPTIONS) on its
#: first run. On PostgreSQL its reading transactions send no BEGIN and no COMMIT
#: (autocommit: each SELECT reads what is committed, as it would inside a READ COMMITTED
#: transaction), and any statement that could write makes it run again as a writer.
_reading_request = ContextVar("reading_request", default=False)


def reading_request(reading):
    """Run the block as a web request that only reads (``True``) or not."""
    return _within(_reading_request, reading)


#: Statements a reading request may send on PostgreSQL: a SELECT that takes no row lock.
READING_STATEMENT = re.compile(r"\s*SELECT\b", re.IGNORECASE)
ROW_LOCK = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def reads_only(statement):
    """Whether ``statement`` (SQL text) only reads and locks nothing."""
    return bool(READING_STATEMENT.match(statement)) and not ROW_LOCK.search(statement)


@event.listens_for(Engine, "connect")
def _connect(dbapi_connection, _record):
    """SQLite: WAL (readers and one writer at the same time), foreign keys, and let
    SQLAlchemy (not the driver) open transactions, so savepoints and BEGIN behave as on
    PostgreSQL. PostgreSQL: the portal's cursor (``portal.pgcursor``)."""
    pgcursor.use_on(dbapi_connection)
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] not in ("wal", "memory"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no commit
        cursor.close()


@event.listens_for(Engine, "begin")
def _begin(connection):
    """SQLite: a writing transaction takes the write lock when it begins (a deferred
    transaction that read first cannot upgrade while another connection writes: it fails
    at once with "database is locked" instead of waiting its turn); a reading one begins
    deferred and, with WAL, reads its snapshot while a writer works. PostgreSQL: the
    transactions of a reading request (``reading_request``) are autocommit reads."""
    writes = _write_intent.get()
    if connection.dialect.name == "sqlite":
        connection.info["sqlite_reading"] = not writes
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
    elif connection.dialect.name == "postgresql":
        reading = _reading_request.get() and not writes
        connection.info["pg_reading"] = reading
        driver_connection = connection.connection.dbapi_connection
        if driver_connection.autocommit != reading:
            driver_connection.autocommit = reading


def commit_writes():
    """Commit what the request wrote; a reading request on PostgreSQL has written nothing
    (it would have run again as a writer), so it has nothing to commit."""
    session = db.session()
    if session.in_transaction() and session.connection().info.get("pg_reading"):
        return
    session.commit()


@event.listens_for(Engine, "before_cursor_execute")
def _reading_request_reads_only(connection, _cursor, statement, _parameters, _context,
                                _executemany):
    """A reading request on PostgreSQL that is about to write (or lock a row) runs again
    as a writer: nothing it sent has changed anything."""
    if connection.info.get("pg_reading") and not reads_only(statement):
        raise WriteLockNeeded("a reading request needs to write")


@event.listens_for(Engine, "handle_error")
def _database_fault(context):
    """Recover from faults without a restart. A connection that saw the database
    read-only, full or unreachable is dropped from the pool (SQLite keeps a connection
    opened on a read-only file read-only; PostgreSQL keeps a session opened while the
    database was read-only so), and a reading SQLite transaction that could not take the
    write lock is reported as :class:`WriteLockNeeded`, to be run again as a writer."""
    error = context.original_exception
    if context.connection is not None and context.connection.info.get("sqlite_reading") and (
            isinstance(error, sqlite3.OperationalError) and "locked" in str(error)):
        return WriteLockNeeded(str(error))
    if is_transient_fault(error):
        context.is_disconnect = True
    return None


#: PostgreSQL error codes of a database that cannot write for now.
TRANSIENT_PG_CODES = {"25006", "53100", "53200", "53300", "57P01", "57P02", "57P03"}


def is_transient_fault(error):
    """A fault of the database's state (read-only, disk full, shut down), not of the
    statement: a later try, on a new connection, can succeed."""
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return any(words in text for words in (
            "readonly database", "disk is full", "disk i/o error", "unable to open"))
    return getattr(error, "sqlstate", None) in TRANSIENT_PG_CODES  # psycopg's error code


def company():
    """The operator's company settings (``PORTAL_CONFIG``) of the running app."""
    return current_app.extensions["company"]
