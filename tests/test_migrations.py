"""The Alembic migrations build exactly the schema the models describe, on both backends,
and carry the data across."""
from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from portal.extensions import db
from portal.markets.models import MarketLaunch
from portal.orders.models import AttemptState, PaymentAttempt
from portal.orders.services import place_order
from portal.renewals.services import issue_quote
from tests import factories
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


def test_0012_turns_each_orders_provider_id_into_its_first_attempt_and_back(fresh_app):
    """Downgrading keeps each order's latest provider id; upgrading again makes it the
    order's first attempt, in the state its order implies."""
    directory = fresh_app.extensions["migrate"].directory
    with fresh_app.app_context():
        upgrade(directory=directory)
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", "2026-11-20")
        plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
        today = date(2026, 11, 22)
        order = place_order(issue_quote(factories.contract(plist), today), "basic", 12,
                            "USD", "visa", contact_id=None, today=today, actor="test")
        for number, (ref, state) in enumerate(
                [("pi_declined", AttemptState.FAILED), ("pi_open", AttemptState.OPEN),
                 (None, AttemptState.UNKNOWN)], start=1):
            db.session.add(PaymentAttempt(order=order, provider="stripe", provider_ref=ref,
                                          idempotency_key=f"k-{number}", state=state,
                                          amount=order.amount_due, currency="USD"))
        db.session.commit()
        reference, amount_due = order.reference, order.amount_due
        db.session.remove()

        downgrade(directory=directory, revision="0011")
        with db.engine.connect() as connection:
            kept = connection.execute(text(
                "SELECT provider_payment_id FROM renewal_order WHERE reference = :r"),
                {"r": reference}).scalar_one()
        assert kept == "pi_open"

        upgrade(directory=directory)
        with db.engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT provider, provider_ref, idempotency_key, state, amount, currency "
                "FROM payment_attempt")).all()
        assert [tuple(row) for row in rows] == [
            ("stripe", "pi_open", f"renewal-order-{reference}-attempt-1", "open",
             amount_due, "USD")]
        downgrade(directory=directory, revision="base")
