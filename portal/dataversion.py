"""Versions of reference data (exchange rates, product names) that pages read on every view
and that change a few times a day at most.

The database keeps, per kind, a version token that triggers replace on every insert,
update or delete of the kind's table, whoever writes it (a service, an import's set-based
SQL, a hand-made fix). A page reads the tokens in the statement it sends anyway and keeps
what it read under them in ``VersionedCache``: an entry is used only under the token it
was read with, so a change is seen by the next view in every process, and nothing is kept
for a page that gets no token (no version row).

Tokens are random rather than counted so that two databases (or one rebuilt) never hand
out the same token for different data.
"""
import threading
from collections import OrderedDict

from sqlalchemy import DDL, String, event, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

#: kind -> the table whose rows it versions.
VERSIONED_TABLES = {"rates": "exchange_rate", "products": "product"}


class DataVersion(db.Model):
    __tablename__ = "data_version"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


def token_column(kind):
    """The ``kind``'s current token (NULL without a version row), as a column of a query."""
    return (select(DataVersion.token).where(DataVersion.kind == kind)
            .scalar_subquery().label(f"{kind}_version"))


def _sqlite_statements(kind, table):
    bump = (f"UPDATE data_version SET token = lower(hex(randomblob(16))) "
            f"WHERE kind = '{kind}'")
    return [f"CREATE TRIGGER {table}_{action}_version AFTER {action.upper()} ON {table} "
            f"BEGIN {bump}; END" for action in ("insert", "update", "delete")]


POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION bump_data_version() RETURNS trigger AS $$
BEGIN
    UPDATE data_version SET token = md5(random()::text || clock_timestamp()::text)
    WHERE kind = TG_ARGV[0];
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""


def _postgresql_statements(kind, table):
    # Per row, like SQLite's: a statement that writes no row (an INSERT ... WHERE NOT
    # EXISTS finding nothing new) leaves the token as it is.
    return [f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION bump_data_version('{kind}')",
            f"CREATE TRIGGER {table}_truncate_version AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('{kind}')"]


def install_statements(dialect_name):
    """The SQL that seeds the version rows and installs the triggers, for a dialect."""
    if dialect_name == "postgresql":
        seed = "md5(random()::text || clock_timestamp()::text)"
        statements = [POSTGRESQL_FUNCTION]
        per_table = _postgresql_statements
    else:
        seed = "lower(hex(randomblob(16)))"
        statements = []
        per_table = _sqlite_statements
    for kind, table in VERSIONED_TABLES.items():
        statements.append(f"INSERT INTO data_version (kind, token) VALUES ('{kind}', {seed})")
        statements += per_table(kind, table)
    return statements


@event.listens_for(db.metadata, "after_create")
def _install(metadata, connection, tables=(), **kwargs):
    """``create_all`` (tests, a first start without migrations) installs what migration
    0017 installs, when it created the version table."""
    if DataVersion.__table__ not in tables:
        return
    for statement in install_statements(connection.dialect.name):
        connection.execute(DDL(statement.replace("%", "%%")))


class VersionedCache:
    """Values kept under the token they were made with (a data version, the secret key
    that checked a cookie, one constant for page pieces); at most ``size`` entries, the
    least recently used dropped first."""

    def __init__(self, size):
        self.size = size
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token, key, read):
        """The value for ``key`` read under ``token``, calling ``read()`` when none is
        kept; with no token (None) always ``read()``, keeping nothing."""
        if token is None:
            return read()
        with self._lock:
            value = self._entries.get((token, key))
            if value is not None:
                self._entries.move_to_end((token, key))
                return value
        value = read()
        with self._lock:
            self._entries[(token, key)] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self):
        with self._lock:
            self._entries.clear()

    def __len__(self):
        return len(self._entries)
