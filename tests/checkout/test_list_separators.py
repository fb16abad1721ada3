"""Labels and lists joined in the reader's language ("Basic, 12 months", contract numbers):
Arabic with "،", Japanese with "、", German with a comma, in pages, emails and the
invoice PDF."""
import email
import email.policy
from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext, ngettext
from markupsafe import Markup
from sqlalchemy import select

from portal.checkout.labels import join_list
from portal.checkout.services import fresh_quote
from portal.extensions import db
from portal.invoices.services import document_pdf, invoice_for
from portal.mail.models import OutboxMessage
from portal.orders.services import place_combined_order, record_payment
from tests import factories
from tests.checkout.conftest import open_checkout
from tests.invoices.test_invoices import pdf_text


def level_and_term(locale, separator):
    """"Basic" and "12 months" in ``locale``, joined with ``separator``."""
    with force_locale(locale):
        return separator.join([gettext("Basic"), ngettext("%(num)d month", "%(num)d months", 12)])


@pytest.mark.parametrize(("locale", "separator"), [("ar", "، "), ("ja", "、"), ("de", ", "),
                                                   ("en", ", ")])
def test_join_list_uses_the_readers_separator(app, locale, separator):
    with force_locale(locale):
        assert join_list(["a", "b", "c"]) == f"a{separator}b{separator}c"
        assert join_list(iter(["a"])) == "a" and join_list([]) == ""
        # A template's markup stays markup; text beside it is escaped into it.
        joined = join_list([Markup('<a href="mailto:x@example.com">x</a>'), "1 & 2"])
        assert isinstance(joined, Markup)
        assert joined == Markup(f'<a href="mailto:x@example.com">x</a>{separator}1 &amp; 2')


def contracts_of_one_account(make_checkout, today, language=None):
    lead, _link, token = make_checkout(45, language=language)
    other = factories.contract(lead.price_list, account=lead.account,
                               end_date=today + timedelta(days=20))
    return lead, other, token


@pytest.mark.parametrize(("locale", "separator"), [("ar", "، "), ("ja", "、"), ("de", ", ")])
def test_the_combined_page_joins_option_labels_in_the_page_language(web, make_checkout, today,
                                                                    locale, separator):
    _lead, _other, token = contracts_of_one_account(make_checkout, today)
    open_checkout(web, token)
    page = web.get(f"/renewal/contracts?lang={locale}").get_data(as_text=True)
    assert level_and_term(locale, separator) in page
    if separator != ", ":
        assert level_and_term(locale, ", ") not in page


@pytest.mark.parametrize(("locale", "separator"), [("ar", "، "), ("ja", "、"), ("de", ", ")])
def test_the_quote_page_summary_joins_level_and_term_in_the_page_language(
        web, make_checkout, locale, separator):
    _contract, _link, token = make_checkout(45)
    open_checkout(web, token)
    page = web.get(f"/renewal?lang={locale}").get_data(as_text=True)
    summary = page.split('class="summary-option">', 1)[1].split("</p>", 1)[0]
    with force_locale(locale):
        level = gettext("Basic")
        term = ngettext("%(num)d month", "%(num)d months", 12)
    assert summary == f"<strong>{level}</strong>{separator}{term}"


@pytest.mark.parametrize(("locale", "separator"), [("ja", "、"), ("de", ", ")])
def test_the_email_and_invoice_join_lists_in_the_readers_language(make_checkout, today, locale,
                                                                  separator):
    lead, other, _token = contracts_of_one_account(make_checkout, today, language=locale)
    payer, _member = place_combined_order(
        [(fresh_quote(c, today), "basic", 12) for c in (lead, other)], "USD", "bank_transfer",
        contact_id=None, today=today, actor="test")
    record_payment(payer.id, provider="offline", provider_ref="BANK-LIST",
                   amount=payer.amount_payable, currency="USD", received_on=today, actor="desk")
    db.session.commit()
    received = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.key == f"payment-received:{payer.reference}"))
    numbers = separator.join(order.contract.number for order in payer.paid_together)
    assert numbers in received.subject
    body = email.message_from_bytes(received.mime, policy=email.policy.default).get_body(
        ("plain",)).get_content()
    assert level_and_term(locale, separator) in body
    assert level_and_term(locale, separator) in pdf_text(document_pdf(invoice_for(payer), locale))
