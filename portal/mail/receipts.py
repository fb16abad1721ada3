"""Emails that acknowledge what a customer did: a payment, a quote change request."""

from portal.contracts.models import Contact
from portal.extensions import company, db
from portal.i18n import email_locale
from portal.invoices.services import credit_note_for, deferred_pdf, invoice_for
from portal.mail.outbox import stage_email
from portal.checkout.labels import level_label


def order_contact(order):
    """Who hears about an order: its contact, else the contract's primary one."""
    contact = db.session.get(Contact, order.contact_id) if order.contact_id else None
    return contact or order.contract.primary_contact


def send_payment_received(order):
    """Stage "payment received, contract renewed" for the order's contact (or the
    contract's primary one), once per order."""
    contract = order.contract
    contact = order_contact(order)
    if contact is None:
        return None
    context = {
        "contract": contract, "contact": contact, "order": order,
        "level_name": level_label(order.service_level),
    }
    locale = email_locale(contact.language, contract.account.country)
    return stage_email(contact.email, "payment_received", "payment_received", context, locale,
                       attachments=document_attachments(order, locale),
                       contract=contract, key=f"payment-received:{order.reference}")


def document_attachments(order, locale, refund=None):
    """The order's invoice (or the refund's credit note) as an email attachment, rendered
    when the email is delivered: not in the payment's or the refund's transaction."""
    document = credit_note_for(refund) if refund is not None else invoice_for(order)
    if document is None:
        return []
    return [deferred_pdf(document, locale)]


def send_change_request_received(change):
    """Stage "we received your request" for a quote change request, once per request."""
    contract, contact = change.contract, change.contact
    if contact is None:
        return None
    context = {"contract": contract, "contact": contact, "change": change,
               "desk_email": company().support_for(contract.account.country).email}
    return stage_email(contact.email, "change_request_received", "change_request_received",
                       context, email_locale(contact.language, contract.account.country),
                       contract=contract, key=f"change-request-received:{change.id}")
