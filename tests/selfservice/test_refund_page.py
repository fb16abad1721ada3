"""The refund page after the contract was bought again: it speaks of the order that
bought the current term (its refund, or why there is none) and shows an earlier refund
only as history, for a single order and for a combined one."""
import re
from datetime import timedelta

from babel.dates import format_date
from babel.numbers import format_currency
from sqlalchemy import func, select

from portal.checkout.services import fresh_quote
from portal.extensions import db
from portal.orders.models import Refund
from portal.orders.services import place_combined_order, place_order, record_payment
from portal.renewals.services import issue_quote
from portal.selfservice.labels import REFUND_MESSAGES
from tests import factories
from tests.checkout.conftest import csrf_token, field_value

ALREADY_REFUNDED = str(REFUND_MESSAGES["already_refunded"])


def _confirm(web, page=None):
    page = page or web.get("/renewal/refund").get_data(as_text=True)
    return web.post("/renewal/refund", data={
        "csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
        "confirm": "1"})


def _text(html):
    """The page's words: codes and amounts are isolated in elements of their own."""
    return re.sub(r"<[^>]+>|[\u2066-\u2069]", "", html)


def _refunds():
    return db.session.scalar(select(func.count()).select_from(Refund))


def _pay(order, reference, today):
    record_payment(order.id, provider="offline", provider_ref=reference,
                   amount=order.amount_payable, currency=order.pay_currency,
                   received_on=today, actor="desk@example.com")
    db.session.commit()


def _long(day):
    return format_date(day, "long", locale="en")


def _combined(lead, today):
    """The link's contract renewed with another contract of its account in one order,
    the other one first (so the link's contract's order is not the one that is paid):
    ``(payer, the link contract's order)``."""
    other = factories.contract(lead.price_list, account=lead.account,
                               end_date=today + timedelta(days=20))
    db.session.commit()
    payer, member = place_combined_order(
        [(fresh_quote(other, today), "basic", 12), (fresh_quote(lead, today), "basic", 12)],
        "USD", "bank_transfer", contact_id=None, today=today, actor="customer")
    db.session.commit()
    assert member.combined_into_id == payer.id
    _pay(payer, f"BANK-{payer.reference}", today)
    return payer, member


def _refund_through_the_page(web, contract, order):
    """The customer refunds ``order`` from the page; it then says so as the current state.
    Returns ``(refund, the page that offered it)``."""
    offer = web.get("/renewal/refund").get_data(as_text=True)
    assert _confirm(web, offer).status_code == 303
    db.session.refresh(contract)
    done = web.get("/renewal/refund").get_data(as_text=True)
    assert '<section class="refund" data-refund-status=' in done
    assert f"now ends on {_long(order.previous_end_date)}" in _text(done)
    assert "refund-history" not in done
    return db.session.scalar(select(Refund)), offer


def _assert_speaks_of_the_new_order(html, contract, reference, new_order, charged_on):
    """The page names the order holding the current term, its amount and day, and its
    term's end; no longer the refunded term's end as the contract's state."""
    assert f'data-order-reference="{reference}"' in html
    assert f'data-term-end="{new_order.term_end.isoformat()}"' in html
    amount = format_currency(new_order.amount_due, new_order.pay_currency, locale="en")
    assert (f"Contract {contract.number} runs until {_long(new_order.term_end)}, renewed by "
            f"order {reference}: {amount} for this contract, paid on {_long(charged_on)}."
            in _text(html))
    assert "now ends on" not in html
    assert '<section class="refund" ' not in html


def test_a_single_order_after_a_refund_is_what_the_page_speaks_of(renewed_by_card, web,
                                                                   today):
    contract, order = renewed_by_card()
    first, old_tab = _refund_through_the_page(web, contract, order)
    again = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    _pay(again, "BANK-AGAIN", today)
    db.session.refresh(contract)
    assert contract.end_date == again.term_end

    html = web.get("/renewal/refund").get_data(as_text=True)
    _assert_speaks_of_the_new_order(html, contract, again.reference, again, today)
    assert ALREADY_REFUNDED in html  # the rule: one refund per contract, said of this order
    assert 'class="refund-offer"' not in html
    history = html.split('class="refund-history"', 1)[1]
    assert f'data-refund-status="refunded" data-refund-order="{order.reference}"' in history
    assert (f"We have refunded $900.00 for order {order.reference} to your card."
            in _text(history))
    # Confirming from the first offer's tab refunds nothing and does not say it was refunded.
    response = _confirm(web, old_tab)
    assert response.status_code == 409
    assert ALREADY_REFUNDED in response.get_data(as_text=True)
    db.session.refresh(again)
    assert again.status == "paid" and _refunds() == 1 and first.order_id == order.id


def test_a_combined_order_after_a_refund_is_what_the_page_speaks_of(renewed_by_card, web,
                                                                     today):
    contract, order = renewed_by_card()
    _refund, old_tab = _refund_through_the_page(web, contract, order)
    payer, member = _combined(contract, today)
    db.session.refresh(contract)
    assert contract.end_date == member.term_end

    html = web.get("/renewal/refund").get_data(as_text=True)
    # The reference the customer paid, the amount of this contract (not the whole payment).
    _assert_speaks_of_the_new_order(html, contract, payer.reference, member, today)
    assert member.amount_due < payer.amount_payable
    assert ALREADY_REFUNDED in html and 'class="refund-offer"' not in html
    assert f'data-refund-order="{order.reference}"' in html.split('class="refund-history"')[1]
    assert _confirm(web, old_tab).status_code == 409
    db.session.refresh(member)
    assert _refunds() == 1 and member.status == "paid"


def test_a_combined_order_is_offered_its_refund_for_this_contract_only(make_checkout, web,
                                                                        today):
    contract, _link, token = make_checkout()
    assert web.get(f"/r/{token}").status_code == 303
    previous_end = contract.end_date
    payer, member = _combined(contract, today)

    html = web.get("/renewal/refund").get_data(as_text=True)
    _assert_speaks_of_the_new_order(html, contract, payer.reference, member, today)
    assert (f'data-refund-amount="{member.amount_due:.2f}" data-currency="USD"' in html)
    assert "refund-history" not in html
    refund, _offer = _refund_through_the_page(web, contract, member)
    db.session.refresh(payer)
    assert (refund.order_id, refund.amount) == (member.id, member.amount_due)
    assert payer.status == "paid" and contract.end_date == previous_end
