"""Flask extensions, created unbound and initialised in ``create_app``."""
import sqlite3
from datetime import datetime

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import registry as Registry

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


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, _record):
    """SQLite: enforce foreign keys and let SQLAlchemy (not the driver) open transactions,
    so savepoints and BEGIN behave as on PostgreSQL."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    """SQLite transactions take the write lock when they begin: a deferred transaction
    that read first cannot upgrade while another connection writes, and fails at once
    with "database is locked" instead of waiting (busy_timeout) for its turn."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def company():
    """The operator's company settings (``PORTAL_CONFIG``) of the running app."""
    return current_app.extensions["company"]
