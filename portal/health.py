"""``/healthz``: the process answers. ``/readyz``: it can serve, because the database
answers and its schema is at the newest migration. Both are for load balancers and
orchestrators; neither touches a session or a cookie."""
from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db

bp = Blueprint("health", __name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@cache
def newest_revisions():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = {row[0] for row in connection.execute(
                text("SELECT version_num FROM alembic_version"))}
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        return {"status": "unavailable", "database": "unreachable or not migrated",
                "detail": reason[:200]}, 503
    if current != newest_revisions():
        return {"status": "unavailable", "database": "migrations pending",
                "current": sorted(current), "newest": sorted(newest_revisions())}, 503
    return {"status": "ok", "database": "ok", "migration": sorted(current)}
