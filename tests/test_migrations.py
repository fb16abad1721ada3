"""The Alembic migrations build exactly the schema the models describe, on both backends."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from portal.extensions import db
from portal.markets.models import MarketLaunch
from tests.conftest import _database_url, make_app


@pytest.fixture
def fresh_app(backend, request, tmp_path_factory):
    url = _database_url(backend, request, tmp_path_factory, "portal_migrations")
    app = make_app(url, tmp_path_factory.mktemp("instance"))
    yield app
    with app.app_context():
        db.engine.dispose()


def test_migrations_match_models_and_seed_launch_dates(fresh_app):
    with fresh_app.app_context():
        upgrade(directory=fresh_app.extensions["migrate"].directory)
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == []
        launches = {row.country: row.launch_date.isoformat()
                    for row in db.session.scalars(select(MarketLaunch))}
        assert launches["CA"] == "2013-02-08"
        assert launches["DE"] == "2013-06-10"
        assert launches["JP"] == "2013-07-15"
        assert "AQ" not in launches  # Antarctica has no online renewal
        db.session.remove()
        downgrade(directory=fresh_app.extensions["migrate"].directory, revision="base")
