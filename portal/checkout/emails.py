"""Checkout emails: a fresh renewal link and the order confirmation, rendered in the
recipient's email language and staged once per key."""
from flask import render_template
from flask_babel import force_locale

from portal.checkout.instructions import is_offline, payment_instructions
from portal.i18n import email_locale
from portal.links.services import link_url
from portal.mail.outbox import stage_email


def _render(folder, recipient, country, **context):
    """``(subject, text, html, locale)`` of ``templates/checkout/emails/<folder>/``."""
    locale = email_locale(recipient.language, country)
    context["email_locale"] = locale.replace("_", "-")
    with force_locale(locale):
        subject = render_template(f"checkout/emails/{folder}/subject.txt", **context)
        text = render_template(f"checkout/emails/{folder}/body.txt", **context)
        html = render_template(f"checkout/emails/{folder}/body.html", **context)
    return " ".join(subject.split()), text, html, locale


def stage(key, to, rendered, contract):
    """Stage one email in the outbox, at most once per ``key``; the caller commits."""
    subject, text, html, locale = rendered
    return stage_email(to, locale=locale, contract=contract, subject=subject, body=text,
                       html=html, key=key)


def send_fresh_link(link, token, partner=None):
    """Email a newly issued renewal link to its contact: one the contact asked for, or,
    with ``partner``, one the contract's reseller asked to be sent."""
    contract, contact = link.contract, link.contact
    rendered = _render("fresh_link", contact, contract.account.country, contract=contract,
                       contact=contact, link=link, url=link_url(token), partner=partner)
    key = "fresh-link" if partner is None else "partner-link"
    return stage(f"{key}:{link.reference}", contact.email, rendered, contract)


def send_order_confirmation(order, link):
    """Email the order and, for an offline method, how to pay it; once per order."""
    contract, contact = order.contract, link.contact
    instructions = payment_instructions(order) if is_offline(order.method) else None
    rendered = _render("order_confirmation", contact, contract.account.country,
                       contract=contract, contact=contact, link=link, order=order,
                       instructions=instructions)
    return stage(f"order-confirmation:{order.reference}", contact.email, rendered, contract)
