"""``lock_order`` on SQLite, on a database file of its own: a reading transaction whose
snapshot is stale cannot take the write lock, so the transaction is rolled back and the
lock taken afresh; inside a savepoint that rollback would end the caller's whole
transaction, so there the refusal is raised instead."""
import sqlite3

import pytest
from sqlalchemy import select

from portal.extensions import WriteLockNeeded, db, write_intent
from portal.orders.models import Order
from portal.orders.services import lock_order
from portal.timeutil import utc_today
from tests.conftest import own_database_app
from tests.payments.test_concurrency import _card_order


@pytest.fixture
def sqlite_app(tmp_path):
    with own_database_app(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path / "instance") as app:
        with app.app_context():
            order_id, _contract_id = _card_order(utc_today())
            db.session.remove()
        yield app, order_id


def _written_by_another_connection(app, order_id):
    other = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    other.execute("update renewal_order set po_number = 'PO-2' where id = ?", (order_id,))
    other.commit()
    other.close()


def test_a_stale_read_takes_the_lock_afresh(sqlite_app):
    app, order_id = sqlite_app
    with app.app_context(), write_intent(False):
        assert db.session.scalar(select(Order.po_number).where(Order.id == order_id)) is None
        _written_by_another_connection(app, order_id)
        order = lock_order(order_id)
        assert order.po_number == "PO-2"  # read again after the lock
        db.session.rollback()


def test_inside_a_savepoint_the_refusal_is_raised_not_rolled_back(sqlite_app):
    app, order_id = sqlite_app
    with app.app_context(), write_intent(False):
        assert db.session.scalar(select(Order.po_number).where(Order.id == order_id)) is None
        _written_by_another_connection(app, order_id)
        savepoint = db.session.begin_nested()
        with pytest.raises(WriteLockNeeded):
            lock_order(order_id)
        assert savepoint.is_active and db.session().in_nested_transaction()
        db.session.rollback()
