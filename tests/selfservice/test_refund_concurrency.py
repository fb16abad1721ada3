"""Two refund requests for the same renewal at the same moment (two tabs, a customer and
a staff user), on a database with committed data: one refund row, one provider refund."""
from datetime import timedelta

from sqlalchemy import func, select

from portal.extensions import db
from portal.orders.models import Order, Payment, Refund
from portal.orders.refunds import RefundRefused, refund_renewal
from portal.payments.attempts import start_card_payment
from portal.payments.cards import pay_with_card, provider
from portal.timeutil import utc_today
from tests.payments.conftest import (  # noqa: F401
    card,
    live_app,
    stripe_client,
    stripe_emulator,
)
from tests.payments.test_concurrency import _card_order
from tests.threads import run_together


def test_concurrent_refund_requests_refund_once(live_app, card, stripe_client):
    today = utc_today()
    with live_app.app_context():
        order_id, contract_id = _card_order(today)
        order = db.session.get(Order, order_id)
        start_card_payment(order)
        db.session.commit()
        pay_with_card(db.session.get(Order, order_id), card("ok"))
        db.session.commit()
        amount = db.session.get(Order, order_id).amount_due
        db.session.remove()

    def request_refund():
        try:
            refund, now = refund_renewal(contract_id, today, "customer", expected_amount=amount,
                                         card_provider=provider())
        except RefundRefused as refused:
            return refused.code
        return "refunded" if now else "already"

    outcomes = run_together(live_app, request_refund)
    assert sorted(outcomes)[-1] == "refunded" and outcomes.count("refunded") == 1
    with live_app.app_context():
        refunds = db.session.scalars(select(Refund)).all()
        assert len(refunds) == 1
        assert db.session.scalar(select(func.count()).select_from(Payment)
                                 .where(Payment.kind == "refund")) == 1
        intent = db.session.get(Order, order_id).provider_payment_id
        listed = stripe_client.v1.refunds.list(params={"payment_intent": intent})
        assert len(listed.data) == 1
        assert db.session.get(Order, order_id).contract.end_date < today + timedelta(days=41)
        db.session.remove()
