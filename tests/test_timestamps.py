"""Timestamps are UTC on both backends, whatever the zone of the process or of the
database session (tests/conftest.py makes both far from UTC)."""
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from portal.audit.models import AuditEntry, record
from portal.extensions import db
from portal.timeutil import as_utc, utc_now, utc_timestamp, utc_today
from tests.conftest import TEST_DATABASE_TZ, TEST_PROCESS_TZ

#: A wall-clock time that is a different day in Tokyo and in New York.
INSTANT = datetime(2031, 3, 9, 23, 30, 15, 123456)


def _stored_text(entry_id):
    """The column as the database holds it, formatted by the database itself."""
    if db.session.get_bind().dialect.name == "postgresql":
        sql = "SELECT to_char(at, 'YYYY-MM-DD HH24:MI:SS.US') FROM audit_entry WHERE id = :id"
    else:
        sql = "SELECT strftime('%Y-%m-%d %H:%M:%f', at) FROM audit_entry WHERE id = :id"
    return db.session.execute(text(sql), {"id": entry_id}).scalar_one()


def _read_back(entry_id):
    db.session.expire_all()
    return db.session.scalar(select(AuditEntry.at).where(AuditEntry.id == entry_id))


def test_the_zones_are_hostile(app):
    """The checks below mean something only if local time is not UTC anywhere."""
    assert time.localtime(0).tm_hour == 9 and TEST_PROCESS_TZ == "Asia/Tokyo"
    assert datetime.now() - utc_now() > timedelta(hours=8, minutes=59)
    if db.session.get_bind().dialect.name == "postgresql":
        assert db.session.scalar(text("SHOW timezone")) == TEST_DATABASE_TZ
        # the database clock in this session is hours behind UTC
        local = db.session.scalar(text("SELECT LOCALTIMESTAMP"))
        assert utc_now() - local > timedelta(hours=3, minutes=59)


def test_a_timestamp_reads_back_as_the_same_utc_instant(app):
    entry = AuditEntry(actor="test", action="tz.roundtrip", at=INSTANT)
    db.session.add(entry)
    db.session.commit()
    assert _read_back(entry.id) == INSTANT
    assert _stored_text(entry.id).startswith("2031-03-09 23:30:15.123")


def test_an_aware_timestamp_is_stored_as_its_utc_instant(app):
    tokyo = INSTANT.replace(tzinfo=timezone.utc).astimezone(ZoneInfo("Asia/Tokyo"))
    new_york = INSTANT.replace(tzinfo=timezone.utc).astimezone(ZoneInfo("America/New_York"))
    assert tokyo.date() == date(2031, 3, 10) and new_york.date() == date(2031, 3, 9)
    ids = []
    for value in (tokyo, new_york):
        entry = record("test", "tz.aware")
        entry.at = value
        db.session.commit()
        ids.append(entry.id)
    for entry_id in ids:
        assert _read_back(entry_id) == INSTANT
        assert _stored_text(entry_id).startswith("2031-03-09 23:30:15")
    # a comparison in SQL against an aware value is a comparison of instants
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.id == ids[0],
                                                         AuditEntry.at == new_york)) == ids[0]


def test_a_default_timestamp_is_the_applications_utc_clock(app):
    before = utc_now()
    entry = record("test", "tz.default")
    db.session.commit()
    after = utc_now()
    stored = _read_back(entry.id)
    assert stored.tzinfo is None and before <= stored <= after
    # and SQL comparisons with the Python clock agree with it
    recent = select(AuditEntry.id).where(AuditEntry.id == entry.id,
                                         AuditEntry.at > utc_now() - timedelta(minutes=1))
    future = select(AuditEntry.id).where(AuditEntry.id == entry.id,
                                         AuditEntry.at > utc_now() + timedelta(minutes=1))
    assert db.session.scalar(recent) == entry.id and db.session.scalar(future) is None


def test_an_update_timestamp_is_the_applications_utc_clock(app):
    from tests import factories

    contract = factories.contract(factories.price_list())
    db.session.commit()
    before = utc_now()
    contract.status = "cancelled"
    db.session.commit()
    db.session.expire_all()
    assert before <= contract.updated_at <= utc_now()


@pytest.mark.parametrize("value, expected", [
    (datetime(1970, 1, 1, 0, 0, 1), 1.0),
    (datetime(2031, 3, 9, 23, 30, 15, 500000), 1930865415.5),
    (datetime(2031, 3, 10, 8, 30, 15, 500000, tzinfo=ZoneInfo("Asia/Tokyo")), 1930865415.5),
])
def test_utc_helpers_ignore_the_local_zone(value, expected):
    assert utc_timestamp(value) == expected
    assert as_utc(value).tzinfo is None


def test_today_is_the_utc_day():
    assert utc_today() == datetime.now(timezone.utc).date()
