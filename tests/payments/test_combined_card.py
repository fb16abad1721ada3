"""A combined order (several contracts, one payment) paid by card through the emulator:
one payment intent for the sum, every contract renewed once, a decline renewing none, and
refunds per contract as partial refunds of the one payment."""
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.orders.models import Order, Payment
from portal.orders.refunds import refund_renewal
from portal.payments.cards import provider
from tests import factories
from tests.checkout.conftest import csrf_token, field_value, open_checkout
from tests.payments.test_card_payments import _csrf, _pay


def _two_contracts(make_checkout, today):
    lead, _link, token = make_checkout(45)
    other = factories.contract(lead.price_list, account=lead.account,
                               end_date=today + timedelta(days=20), lines=[("VS-ENT", 3)])
    return lead, other, token


def _place(web, token, contracts):
    open_checkout(web, token)
    page = web.get("/renewal/contracts").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
            "contract": [str(c.id) for c in contracts], "pay_currency": "USD",
            "payment_method": "visa", "place": "1"}
    response = web.post("/renewal/contracts", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"].endswith("/renewal/pay")
    return db.session.scalars(select(Order).where(Order.contract_id.in_(
        [c.id for c in contracts])).order_by(Order.id)).all()


def test_one_card_payment_renews_both_and_refunds_go_back_per_contract(
        card_app, web, make_checkout, card, stripe_client, today):
    lead, other, token = _two_contracts(make_checkout, today)
    ends = (lead.end_date, other.end_date)
    payer, member = _place(web, token, [lead, other])
    assert member.combined_into_id == payer.id
    total = payer.amount_due + member.amount_due
    pay_page = web.get("/renewal/pay").get_data(as_text=True)
    assert f'data-amount-due="{total:.2f}"' in pay_page
    intent = stripe_client.v1.payment_intents.retrieve(payer.provider_payment_id)
    assert intent.amount == int(total * 100) and member.attempts == []
    response = _pay(web, card("ok"), _csrf(web))
    assert response.json["status"] == "succeeded"
    for order in (payer, member):
        db.session.refresh(order)
        db.session.refresh(order.contract)
        assert order.status == "paid" and order.contract.end_date == order.term_end
    assert (lead.end_date, other.end_date) != ends
    [charge] = db.session.scalars(select(Payment)).all()
    assert (charge.order_id, charge.amount) == (payer.id, total)
    confirmation = web.get("/renewal/confirmation").get_data(as_text=True)
    assert lead.number in confirmation and other.number in confirmation

    # The second contract's renewal is refunded: a part of the one payment.
    refund, now = refund_renewal(other.id, today, "customer", card_provider=provider())
    db.session.commit()
    assert now and refund.status == "refunded" and refund.amount == member.amount_due
    db.session.refresh(member)
    db.session.refresh(payer)
    assert (member.status, payer.status) == ("refunded", "paid")
    assert other.end_date == ends[1] and lead.end_date == payer.term_end
    made = stripe_client.v1.refunds.list(params={"payment_intent": intent.id}).data
    assert [r.amount for r in made] == [int(member.amount_due * 100)]
    # Then the first one's: another part, with its own key; the two add up to the payment.
    refund_renewal(lead.id, today, "customer", card_provider=provider())
    db.session.commit()
    made = stripe_client.v1.refunds.list(params={"payment_intent": intent.id}).data
    assert sorted(r.amount for r in made) == sorted(
        [int(member.amount_due * 100), int(payer.amount_due * 100)])


def test_a_declined_card_renews_none_of_the_contracts(card_app, web, make_checkout, card,
                                                       today):
    lead, other, token = _two_contracts(make_checkout, today)
    ends = (lead.end_date, other.end_date)
    payer, member = _place(web, token, [lead, other])
    _pay(web, card("declined"), _csrf(web))
    for order in (payer, member):
        db.session.refresh(order)
        assert order.status == "failed"
    assert (lead.end_date, other.end_date) == ends
    # Another card on the same combined order renews both, once.
    assert _pay(web, card("ok"), _csrf(web)).json["status"] == "succeeded"
    for order in (payer, member):
        db.session.refresh(order)
        assert order.status == "paid"
    assert len(db.session.scalars(select(Payment)).all()) == 1
