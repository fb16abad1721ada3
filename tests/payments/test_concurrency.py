"""Two tabs (or a double click) paying the same order at the same time, on a real
database with committed data: one PaymentIntent, one charge, one renewal."""
from datetime import timedelta

from sqlalchemy import func, select

from portal.contracts.models import Contract
from portal.extensions import db
from portal.orders.models import Order, Payment
from portal.orders.services import place_order
from portal.payments.attempts import start_card_payment
from portal.payments.cards import pay_with_card
from portal.renewals.services import issue_quote
from portal.timeutil import utc_today
from tests import factories
from tests.checkout.conftest import PRICES
from tests.threads import run_together


def _card_order(today, auto_renew=False):
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", today - timedelta(days=1))
    contract = factories.contract(factories.price_list("US", "USD", PRICES),
                                  end_date=today + timedelta(days=40))
    quote = issue_quote(contract, today, issued_by="test")
    order = place_order(quote, "basic", 12, "USD", "visa",
                        contact_id=contract.account.contacts[0].id, today=today, actor="test",
                        auto_renew=auto_renew)
    db.session.commit()
    return order.id, contract.id




def test_concurrent_submissions_make_one_intent_one_charge_one_renewal(live_app, card,
                                                                       stripe_client):
    today = utc_today()
    with live_app.app_context():
        order_id, contract_id = _card_order(today)
        old_end = db.session.get(Contract, contract_id).end_date

    def start():
        return start_card_payment(db.session.get(Order, order_id)).provider_ref

    refs = run_together(live_app, start)
    assert len(refs) == 2 and refs[0] == refs[1]
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        reference = order.reference
        assert order.provider_payment_id == refs[0]

    cards = [card("ok"), card("ok")]

    def pay():
        state = pay_with_card(db.session.get(Order, order_id), cards.pop())
        return state.state if state is not None else "already_paid"

    # Whoever comes second finds the order paid and does not touch the card.
    assert sorted(run_together(live_app, pay)) == ["already_paid", "succeeded"]
    intents = [i for i in stripe_client.v1.payment_intents.list(params={"limit": 100}).data
               if i.to_dict()["metadata"].get("order") == reference]
    assert [i.id for i in intents] == refs[:1]
    charges = stripe_client.v1.charges.list(params={"limit": 100}).data
    assert len([c for c in charges if c.payment_intent == refs[0]]) == 1
    with live_app.app_context():
        contract = db.session.get(Contract, contract_id)
        order = db.session.get(Order, order_id)
        assert order.status == "paid" and contract.end_date == order.term_end != old_end
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 1
