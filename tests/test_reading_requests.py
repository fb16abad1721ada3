"""On PostgreSQL a request that only reads (GET, HEAD) sends its SELECTs without BEGIN or
COMMIT; the first statement that could write (or lock a row) stops it before it is sent,
and the request runs again from the start as a writer. Here with real commits, on a
database of the test's own."""
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text

from portal.extensions import WriteLockNeeded, db, reading_request, reads_only, write_intent
from portal.links.models import RenewalLink
from portal.links.services import issue_link
from portal.renewals.models import Quote
from portal.timeutil import utc_today
from tests import factories


@pytest.mark.parametrize("statement, reads", [
    ("SELECT 1", True),
    ("  select id FROM quote WHERE id = 1", True),
    ("SELECT id FROM renewal_order WHERE id = 1 FOR UPDATE", False),
    ("SELECT id FROM renewal_order WHERE id = 1\n FOR NO KEY UPDATE", False),
    ("SELECT id FROM renewal_order FOR SHARE SKIP LOCKED", False),
    ("INSERT INTO quote DEFAULT VALUES", False),
    ("UPDATE quote SET issued_by = 'x'", False),
    ("WITH x AS (DELETE FROM quote RETURNING id) SELECT * FROM x", False),
    ("SAVEPOINT sa_savepoint_1", False),
])
def test_what_a_reading_request_may_send(statement, reads):
    assert reads_only(statement) is reads


@pytest.fixture
def checkout(committing_app):
    """``(app, link token, contract id)`` on a committing PostgreSQL database."""
    today = utc_today()
    with committing_app.app_context():
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", today - timedelta(days=1))
        plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
        contract = factories.contract(plist, end_date=today + timedelta(days=40))
        _link, token = issue_link(contract, contract.account.contacts[0], purpose="test")
        db.session.commit()
        contract_id = contract.id
    return committing_app, token, contract_id


def _sent(app, request):
    """``(response, [(statement, autocommit)])`` of one request."""
    seen = []
    with app.app_context():
        engine = db.engine

    def record(connection, _cursor, statement, *_args):
        seen.append((statement.split(None, 1)[0].upper(),
                     connection.connection.dbapi_connection.autocommit))

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = request()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return response, seen


def test_a_page_that_only_reads_sends_its_selects_outside_a_transaction(checkout):
    app, token, contract_id = checkout
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    # Opening the link always writes (when it was opened): a writer from the start.
    response, sent = _sent(app, lambda: client.get(f"/r/{token}"))
    assert response.status_code == 303
    assert ("UPDATE", False) in sent and all(not autocommit for _verb, autocommit in sent)
    with app.app_context():
        opened = db.session.scalar(select(RenewalLink.last_opened_at))
        assert opened is not None  # committed by the writer's run
    # The first quote page view issues the quote: a writer's run again, and it is kept.
    response, sent = _sent(app, lambda: client.get("/renewal"))
    assert response.status_code == 200
    assert any(verb == "INSERT" and not autocommit for verb, autocommit in sent)
    with app.app_context():
        assert db.session.scalar(select(func.count(Quote.id))) == 1
    # Every view after it only reads: SELECTs in autocommit, nothing else at all.
    response, sent = _sent(app, lambda: client.get("/renewal"))
    assert response.status_code == 200
    assert sent and all(verb == "SELECT" and autocommit for verb, autocommit in sent)
    with app.app_context():
        assert db.session.scalar(select(func.count(Quote.id))) == 1


def test_a_form_post_and_a_command_write_in_a_transaction(checkout):
    app, _token, _contract_id = checkout
    with app.app_context():
        with db.engine.connect() as connection:  # outside any request: as before
            connection.execute(text("SELECT 1"))
            assert connection.connection.dbapi_connection.autocommit is False
        with write_intent(False), reading_request(True):  # as a GET runs first
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                assert connection.connection.dbapi_connection.autocommit is True
                with pytest.raises(WriteLockNeeded):
                    connection.execute(text("UPDATE renewal_link SET purpose = 'x'"))
            assert db.session.scalar(select(func.count(RenewalLink.id))
                                     .where(RenewalLink.purpose == "x")) == 0


def test_the_card_pages_that_always_write_are_writers_from_the_start(committing_app):
    """The card form opens the order's payment and the return page settles it: each asks
    the provider, so neither may run twice."""
    for endpoint in ("payments.pay", "payments.pay_return", "checkout.open_link"):
        assert getattr(committing_app.view_functions[endpoint], "writes", False), endpoint
    assert not getattr(committing_app.view_functions["checkout.renewal"], "writes", False)
