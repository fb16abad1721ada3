"""The quote page keeps the exchange rates and product names it read under their version
tokens (``portal.dataversion``): every write to their tables, by any path, replaces the
token, so the next view reads them again; while nothing changes, a view reads neither."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select, text

from portal.dataversion import DataVersion, VersionedCache
from portal.extensions import db
from portal.rates.services import RATE_TABLES, upsert_rates
from portal.renewals.rules import Rate
from portal.renewals.services import PRODUCT_NAMES
from tests import factories


def tokens():
    db.session.rollback()
    return dict(db.session.execute(select(DataVersion.kind, DataVersion.token)).all())


@pytest.fixture
def cold_caches():
    RATE_TABLES.clear()
    PRODUCT_NAMES.clear()
    yield
    RATE_TABLES.clear()
    PRODUCT_NAMES.clear()


def test_every_write_to_a_versioned_table_replaces_its_token_and_only_its_own(app, today):
    before = tokens()
    assert set(before) == {"rates", "products"} and all(before.values())

    factories.rate("GBP", "0.8412", today)  # through the ORM
    db.session.commit()
    after_insert = tokens()
    assert after_insert["rates"] != before["rates"]
    assert after_insert["products"] == before["products"]

    db.session.execute(text("UPDATE exchange_rate SET per_eur = 0.85"))  # plain SQL
    db.session.commit()
    after_update = tokens()
    assert after_update["rates"] != after_insert["rates"]

    db.session.execute(text("DELETE FROM exchange_rate"))
    db.session.commit()
    assert tokens()["rates"] != after_update["rates"]

    factories.product("NEW-1", "Something new")
    db.session.commit()
    after_product = tokens()
    assert after_product["products"] != before["products"]
    db.session.execute(text("UPDATE product SET name = 'Renamed' WHERE code = 'NEW-1'"))
    db.session.commit()
    assert tokens()["products"] != after_product["products"]


def test_a_statement_that_writes_no_row_leaves_the_tokens(app):
    """Re-importing an unchanged book inserts no product: its token must stay."""
    before = tokens()
    db.session.execute(text("INSERT INTO product (code, name) SELECT code, name FROM product "
                            "WHERE 1 = 0"))
    db.session.execute(text("UPDATE exchange_rate SET per_eur = 1 WHERE 1 = 0"))
    db.session.execute(text("DELETE FROM product WHERE 1 = 0"))
    db.session.commit()
    assert tokens() == before


def test_nothing_is_replaced_by_a_write_that_is_rolled_back(app, today):
    before = tokens()
    factories.rate("GBP", "0.8412", today)
    db.session.flush()
    db.session.rollback()
    assert tokens() == before


def _reads(app, web, path):
    """``(page, statements that read rates or product names)`` of one view."""
    seen = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = web.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 200
    reads = ["rates" if "FROM exchange_rate" in s else "names" for s in seen
             if "FROM exchange_rate" in s or "FROM product" in s]
    return response.get_data(as_text=True), sorted(set(reads))


def test_a_view_reads_rates_and_names_again_only_after_they_changed(
        app, web, make_checkout, today, cold_caches):
    _contract, _link, token = make_checkout()
    db.session.commit()
    web.get(f"/r/{token}")
    first, reads = _reads(app, web, "/renewal?pay_currency=GBP")
    assert reads == ["names", "rates"]  # of the quote date, of the quote's products
    assert "Vault Server Enterprise II" not in first
    again, reads = _reads(app, web, "/renewal?pay_currency=GBP")
    assert reads == [] and again == first

    # A rename through plain SQL shows on the next view.
    with app.app_context():
        db.session.execute(text("UPDATE product SET name = 'Vault Server Enterprise II' "
                                "WHERE code = 'VS-ENT'"))
        db.session.commit()
    renamed, reads = _reads(app, web, "/renewal?pay_currency=GBP")
    assert reads == ["names"] and "Vault Server Enterprise II" in renamed

    # So does a rate replaced for the same day: the amounts in GBP change.
    with app.app_context():
        upsert_rates([Rate("GBP", Decimal("0.9100"), today - timedelta(days=1))], "test")
        db.session.commit()
    repriced, reads = _reads(app, web, "/renewal?pay_currency=GBP")
    assert reads == ["rates"] and repriced != renamed

    # What the warm page shows is what a process with nothing kept shows.
    RATE_TABLES.clear()
    PRODUCT_NAMES.clear()
    cold, reads = _reads(app, web, "/renewal?pay_currency=GBP")
    assert reads == ["names", "rates"] and cold == repriced


def test_the_cache_reads_every_time_without_a_token_and_keeps_a_bounded_number():
    calls = []
    cache = VersionedCache(size=2)

    def read(value):
        calls.append(value)
        return value

    assert cache.get(None, "a", lambda: read(1)) == 1
    assert cache.get(None, "a", lambda: read(2)) == 2  # no token: nothing kept
    assert cache.get("t1", "a", lambda: read(3)) == 3
    assert cache.get("t1", "a", lambda: read(4)) == 3  # kept under t1
    assert cache.get("t2", "a", lambda: read(5)) == 5  # another token: read again
    assert cache.get("t1", "b", lambda: read(6)) == 6  # third entry: ("t1", "a") dropped
    assert cache.get("t1", "a", lambda: read(7)) == 7
    assert calls == [1, 2, 3, 5, 6, 7]


def test_a_schema_without_version_rows_still_shows_the_page(
        app, web, make_checkout, cold_caches):
    _contract, _link, token = make_checkout()
    db.session.execute(DataVersion.__table__.delete())
    db.session.commit()
    web.get(f"/r/{token}")
    page, reads = _reads(app, web, "/renewal")
    assert reads == ["names", "rates"] and "VS-ENT" in page
    page, reads = _reads(app, web, "/renewal")
    assert reads == ["names", "rates"]  # no token, nothing kept
