"""Issuing invoices and credit notes and rendering them ("Invoices and credit notes" in
docs/rules.md). No PDF is rendered in the transaction that issues a document: the
emails carry it as an attachment made at delivery, downloads render it on request.

An invoice is issued in the transaction that records an order's payment, a credit note
in the transaction that records its refund. The number comes from the contracting
party's counter, moved by one UPDATE in that same transaction: concurrent payments wait
for each other's row lock (PostgreSQL) or write lock (SQLite), a rolled-back payment
gives its number back, and the unique (party, sequence) makes a reused number impossible.
"""
import re
from datetime import date
from decimal import Decimal

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.pricing.models import Product
from portal.checkout.labels import level_label, method_label
from portal.extensions import company, db
from portal.invoices.models import CREDIT_NOTE, INVOICE, BillingDocument, DocumentCounter
from portal.mail.outbox import DeferredAttachment, register_attachment_maker
from portal.money import amount_string
from portal.orders.models import Order, Payment
from portal.pdf import render_pdf
from portal.timeutil import utc_today


def party_key(country):
    """The key of the contracting party that sells to ``country`` (``us``, ...)."""
    settings = company()
    party = settings.party_for(country)
    return next(key for key, candidate in settings.parties.items() if candidate is party)


def next_sequence(party):
    """The party's next document number, taken in the caller's transaction. The counter
    row is created on first use with INSERT ... ON CONFLICT DO NOTHING, so two first
    payments at once neither fail nor need a savepoint."""
    insert = (postgresql_insert if db.session.get_bind().dialect.name == "postgresql"
              else sqlite_insert)
    db.session.execute(insert(DocumentCounter).values(party=party, last_number=0)
                       .on_conflict_do_nothing(index_elements=["party"]))
    db.session.execute(update(DocumentCounter).where(DocumentCounter.party == party)
                       .values(last_number=DocumentCounter.last_number + 1))
    return db.session.scalar(select(DocumentCounter.last_number)
                             .where(DocumentCounter.party == party)
                             .execution_options(populate_existing=True))


#: What a document number looks like: the party's key in capitals, a dash, six digits.
DOCUMENT_NUMBER = re.compile(r"[A-Z0-9_-]{1,64}-[0-9]{6,}")


def document_number(party, sequence):
    return f"{party.upper()}-{sequence:06d}"


def invoice_for(order):
    return db.session.scalar(select(BillingDocument).where(
        BillingDocument.order_id == order.id, BillingDocument.kind == INVOICE))


def credit_note_for(refund):
    return db.session.scalar(select(BillingDocument).where(BillingDocument.refund_id == refund.id))


def _seller(country):
    party = company().party_for(country)
    return {"name": party.name, "address": list(party.address), "tax_number": party.tax_number}


def _buyer(order):
    account = order.contract.account
    address = [line.strip() for line in (order.billing_address or "").splitlines()
               if line.strip()]
    return {"name": account.name, "country": account.country, "address": address,
            "tax_id": order.tax_id or "", "po_number": order.po_number or ""}


def _lines(order):
    """The products renewed, with their unit prices in the quote currency."""
    document = order.quote.document
    prices = {(p["product_code"], p["service_level"], p["term_months"]): Decimal(p["unit_price"])
              for p in document.get("prices", [])}
    names = dict(db.session.execute(select(Product.code, Product.name)).all())
    lines = []
    for line in document.get("lines", []):
        code, quantity = line["product_code"], line["quantity"]
        unit = prices.get((code, order.service_level, order.term_months))
        lines.append({
            "product_code": code, "product_name": names.get(code, code), "quantity": quantity,
            "unit_price": amount_string(unit, order.quote_currency) if unit is not None else "",
            "amount": (amount_string(unit * quantity, order.quote_currency)
                       if unit is not None else ""),
        })
    return lines


def _option_amounts(order):
    """The order's option's fees as the quote document wrote them; {} when not quoted."""
    option = order.quote.option(order.service_level, order.term_months)
    if option is None:
        return {}
    return {name: amount_string(getattr(option, name), order.quote_currency)
            for name in ("term_fee", "backdated_fee", "reinstatement_fee")}


def _charge(order):
    return db.session.scalar(select(Payment).where(
        Payment.order_id == order.payer.id, Payment.kind == "charge")
        .order_by(Payment.id).limit(1))


def _section(order):
    """What one contract's renewal adds to a document: its term, lines, fees and amount."""
    option = _option_amounts(order)
    return {
        "contract": order.contract.number,
        "order": order.payer.reference,  # the reference the customer paid (and saw)
        "service_level": order.service_level,
        "term_months": order.term_months,
        "term_start": order.term_start.isoformat(),
        "term_end": order.term_end.isoformat(),
        "lines": _lines(order),
        "quote_currency": order.quote_currency,
        "term_fee": option.get("term_fee", ""),
        "backdated_fee": option.get("backdated_fee", "0"),
        "reinstatement_fee": option.get("reinstatement_fee", "0"),
        "lapsed_days": order.lapsed_days,
        "quote_total": amount_string(order.total, order.quote_currency),
        "pay_currency": order.pay_currency,
        "rate": format(order.rate.normalize(), "f"),
        "fx_fee": amount_string(order.fx_fee, order.pay_currency),
        "amount_due": amount_string(order.amount_due, order.pay_currency),
    }


def _content(order, number, issued_on):
    """A document's content: the order's own section at the top level; the invoice of a
    combined order lists every contract it paid for in ``contracts`` and their sum in
    ``total_paid``."""
    payment = _charge(order)
    content = {
        "number": number,
        "issued_on": issued_on.isoformat(),
        "seller": _seller(order.contract.account.country),
        "buyer": _buyer(order),
        **_section(order),
        "method": order.method,
        "payment_reference": payment.provider_ref if payment is not None else "",
        "paid_on": payment.received_on.isoformat() if payment is not None else "",
    }
    if order.combined_orders:
        content["contracts"] = [_section(each) for each in order.paid_together]
        content["total_paid"] = amount_string(order.amount_payable, order.pay_currency)
    return content


def _store(kind, order, content_for, *, refund=None, invoice=None, total, currency):
    party = party_key(order.contract.account.country)
    sequence = next_sequence(party)
    number = document_number(party, sequence)
    issued_on = utc_today()
    document = BillingDocument(
        kind=kind, number=number, party=party, sequence=sequence, order_id=order.id,
        refund_id=refund.id if refund is not None else None,
        invoice_id=invoice.id if invoice is not None else None, issued_on=issued_on,
        currency=currency, total=total, content=content_for(number, issued_on))
    db.session.add(document)
    db.session.flush()
    return document


def issue_invoice(order):
    """The paid order's invoice, issued now if it has none yet (the caller commits); one
    invoice for a combined order, listing each contract."""
    order = order.payer
    existing = invoice_for(order)
    if existing is not None:
        return existing
    return _store(INVOICE, order, lambda number, day: _content(order, number, day),
                  total=order.amount_payable, currency=order.pay_currency)


def issue_credit_note(refund):
    """The refund's credit note, referring to its order's invoice (issued first if the
    order was paid before invoices existed). The caller commits."""
    existing = credit_note_for(refund)
    if existing is not None:
        return existing
    order = refund.order
    invoice = issue_invoice(order)  # a combined order's: it names the refunded contract

    def content(number, day):
        base = _content(order, number, day)
        base.pop("contracts", None)  # the credit note is one contract's
        base.pop("total_paid", None)
        base.update({"invoice_number": invoice.number,
                     "invoice_issued_on": invoice.content["issued_on"],
                     "refund_amount": amount_string(refund.amount, refund.currency),
                     "refund_currency": refund.currency,
                     "refund_requested_on": refund.requested_on.isoformat()})
        return base

    return _store(CREDIT_NOTE, order, content, refund=refund, invoice=invoice,
                  total=refund.amount, currency=refund.currency)


_DATES = ("issued_on", "term_start", "term_end", "paid_on", "invoice_issued_on",
          "refund_requested_on")
_AMOUNTS = ("term_fee", "backdated_fee", "reinstatement_fee", "quote_total", "fx_fee",
            "amount_due", "refund_amount")


def _view(content):
    """The stored content with dates and amounts as values Babel formats; ``sections``:
    one per contract (one unless the invoice is a combined order's)."""
    view = _section_view(content)
    view["sections"] = [_section_view(section) for section in content.get("contracts", [])
                        ] or [view]
    if content.get("total_paid"):
        view["total_paid"] = Decimal(content["total_paid"])
    buyer = dict(content["buyer"])
    address = list(buyer["address"])
    if address and address[0].casefold() == buyer["name"].casefold():
        address = address[1:]  # the buyer typed their company name as the first line
    view["buyer"] = {**buyer, "address": address}
    return view


def _section_view(content):
    view = dict(content)
    for key in _DATES:
        if view.get(key):
            view[key] = date.fromisoformat(view[key])
    for key in _AMOUNTS:
        if view.get(key) not in (None, ""):
            view[key] = Decimal(view[key])
    view["lines"] = [{**line, **{key: Decimal(line[key]) for key in ("unit_price", "amount")
                                 if line.get(key)}} for line in content["lines"]]
    view["rate"] = Decimal(content["rate"])
    # What the quote total became in the pay currency, before the conversion fee.
    view["converted"] = view["amount_due"] - view["fx_fee"]
    return view


def document_pdf(document, locale):
    """The invoice or credit note as PDF bytes in ``locale``."""
    return render_pdf("invoices/document.html", locale, doc=_view(document.content),
                      credit=document.kind == CREDIT_NOTE, level_label=level_label,
                      method_label=method_label)


#: The outbox source of invoice and credit note attachments.
PDF_SOURCE = "billing_document"


def deferred_pdf(document, locale):
    """The document's PDF in ``locale`` as an email attachment made at delivery, so no
    PDF is rendered inside the transaction that issues the document (and holds the
    party's counter and the order locked)."""
    return DeferredAttachment(document.filename, "application/pdf", PDF_SOURCE,
                              f"{document.id}:{locale}")


def _pdf_attachment(key):
    """The PDF bytes of a deferred attachment ``"<document id>:<locale>"``."""
    document_id, _, locale = key.partition(":")
    document = db.session.get(BillingDocument, int(document_id))
    if document is None:
        raise LookupError(f"no invoice or credit note {document_id}")
    return document_pdf(document, locale)


def connect():
    """Let the outbox make invoice and credit note attachments at delivery."""
    register_attachment_maker(PDF_SOURCE, _pdf_attachment)


def _of_contract(contract_id):
    """Documents of the contract's orders, and the invoices of the combined orders that
    paid for them."""
    return (select(BillingDocument)
            .join(Order, or_(Order.id == BillingDocument.order_id,
                             Order.combined_into_id == BillingDocument.order_id))
            .where(Order.contract_id == contract_id))


def documents_of_contract(contract_id):
    return db.session.scalars(_of_contract(contract_id).order_by(BillingDocument.id)).all()


def contract_document(contract_id, number):
    """The invoice or credit note ``number`` of the contract, or None (also for a number
    of another contract, or text that is no document number)."""
    if not DOCUMENT_NUMBER.fullmatch(number):
        return None
    return db.session.scalar(_of_contract(contract_id)
                             .where(BillingDocument.number == number))
