"""Time in the portal: one clock, one zone.

The convention, on SQLite and PostgreSQL alike and whatever the zone of the server process
(``TZ``) or of the database session (``timezone``, ``PGTZ``):

- a timestamp is a *naive* ``datetime`` holding UTC, stored in a ``DateTime`` column
  without time zone (:class:`UtcDateTime`, which every ``Mapped[datetime]`` uses);
- the application's clock is the only clock: a timestamp is taken with :func:`utc_now`
  (column defaults included), never from the database (``now()``, ``CURRENT_TIMESTAMP``
  give the session's local time on PostgreSQL, and a different clock anyway), so stored
  values and the values compared with them come from the same place;
- a day ("today", a quote date) is the UTC day, :func:`utc_today`; never ``date.today()``,
  which is the server's local day.

A timezone-aware value handed to the database is converted to UTC first, so it cannot be
shifted by the session's zone on the way in.
"""
import calendar
from datetime import date, datetime, timezone

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    """The current time in UTC, naive (the form every timestamp column holds)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def utc_today() -> date:
    """Quote dates are UTC days (docs/rules.md, "Words")."""
    return datetime.now(timezone.utc).date()


def as_utc(value):
    """``value`` as a naive UTC datetime: an aware one is converted, a naive one is taken
    to be UTC already (the convention), None stays None."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def utc_timestamp(value) -> float:
    """POSIX seconds of a naive UTC datetime (``datetime.timestamp()`` would read a naive
    value as the server's local time)."""
    value = as_utc(value)
    return calendar.timegm(value.timetuple()) + value.microsecond / 1_000_000


class UtcDateTime(TypeDecorator):
    """A ``DateTime`` without time zone that only ever holds UTC.

    In: an aware value is converted to UTC and made naive (the driver would otherwise send
    it with its offset and PostgreSQL would store it in the *session's* zone; SQLite would
    store the offset in the text and break comparisons). Out: the naive UTC value as
    stored; an aware one (a ``timestamptz`` expression) is converted to naive UTC.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if isinstance(value, datetime):
            return as_utc(value)
        return value

    def process_result_value(self, value, dialect):
        if isinstance(value, datetime):
            return as_utc(value)
        return value


__all__ = ["utc_now", "utc_today", "as_utc", "utc_timestamp", "UtcDateTime"]
