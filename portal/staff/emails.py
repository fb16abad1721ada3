"""Email from the renewals desk: a regenerated quote with a fresh renewal link."""
from flask import render_template
from flask_babel import force_locale

from portal.audit.models import record
from portal.checkout.labels import level_label
from portal.i18n import email_locale
from portal.links.services import link_url
from portal.mail.outbox import stage_email


def send_regenerated_quote(quote, link, token, actor):
    """Stage the new quote for the link's contact, in the contact's email language."""
    contract, contact = link.contract, link.contact
    options = [
        {"level_name": level_label(option.service_level), "term_months": option.term_months,
         "term_start": option.term_start, "term_end": option.term_end, "total": option.total}
        for option in quote.options()
    ]
    return _stage("quote_regenerated", f"quote-regenerated:{quote.id}:{link.reference}",
                  contract, contact, actor, quote=quote, options=options, url=link_url(token),
                  link=link)


def _stage(kind, key, contract, contact, actor, **context):
    """Render ``templates/staff/emails/<kind>/`` in the contact's email language, stage it
    in the outbox (once per ``key``) and note it in the contract's audit log."""
    locale = email_locale(contact.language, contract.account.country)
    context.update(contract=contract, contact=contact)
    with force_locale(locale):
        subject = render_template(f"staff/emails/{kind}/subject.txt", **context)
        body = render_template(f"staff/emails/{kind}/body.txt", **context)
    message = stage_email(contact.email, kind=kind, locale=locale, contract=contract,
                          subject=subject.strip(), body=body, key=key)
    record(actor, "email.stage", contract.number, key=key, to=contact.email,
           subject=message.subject)
    return message


def send_request_answer(change_request, actor):
    """Stage the desk's answer to a quote change request, once per request."""
    contract, contact = change_request.contract, change_request.contact
    return _stage("request_answered", f"change-request-answer:{change_request.id}", contract,
                  contact, actor, item=change_request)
