"""The portal's psycopg cursor describes a result as psycopg does, but builds the
description only when it is read (SQLAlchemy does not read it for a statement it has run
before). On the throwaway PostgreSQL."""
import psycopg
import pytest
from sqlalchemy import select, text

from portal import pgcursor
from portal.extensions import db
from portal.links.models import RenewalLink

SAMPLE = "SELECT 1 AS one, 'x'::text AS two, now() AS three, NULL::numeric(12, 2) AS four"


@pytest.fixture
def driver_connection(committing_app):
    with committing_app.app_context():
        connection = db.engine.raw_connection()
        try:
            yield connection.driver_connection
        finally:
            connection.close()


def _described(cursor):
    return [(column.name, column.type_code, column.internal_size, column.precision,
             column.scale, column.display_size) for column in cursor.description]


def test_the_portal_connections_use_the_cursor(driver_connection):
    assert isinstance(driver_connection.cursor(), pgcursor.Cursor)


def test_a_description_is_the_one_psycopg_gives(driver_connection):
    ours = driver_connection.cursor()
    plain = psycopg.Cursor(driver_connection)
    ours.execute(SAMPLE)
    plain.execute(SAMPLE)
    assert _described(ours) == _described(plain)
    assert len(ours.description) == 4
    assert [tuple(column) for column in ours.description] == [
        tuple(column) for column in plain.description]
    assert [column[0] for column in ours.description] == ["one", "two", "three", "four"]


def test_results_without_rows_or_columns(driver_connection):
    cursor = driver_connection.cursor()
    cursor.execute("SET application_name = 'portal-test'")
    assert cursor.description is None
    cursor.execute("SELECT")  # rows, no columns: an empty description, as psycopg's
    assert cursor.description is not None and len(cursor.description) == 0
    assert list(cursor.description) == []


def test_a_description_read_after_the_cursor_moved_on_is_refused(driver_connection):
    cursor = driver_connection.cursor()
    cursor.execute(SAMPLE)
    first = cursor.description
    cursor.execute("SELECT 2 AS other")
    with pytest.raises(psycopg.InterfaceError):
        first[0]
    assert cursor.description[0].name == "other"


def test_sqlalchemy_reads_a_new_statement_and_skips_a_known_one(committing_app, monkeypatch):
    built = []
    psycopg_description = psycopg.Cursor.description

    def counted(cursor):
        built.append(cursor)
        return psycopg_description.__get__(cursor)

    monkeypatch.setattr(psycopg.Cursor, "description", property(counted))
    with committing_app.app_context():
        row = db.session.execute(text("SELECT 7 AS seven, 'y' AS why")).mappings().one()
        assert dict(row) == {"seven": 7, "why": "y"} and len(built) == 1
        statement = select(RenewalLink.id, RenewalLink.reference).where(RenewalLink.id == -1)
        db.session.execute(statement).all()
        built.clear()
        assert db.session.execute(statement).all() == []
        assert built == []  # compiled before: its columns are known without a description
        db.session.rollback()
