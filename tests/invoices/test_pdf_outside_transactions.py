"""No invoice PDF is rendered while a payment or a refund holds its locks: the document is
numbered and stored in their transaction, its PDF made when the email is delivered
(tests/test_invoice_pdf_concurrency.py: other writes go on meanwhile)."""
import email
from datetime import timedelta
from email import policy

import pytest
from sqlalchemy import select

import portal.invoices.services as invoice_services
from portal.extensions import db
from portal.invoices.services import invoice_for
from portal.mail.models import OutboxMessage
from portal.mail.outbox import DEFERRED_HEADER, deliver_one
from portal.orders.refunds import refund_renewal
from portal.orders.services import place_order, record_payment
from portal.renewals.services import issue_quote
from portal.timeutil import utc_today
from tests import factories
from tests.checkout.conftest import PRICES
from tests.invoices.test_invoices import pdf_text


def _price_list(today):
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", today - timedelta(days=1))
    return factories.price_list("US", "USD", PRICES)


def _paid_order(price_list, today, reference="BANK-PDF-1"):
    contract = factories.contract(price_list, end_date=today + timedelta(days=40))
    order = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    record_payment(order.id, provider="offline", provider_ref=reference,
                   amount=order.amount_due, currency="USD", received_on=today, actor="desk")
    return order


@pytest.fixture
def renders(monkeypatch):
    """Every PDF rendered for an invoice or credit note, by the real renderer."""
    calls = []
    real = invoice_services.render_pdf

    def render(*args, **kwargs):
        calls.append(kwargs["doc"]["number"])
        return real(*args, **kwargs)

    monkeypatch.setattr(invoice_services, "render_pdf", render)
    return calls


def _message(kind):
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == kind))
    return row, email.message_from_bytes(row.mime, policy=policy.default)


def test_payment_and_refund_render_no_pdf_their_emails_get_it_at_delivery(app, renders):
    today = utc_today()
    order = _paid_order(_price_list(today), today)
    refund, _now = refund_renewal(order.contract_id, today, "customer", card_provider=None)
    db.session.commit()
    assert renders == []  # numbered and stored, not rendered
    invoice = invoice_for(order)
    note = f"US-{invoice.sequence + 1:06d}"
    for kind, filename, title in (
            ("payment_received", invoice.filename, f"Invoice {invoice.number}"),
            ("refund_confirmation", f"credit-note-{note}.pdf", f"Credit note {note}")):
        row, staged = _message(kind)
        (part,) = staged.iter_attachments()
        assert (part.get_filename(), part.get_content(), part[DEFERRED_HEADER] is not None) == (
            filename, b"", True)
        assert deliver_one(row.id) == "sent"
        row, delivered = _message(kind)
        (part,) = delivered.iter_attachments()
        assert part.get_filename() == filename and part[DEFERRED_HEADER] is None
        assert title in pdf_text(part.get_content())
        assert delivered["Message-ID"] == staged["Message-ID"]
        assert deliver_one(row.id) is None  # sent: a second delivery makes and sends nothing
    assert len(renders) == 2
    assert refund.amount == order.amount_due


def test_an_attachment_that_cannot_be_made_is_retried_and_the_message_kept(app, renders):
    from portal.mail.outbox import DeferredAttachment, stage_email

    row = stage_email("eva@muster.example", "test", subject="Invoice", body="Attached.",
                      attachments=[DeferredAttachment("invoice-US-999999.pdf",
                                                      "application/pdf", "billing_document",
                                                      "999999:en")])
    db.session.commit()
    staged = row.mime
    assert deliver_one(row.id) == "retry"
    db.session.refresh(row)
    assert row.status == "retry" and row.last_error == (
        "attachment: LookupError('no invoice or credit note 999999')")
    assert row.mime == staged and renders == []  # nothing sent, nothing stored half-made

