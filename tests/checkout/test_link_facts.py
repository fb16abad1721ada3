"""A page that only reads gets its link and what the quote page shows about the link's
contract in one statement (``read_link``). Each fact must be what the service that owns it
answers on its own, in every state the page can show."""
from datetime import timedelta

from psycopg import _queries
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg

from portal.autorenew.models import AutoRenewal
from portal.autorenew.optin import is_on
from portal.checkout import billing, combined, services
from portal.contracts.models import Contract
from portal.extensions import db
from portal.orders.models import Order
from portal.orders.services import open_order, place_order, record_payment
from portal.renewals.models import Quote
from portal.renewals.services import issue_quote, latest_quote, renewal_in_progress
from tests import factories


def facts_and_answers(link_id, today):
    """``(what read_link says, what each service answers)`` in a fresh session."""
    db.session.expunge_all()
    link, facts = services.read_link(link_id, today)
    assert link is not None
    contract = link.contract
    newest, opened = latest_quote(contract), open_order(contract.id)
    said = {"newest quote": facts.newest_quote.id if facts.newest_quote else None,
            "in progress": facts.renewal_in_progress(today),
            "others due": combined.other_due_count(link, today, facts),
            "billing": facts.billing,
            "open order": (facts.open_order_id, facts.open_order_status),
            "automatic renewal": facts.auto_renew_on}
    answered = {"newest quote": newest.id if newest else None,
                "in progress": renewal_in_progress(contract, today),
                "others due": combined.other_due_count(link, today),
                "billing": billing.defaults(contract),
                "open order": (opened.id, opened.status) if opened else (None, None),
                "automatic renewal": is_on(contract)}
    return said, answered


def test_each_fact_is_what_its_service_answers(app, make_checkout, today):
    contract, link, _ = make_checkout(days_to_end=40)
    link_id, contract_id = link.id, contract.id
    plist, account = contract.price_list, contract.account
    db.session.commit()

    said, answered = facts_and_answers(link_id, today)
    assert said == answered
    assert said == {"newest quote": None, "in progress": False, "others due": 0,
                    "billing": {}, "open order": (None, None), "automatic renewal": False}

    # Another contract of the account is due (and one that is not: it ends in a year).
    other_id = factories.contract(plist, account=account, end_date=today + timedelta(days=20),
                                  lines=[("VS-ENT", 1)]).id
    factories.contract(plist, account=account, end_date=today + timedelta(days=365),
                       lines=[("VS-ENT", 1)])
    contact_id = account.contacts[0].id
    quote_id = issue_quote(db.session.get(Contract, contract_id), today).id
    db.session.commit()
    said, answered = facts_and_answers(link_id, today)
    assert said == answered
    assert said["others due"] == 1 and said["newest quote"] == quote_id

    # A bank transfer awaits payment, with billing details for the invoice.
    order = place_order(db.session.get(Quote, quote_id), "basic", 12, "USD", "bank_transfer", contact_id=None,
                        today=today, actor="customer")
    billing.apply(order, {"tax_id": "US-123", "billing_address": "1 Main St"})
    db.session.commit()
    order_id = order.id
    said, answered = facts_and_answers(link_id, today)
    assert said == answered
    assert said["in progress"] is True
    assert said["open order"] == (order_id, "awaiting_payment")
    assert said["billing"] == {"tax_id": "US-123", "billing_address": "1 Main St"}

    # Paid: the current term was bought here; automatic renewal turned on.
    order = db.session.get(Order, order_id)
    record_payment(order.id, provider="bank", provider_ref=f"bank-{order.reference}",
                   amount=order.amount_due, currency=order.pay_currency, received_on=today,
                   actor="staff")
    db.session.add(AutoRenewal(contract_id=contract_id, customer_ref="cus_1", card_ref="pm_1",
                               method="visa", contact_id=contact_id))
    db.session.commit()
    said, answered = facts_and_answers(link_id, today)
    assert said == answered
    assert said["in progress"] is True and said["automatic renewal"] is True
    assert said["open order"] == (None, None)

    # The other due contract is held by an open card order: no longer counted.
    place_order(issue_quote(db.session.get(Contract, other_id), today), "basic", 12, "USD", "visa", contact_id=None,
                today=today, actor="customer")
    db.session.commit()
    said, answered = facts_and_answers(link_id, today)
    assert said == answered
    assert said["others due"] == 0


def test_the_link_statement_is_short_enough_for_the_drivers_conversion_cache(app, today):
    """psycopg keeps a statement's converted placeholders only up to a length: past it
    every view pays for the conversion again."""
    statement = services.link_statement(today, 90)
    text = str(statement.compile(dialect=postgresql_psycopg.dialect(),
                                 compile_kwargs={"render_postcompile": True}))
    assert services.LINK_STATEMENT_MAX_BYTES == _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(text.encode()) <= services.LINK_STATEMENT_MAX_BYTES
