"""Emails about an order after it was paid: its refund."""
from portal.contracts.models import Contact
from portal.extensions import db
from portal.i18n import email_locale
from portal.mail.outbox import stage_email


def order_contact(order):
    """Who hears about an order: its contact, else the contract's primary one."""
    contact = db.session.get(Contact, order.contact_id) if order.contact_id else None
    if contact is None:
        contacts = order.contract.renewal_contacts
        contact = next((c for c in contacts if c.primary), contacts[0] if contacts else None)
    return contact


def send_refund_confirmation(refund):
    """Stage "your refund", once per refund: the amount, how it comes back, the end date."""
    order = refund.order
    contract = order.contract
    contact = order_contact(order)
    if contact is None:
        return None
    context = {"contract": contract, "contact": contact, "order": order, "refund": refund}
    return stage_email(contact.email, "refund_confirmation", "refund_confirmation", context,
                       email_locale(contact.language, contract.account.country),
                       contract=contract, key=f"refund:{order.reference}")
