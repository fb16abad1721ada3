"""Emails about an order after it was placed: its cancellation by the desk, its refund."""
from portal.i18n import email_locale
from portal.mail.outbox import stage_email
from portal.mail.receipts import document_attachments, order_contact


def send_refund_confirmation(refund):
    """Stage "your refund", once per refund: the amount, how it comes back, the end date."""
    order = refund.order
    contract = order.contract
    contact = order_contact(order)
    if contact is None:
        return None
    context = {"contract": contract, "contact": contact, "order": order, "refund": refund}
    locale = email_locale(contact.language, contract.account.country)
    return stage_email(contact.email, "refund_confirmation", "refund_confirmation", context,
                       locale, attachments=document_attachments(order, locale, refund),
                       contract=contract, key=f"refund:{order.reference}")


def send_order_cancelled(order):
    """Stage "your order was cancelled" after the renewals desk cancelled an order that
    awaited payment, once per order: the reason, and that nothing is due any more."""
    order = order.payer
    contract = order.contract
    contact = order_contact(order)
    if contact is None:
        return None
    context = {"contract": contract, "contact": contact, "order": order}
    return stage_email(contact.email, "order_cancelled", "order_cancelled", context,
                       email_locale(contact.language, contract.account.country),
                       contract=contract, key=f"order-cancelled:{order.reference}")
