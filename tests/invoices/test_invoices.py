"""Invoices and credit notes: issued with the payment and the refund, numbered without
gaps per contracting party, attached to the emails, rendered in the email languages."""
import email
import io
import re
from datetime import timedelta
from email import policy

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from portal.extensions import db
from portal.invoices.models import BillingDocument
from portal.invoices.services import document_pdf, invoice_for
from portal.mail.models import OutboxMessage
from portal.mail.outbox import deliver_one
from portal.orders.refunds import refund_renewal
from portal.orders.services import PaymentMismatch, place_order, record_payment
from portal.renewals.services import issue_quote


def pdf_text(data):
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return re.sub(r"[\u00a0\u202f]", " ", text)


def attachment_of(kind):
    """The attachment of the one message of ``kind``, as delivered (the PDF is made then)."""
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == kind))
    assert deliver_one(row.id) == "sent"
    db.session.refresh(row)
    message = email.message_from_bytes(row.mime, policy=policy.default)
    (attachment,) = list(message.iter_attachments())
    return attachment.get_filename(), attachment.get_content()


def pay_offline(contract, today, reference, **billing):
    order = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    for name, value in billing.items():
        setattr(order, name, value)
    record_payment(order.id, provider="offline", provider_ref=reference,
                   amount=order.amount_due, currency=order.pay_currency, received_on=today,
                   actor="desk@example.com")
    db.session.commit()
    return order


def test_a_paid_order_gets_an_invoice_attached_to_its_email(make_checkout, today):
    contract, _link, _token = make_checkout(country="GB")
    order = pay_offline(contract, today, "BANK-INV-1", po_number="PO-4711",
                        tax_id="GB980780684", billing_address="Buyer Ltd\n1 High Street\nLeeds")
    invoice = invoice_for(order)
    assert invoice.number == "INTERNATIONAL-000001" and invoice.kind == "invoice"
    name, data = attachment_of("payment_received")
    assert name == "invoice-INTERNATIONAL-000001.pdf"
    text = pdf_text(data)
    for expected in ("Invoice INTERNATIONAL-000001", "Renewal Portal International Limited",
                     "IE 0000000X", "PO-4711", "GB980780684", "1 High Street",
                     contract.number, order.reference, "VS-ENT", "$450.00", "$900.00",
                     "BANK-INV-1", "Online bank transfer"):
        assert expected in text, expected


def test_numbers_run_per_party_without_gaps(make_checkout, today):
    us_first = pay_offline(make_checkout()[0], today, "BANK-US-1")
    gb = pay_offline(make_checkout(country="GB")[0], today, "BANK-GB-1")
    contract = make_checkout()[0]
    order = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    db.session.commit()
    with pytest.raises(PaymentMismatch):  # refused: no invoice, no number used
        record_payment(order.id, provider="offline", provider_ref="BANK-SHORT", amount="1.00",
                       currency="USD", received_on=today, actor="desk@example.com")
    db.session.rollback()
    record_payment(order.id, provider="offline", provider_ref="BANK-US-2",
                   amount=order.amount_due, currency="USD", received_on=today, actor="desk")
    db.session.commit()
    numbers = [invoice_for(o).number for o in (us_first, gb, order)]
    assert numbers == ["US-000001", "INTERNATIONAL-000001", "US-000002"]


def test_a_refund_gets_a_credit_note_referring_to_the_invoice(make_checkout, today):
    contract, _link, _token = make_checkout()
    order = pay_offline(contract, today, "BANK-CN-1")
    refund, _now = refund_renewal(contract.id, today, "customer", card_provider=None)
    db.session.commit()
    note = db.session.scalar(select(BillingDocument).where(BillingDocument.refund_id == refund.id))
    assert note.kind == "credit_note" and note.number == "US-000002"
    assert note.invoice.number == "US-000001" and note.invoice.order_id == order.id
    name, data = attachment_of("refund_confirmation")
    assert name == "credit-note-US-000002.pdf"
    text = pdf_text(data)
    assert "Credit note US-000002" in text and "US-000001" in text and "$900.00" in text


@pytest.mark.parametrize(("locale", "invoice_word", "credit_word"), [
    ("en", "Invoice", "Credit note"),
    ("de", "Rechnung", "Gutschrift"),
    ("ja", "請求書", "クレジットノート"),
])
def test_documents_are_rendered_in_the_email_languages(make_checkout, today, locale,
                                                      invoice_word, credit_word):
    contract, _link, _token = make_checkout()
    pay_offline(contract, today, f"BANK-{locale}")
    refund, _now = refund_renewal(contract.id, today + timedelta(days=1), "customer",
                                  card_provider=None)
    db.session.commit()
    invoice, note = db.session.scalars(select(BillingDocument).order_by(BillingDocument.id))
    assert invoice_word in pdf_text(document_pdf(invoice, locale))
    assert credit_word in pdf_text(document_pdf(note, locale))


def test_the_customer_and_staff_download_the_documents(renewed_offline, web, make_checkout,
                                                       today, sales):
    contract, order = renewed_offline()
    other = pay_offline(make_checkout()[0], today, "BANK-OTHER")
    invoice = invoice_for(order)
    page = web.get("/renewal/confirmation").get_data(as_text=True)
    assert f'data-document="invoice-{invoice.number}.pdf"' in page
    response = web.get(f"/renewal/documents/{invoice.number}.pdf?lang=de")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert f"invoice-{invoice.number}.pdf" in response.headers["Content-Disposition"]
    assert "Rechnung" in pdf_text(response.data)
    # another contract's invoice, an unknown number: not found
    assert web.get(f"/renewal/documents/{invoice_for(other).number}.pdf").status_code == 404
    assert web.get("/renewal/documents/%27%00x.pdf").status_code == 404
    staff_url = f"/staff/contracts/{contract.number}/documents/{invoice.number}.pdf"
    assert f'data-document="invoice-{invoice.number}.pdf"' in sales.get(
        f"/staff/contracts/{contract.number}").get_data(as_text=True)
    response = sales.get(staff_url + "?lang=ja")
    assert response.status_code == 200 and "請求書" in pdf_text(response.data)
    assert sales.get(f"/staff/contracts/{contract.number}/documents/"
                     f"{invoice_for(other).number}.pdf").status_code == 404


def test_a_converted_payment_shows_its_rate_and_amount_in_the_readers_format(make_checkout,
                                                                              today):
    contract, _link, _token = make_checkout(country="GB", list_code="GB", currency="GBP")
    contract.account.name = "Northwind Analytics Ltd"
    order = place_order(issue_quote(contract, today), "basic", 12, "EUR", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    order.billing_address = "northwind analytics ltd\nAccounts Payable\n14 Wellington Street"
    record_payment(order.id, provider="offline", provider_ref="BANK-FX", amount=order.amount_due,
                   currency="EUR", received_on=today, actor="desk")
    db.session.commit()
    text = pdf_text(document_pdf(invoice_for(order), "de"))
    # 900.00 GBP at 1 / 0.8412 EUR per GBP; the rate shown to six decimals, German style.
    assert "Umgerechnet in EUR zum Kurs 1,188778 1.069,90 €" in text
    assert "Währungsumrechnungsgebühr 32,10 €" in text and "Insgesamt bezahlt 1.102,00 €" in text
    # The buyer's company typed again as the address's first line is shown once.
    assert text.count("Northwind Analytics Ltd") + text.count("northwind analytics") == 1
    assert "Accounts Payable" in text


def test_the_invoice_is_rendered_in_each_of_the_11_email_locales(make_checkout, today):
    from flask_babel import force_locale, gettext

    from portal.i18n import EMAIL_LOCALES

    order = pay_offline(make_checkout()[0], today, "BANK-LOCALES")
    invoice = invoice_for(order)
    assert len(EMAIL_LOCALES) == 11
    for locale in EMAIL_LOCALES:
        with force_locale(locale):
            title, method = gettext("Invoice"), gettext("Payment method")
        text = pdf_text(document_pdf(invoice, locale))
        assert f"{title} {invoice.number}" in text and method in text, locale
        assert locale == "en" or "Payment method" not in text, locale
