"""The database takes another connection's writes while an invoice PDF renders: the
invoice is numbered and stored in the payment's transaction and its PDF made when the
email is delivered (a database of its own whose commits are real, on both backends)."""
from datetime import timedelta

from sqlalchemy import select, text

import portal.invoices.services as invoice_services
from portal.extensions import db
from portal.invoices.models import DocumentCounter
from portal.invoices.services import invoice_for
from portal.mail.models import OutboxMessage
from portal.mail.outbox import deliver_one
from portal.timeutil import utc_today
from tests import factories
from tests.checkout.conftest import PRICES
from tests.invoices.test_pdf_outside_transactions import _paid_order
from tests.payments.conftest import stripe_emulator  # noqa: F401
from tests.payments.conftest import live_app  # noqa: F401


def _write_elsewhere(app):
    """Move the document counter from another connection, waiting at most 0.3 s for a
    lock: ``"written"``, or the database's refusal."""
    with app.app_context():
        connection = db.engine.connect()
        try:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA busy_timeout=300")
            else:
                connection.exec_driver_sql("SET lock_timeout = '300ms'")
            connection.execute(text("UPDATE document_counter SET last_number = last_number"))
            connection.commit()
            return "written"
        except Exception as error:  # noqa: BLE001  (the test reports what the database said)
            connection.rollback()
            return f"refused: {type(error).__name__}"
        finally:
            connection.close()


def test_the_database_takes_other_writes_while_the_invoice_renders(live_app, monkeypatch):
    """A payment and the delivery of its email on a database whose commits are real:
    while the invoice PDF renders, another connection writes the row every payment
    of the same party must lock (the document counter)."""
    today = utc_today()
    outcomes = []
    real = invoice_services.render_pdf

    def render(*args, **kwargs):
        outcomes.append(_write_elsewhere(live_app))
        return real(*args, **kwargs)

    with live_app.app_context():
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", today - timedelta(days=1))
        price_list = factories.price_list("US", "USD", PRICES)
        _paid_order(price_list, today, "BANK-PDF-FIRST")  # the counter row exists, committed
        db.session.commit()
        monkeypatch.setattr(invoice_services, "render_pdf", render)
        order = _paid_order(price_list, today, "BANK-PDF-SECOND")
        db.session.commit()
        for row in db.session.scalars(select(OutboxMessage).where(
                OutboxMessage.kind == "payment_received")).all():
            assert deliver_one(row.id) == "sent"
        assert outcomes == ["written", "written"]
        assert db.session.get(DocumentCounter, "us").last_number == 2
        assert invoice_for(order).sequence == 2
        db.session.remove()
