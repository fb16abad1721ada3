"""The page layout of the PDFs: a combined order's invoice of up to about six contracts
fits one A4 page; a longer invoice, credit note or quote goes on over more pages, each
repeating its table's header and splitting neither a row nor a contract, with the closing
part (payment, questions, the demo notice) once, at the end, never alone on a page."""
import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader

from portal.checkout.services import fresh_quote
from portal.extensions import db
from portal.invoices.services import credit_note_for, document_pdf, invoice_for
from portal.links.services import link_url
from portal.notices.services import notice_context, quote_pdf
from portal.orders.refunds import refund_renewal
from portal.orders.services import place_combined_order, place_order, record_payment
from portal.renewals.services import issue_quote
from tests import factories

BILLING_ADDRESS = "Accounts Payable\n1 Main Street\nSpringfield, IL 62701\nUnited States"
DEMO_NOTICE = "Demo: the company names and accounts on this site are not real."


def page_texts(data):
    return [re.sub(r"[\u00a0\u202f]", " ", page.extract_text())
            for page in PdfReader(io.BytesIO(data)).pages]


def pay(order, today, reference):
    record_payment(order.id, provider="offline", provider_ref=reference,
                   amount=order.amount_payable, currency=order.pay_currency,
                   received_on=today, actor="desk")
    db.session.commit()


def combined_invoice(make_checkout, today, count):
    """The invoice of one bank transfer for ``count`` contracts of an account, the last
    one lapsed (so it has the back-dated and reinstatement fees), with a billing address,
    a tax number and a purchase order number: ``(contracts, invoice)``."""
    lead, _link, _token = make_checkout(45)
    ends = [today + timedelta(days=20 + n) for n in range(count - 2)]
    contracts = [lead] + [
        factories.contract(lead.price_list, account=lead.account, end_date=end,
                           lines=[("VS-ENT", 1 + n % 3)])
        for n, end in enumerate([*ends, today - timedelta(days=10)])]
    orders = place_combined_order([(fresh_quote(c, today), "basic", 12) for c in contracts],
                                  "USD", "bank_transfer", contact_id=None, today=today,
                                  actor="test")
    payer = orders[0]
    payer.billing_address, payer.po_number, payer.tax_id = BILLING_ADDRESS, "PO-42", "12-3456789"
    pay(payer, today, f"BANK-{count}")
    return contracts, invoice_for(payer)


def assert_closing_once_at_the_end(texts, closing):
    for text in closing:
        assert "\n".join(texts).count(text) == 1 and text in texts[-1], text


@pytest.mark.parametrize(("count", "pages"), [(3, 1), (6, 1), (10, 2)])
def test_a_combined_invoice_fits_its_pages(make_checkout, today, count, pages):
    contracts, invoice = combined_invoice(make_checkout, today, count)
    texts = page_texts(document_pdf(invoice, "en"))
    assert len(texts) == pages
    text = "\n".join(texts)
    for contract in contracts:
        assert text.count(f"Contract number: {contract.number}") == 1
    assert "Back-dated fee" in text and "Reinstatement fee" in text
    total = f"Total paid ${invoice.total:,.2f}"
    assert text.count(total) == 1 and total in texts[-1]
    # Each page has the table's header and a contract, with the amount due of each of its
    # contracts on it (no contract split); the total and the closing part come last.
    for page in texts:
        assert "Product Code Quantity Unit price Amount" in page
        assert page.count("Contract number: ") == page.count("Amount due") > 0
    assert_closing_once_at_the_end(texts, ("Payment method: ", DEMO_NOTICE))


LONG = [f"P-{n:02d}" for n in range(45)]


@pytest.fixture
def long_contract(make_checkout, today):
    """A paid contract of 45 products, refunded, so it has an invoice and a credit note."""
    prices = {(code, level, term): "10.00" for code in LONG
              for level in ("basic", "production") for term in (12, 36)}
    contract, link, token = make_checkout(45, prices=prices, lines=[(code, 1) for code in LONG])
    order = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    order.billing_address = BILLING_ADDRESS
    pay(order, today, "BANK-LONG")
    refund, _now = refund_renewal(contract.id, today, "customer", card_provider=None)
    db.session.commit()
    return contract, link, token, order, refund


def assert_rows_whole(texts, codes, per_row):
    """Each product's row (its name and code: ``per_row`` mentions) is on one page."""
    for code in codes:
        counts = [len(re.findall(rf"\b{code}\b", page)) for page in texts]
        assert sorted(counts)[-1] == per_row and sum(counts) == per_row, (code, counts)


@pytest.mark.parametrize("kind", ["invoice", "credit note"])
def test_a_long_invoice_or_credit_note_repeats_its_header(long_contract, kind):
    _contract, _link, _token, order, refund = long_contract
    document = invoice_for(order) if kind == "invoice" else credit_note_for(refund)
    texts = page_texts(document_pdf(document, "en"))
    assert len(texts) == 3
    for page in texts:
        assert "Product Code Quantity Unit price Amount" in page
    assert_rows_whole(texts, LONG, per_row=2)
    closing = "Total paid $450.00" if kind == "invoice" else "Amount credited $450.00"
    assert_closing_once_at_the_end(texts, (closing, "Payment method: ", DEMO_NOTICE))


def test_a_long_quote_repeats_its_headers_and_ends_with_its_closing_part(long_contract,
                                                                          today):
    contract, link, token, _order, _refund = long_contract
    contact = contract.primary_contact
    context = notice_context(contract, issue_quote(contract, today), 30, contact, link,
                             link_url(token))
    texts = page_texts(quote_pdf(context, "en"))
    assert len(texts) == 3
    for page in texts:
        assert ("Product Code Quantity" in page
                or "Service level Term Period Total" in page)
    assert_rows_whole(texts, LONG, per_row=2)
    # The closing part keeps an option row with it: its page is not the notice alone.
    assert "Service level Term Period Total" in texts[-1]
    assert_closing_once_at_the_end(texts, ("Questions: ", "Renewal terms: ", DEMO_NOTICE))
