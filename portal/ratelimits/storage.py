"""A storage for the ``limits`` library (and so Flask-Limiter) in the portal's database.

Gunicorn runs several worker processes, often on several machines; a counter in one
worker's memory lets each of them allow the full limit. Without Redis the one store
they all share is the database, so ``portal-db://`` keeps each fixed window as a row of
``rate_limit_counter``, counted by one atomic upsert on its own short connection (never
inside the request's transaction); on SQLite in a file beside the portal's database. Set ``RATELIMIT_STORAGE_URI=redis://host:6379`` to
count in Redis instead (the ``redis`` extra of the package).
"""
import random
import time

from flask import current_app
from limits.storage import Storage
from sqlalchemy import case, create_engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import write_intent
from portal.ratelimits.models import RateLimitCounter

SCHEME = "portal-db"
#: About one upsert in this many also removes windows that ended an hour ago or more.
PURGE_ONE_IN = 200


#: Beside a SQLite database file, the counters are kept in a file of their own.
SQLITE_SIBLING = "-ratelimits"


def _engine():
    """Where the counters are written. PostgreSQL: the portal's database (a counter's
    upsert locks one row of its own). SQLite: a database file beside the portal's, since
    SQLite has one write lock per file and a writing request holds the portal file's from
    its first statement: a counter written there on another connection would wait for the
    request it counts (and, after the busy timeout, fail open)."""
    engine = current_app.extensions["sqlalchemy"].engine
    if engine.dialect.name != "sqlite" or not engine.url.database or (
            engine.url.database == ":memory:"):
        return engine
    siblings = current_app.extensions.setdefault("ratelimit_engines", {})
    path = engine.url.database + SQLITE_SIBLING
    if path not in siblings:
        sibling = create_engine(engine.url.set(database=path))
        RateLimitCounter.__table__.create(sibling, checkfirst=True)
        siblings[path] = sibling
    return siblings[path]


class DatabaseStorage(Storage):
    STORAGE_SCHEME = [SCHEME]

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    def incr(self, key, expiry, amount=1):
        """Count ``amount`` hits in ``key``'s window, opening a new window of ``expiry``
        seconds when the last one has ended; returns the hits in the window."""
        now = time.time()
        table = RateLimitCounter.__table__
        engine = _engine()
        insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        ended = table.c.expires_at <= now
        statement = insert(table).values(key=key, hits=amount, expires_at=now + expiry)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"hits": _case(ended, amount, table.c.hits + amount),
                  "expires_at": _case(ended, now + expiry, table.c.expires_at)},
        ).returning(table.c.hits)
        with write_intent(True), engine.begin() as connection:
            hits = connection.execute(statement).scalar_one()
            if random.randrange(PURGE_ONE_IN) == 0:
                connection.execute(delete(table).where(table.c.expires_at < now - 3600))
        return hits

    def get(self, key):
        row = self._row(key)
        return row.hits if row is not None and row.expires_at > time.time() else 0

    def get_expiry(self, key):
        row = self._row(key)
        return row.expires_at if row is not None else time.time()

    def _row(self, key):
        table = RateLimitCounter.__table__
        with write_intent(False), _engine().connect() as connection:
            return connection.execute(
                select(table.c.hits, table.c.expires_at).where(table.c.key == key)).first()

    def check(self):
        try:
            with _engine().connect() as connection:
                connection.exec_driver_sql("select 1")
        except SQLAlchemyError:
            return False
        return True

    def reset(self):
        with write_intent(True), _engine().begin() as connection:
            return connection.execute(delete(RateLimitCounter.__table__)).rowcount

    def clear(self, key):
        table = RateLimitCounter.__table__
        with write_intent(True), _engine().begin() as connection:
            connection.execute(delete(table).where(table.c.key == key))


def _case(condition, then, otherwise):
    return case((condition, then), else_=otherwise)
