"""The psycopg cursor of the portal's PostgreSQL connections: its ``description`` is built
when it is read, not after every statement.

SQLAlchemy reads ``cursor.description`` after each statement; for a statement it has run
before (every page's, in a running process) it only asks whether there is one, and keeps
the columns it worked out the first time. psycopg builds one column object per column to
answer: for the checkout's link statement (53 columns) that was a tenth of the statement's
cost in the process. Here the answer is a sequence that builds the same columns on first
use, from the same result.
"""
from collections.abc import Sequence

import psycopg
from psycopg import pq

#: Result states that carry rows (psycopg gives these a description even without columns).
ROW_RESULTS = frozenset({pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE,
                         pq.ExecStatus.TUPLES_CHUNK})


class ColumnsOnUse(Sequence):
    """The columns of one result, as psycopg describes them, built the first time they are
    read (their number is known without building them). Reading them after the cursor
    has moved to another result is refused: they could only describe the new one."""

    __slots__ = ("_cursor", "_result", "_columns")

    def __init__(self, cursor, result):
        self._cursor = cursor
        self._result = result
        self._columns = None

    def _built(self):
        if self._columns is None:
            if self._cursor.pgresult is not self._result:
                raise psycopg.InterfaceError(
                    "the description of a result was read after the cursor moved on")
            self._columns = psycopg.Cursor.description.__get__(self._cursor)
        return self._columns

    def __len__(self):
        return self._result.nfields

    def __getitem__(self, index):
        return self._built()[index]

    def __repr__(self):
        return repr(self._built())


class Cursor(psycopg.Cursor):
    """psycopg's client cursor, with ``description`` built on use."""

    @property
    def description(self):
        result = self.pgresult
        if not result or not (result.nfields or result.status in ROW_RESULTS):
            return None
        return ColumnsOnUse(self, result)


def use_on(connection):
    """Give a new psycopg ``connection`` this cursor (other drivers' are left alone)."""
    if isinstance(connection, psycopg.Connection):
        connection.cursor_factory = Cursor
