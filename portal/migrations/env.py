"""Alembic environment: runs migrations against the portal's own engine and metadata."""
import logging

from alembic import context
from flask import current_app

from portal.extensions import db
from portal.timeutil import UtcDateTime

logger = logging.getLogger("alembic.env")


def render_item(type_, obj, _autogen_context):
    """Autogenerate writes the UTC timestamp type as the plain ``DateTime`` it stores."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime()"
    return False


def run_migrations_offline():
    context.configure(
        url=str(db.engine.url).replace("%", "%%"),
        target_metadata=db.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def skip_empty_autogenerate(_context, _revision, directives):
        if getattr(context.config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    options = current_app.extensions["migrate"].configure_args
    options.setdefault("process_revision_directives", skip_empty_autogenerate)
    options.setdefault("render_item", render_item)
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite rebuilds a table to change it (batch mode); with foreign keys on, the
            # rows of other tables that point at it would stop the rebuild. Off outside
            # the transaction (SQLite ignores it inside one), checked before the commit.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        context.configure(connection=connection, target_metadata=db.metadata, **options)
        try:
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration left broken references: {broken}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
