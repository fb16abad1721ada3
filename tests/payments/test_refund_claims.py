"""Card refunds claimed before the provider is asked: on a real database with committed
data (SQLite and PostgreSQL), a provider double that waits on an Event keeps the refund
call open while another connection writes the order; a lost answer leaves the refund
``requested`` until reconciliation asks again with the same key; a refusal drops it."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.money import amount_string
from portal.orders.models import Order, OrderStatus, Payment, Refund, RefundStatus
from portal.orders.refunds import RefundRefused, refund_idempotency_key, refund_renewal
from portal.payments.attempts import start_card_payment
from portal.payments.cards import pay_with_card, provider
from portal.payments.provider import ProviderError, ProviderRefused
from portal.payments.reconciliation import reconcile
from portal.payments.tasks import reconcile_all
from portal.timeutil import utc_today
from tests.payments.test_attempts import (
    HeldProvider,
    _hold_provider,
    _in_thread,
    _write_to_the_order,
)
from tests.payments.test_concurrency import _card_order


class HeldRefunds(HeldProvider):
    """Refunding waits until released; ``fail`` loses the answer after the refund was
    made, ``refuse`` refuses before anything is refunded."""

    refuse = False

    def start(self, request):
        return self.real.start(request)

    def refund(self, provider_ref, amount=None, currency=None, *, idempotency_key):
        self.keys.append(idempotency_key)
        self.entered.set()
        assert self.release.wait(timeout=30), "the test never released the provider"
        if self.refuse:
            raise ProviderRefused("charge_disputed")
        made = self.real.refund(provider_ref, amount, currency,
                                idempotency_key=idempotency_key)
        if self.fail:
            raise ProviderError("read timeout")
        return made


@pytest.fixture
def paid(live_app, card):
    """A renewal paid by card: ``(order_id, contract_id, amount, old_end)``."""
    today = utc_today()
    with live_app.app_context():
        order_id, contract_id = _card_order(today)
        start_card_payment(db.session.get(Order, order_id))
        db.session.commit()
        pay_with_card(db.session.get(Order, order_id), card("ok"))
        db.session.commit()
        order = db.session.get(Order, order_id)
        paid = (order_id, contract_id, order.amount_due, order.previous_end_date)
        db.session.remove()
    return paid


def finish_lost_answer(claim, held, finish, expected):
    """A claim whose provider answer was lost, older than the provider deadline, is
    finished by reconciliation with its key: by the command (``finish == "command"``,
    which reports ``expected``) or by the scheduled run (run inline without a broker)."""
    claim.created_at -= timedelta(hours=1)
    db.session.commit()
    held.fail = False
    if finish == "command":
        assert reconcile() == [expected]
    else:
        assert reconcile_all() == 1
    db.session.remove()


def _hold_refunds(app, fail=False):
    return _hold_provider(app, fail=fail, kind=HeldRefunds)


def _refund(contract_id, amount):
    refund, now = refund_renewal(contract_id, utc_today(), "customer", expected_amount=amount,
                                 card_provider=provider())
    db.session.commit()
    return refund.status, now


def _provider_refunds(stripe_client, order_id):
    intent = db.session.get(Order, order_id).provider_payment_id
    return stripe_client.v1.refunds.list(params={"payment_intent": intent}).data


def test_another_connection_writes_while_the_provider_refunds(live_app, paid, stripe_client):
    order_id, contract_id, amount, old_end = paid
    held = _hold_refunds(live_app)
    thread, results = _in_thread(live_app, lambda: _refund(contract_id, amount))
    try:
        assert held.entered.wait(timeout=30)
        assert _write_to_the_order(live_app, order_id)
        with live_app.app_context():  # claimed and committed before the call
            refund = db.session.scalar(select(Refund))
            assert (refund.status, refund.amount) == (RefundStatus.REQUESTED, amount)
            assert db.session.get(Order, order_id).status == OrderStatus.PAID
            db.session.remove()
        assert thread.is_alive()  # the provider has still not answered
    finally:
        held.release.set()
        thread.join(timeout=30)
    assert results == [(RefundStatus.REFUNDED, True)]
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        assert order.po_number == "PO-1" and order.status == OrderStatus.REFUNDED
        assert order.contract.end_date == old_end
        assert held.keys == [refund_idempotency_key(order)]
        assert len(_provider_refunds(stripe_client, order_id)) == 1
        audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "refund.issue"))
        assert audit.details["amount"] == f"{amount_string(amount, 'USD')} USD"
        db.session.remove()


@pytest.mark.parametrize("finish", ["command", "schedule"])
def test_a_lost_refund_answer_is_finished_by_reconciliation_with_its_key(live_app, paid,
                                                                         stripe_client, finish):
    order_id, contract_id, amount, old_end = paid
    held = _hold_refunds(live_app, fail=True)
    held.release.set()
    with live_app.app_context():
        with pytest.raises(ProviderError):
            _refund(contract_id, amount)
        db.session.rollback()
        refund = db.session.scalar(select(Refund))
        assert refund.status == RefundStatus.REQUESTED and refund.provider_ref is None
        order = db.session.get(Order, order_id)
        assert order.status == OrderStatus.PAID  # nothing recorded without an answer
        with pytest.raises(RefundRefused):  # a second request does not refund again
            _refund(contract_id, amount)
        db.session.rollback()
        reference = order.reference
        assert reconcile() == []  # the call may still be under way: left alone
        finish_lost_answer(db.session.scalar(select(Refund)), held, finish,
                           (reference, "refunded"))
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        refund = db.session.scalar(select(Refund))
        assert order.status == OrderStatus.REFUNDED and order.contract.end_date == old_end
        assert refund.status == RefundStatus.REFUNDED and refund.completed_by == "reconcile"
        assert held.keys == [refund_idempotency_key(order)] * 2
        (made,) = _provider_refunds(stripe_client, order_id)  # asked twice, refunded once
        assert refund.provider_ref == made.id
        assert db.session.scalar(select(func.count()).select_from(Payment)
                                 .where(Payment.kind == "refund")) == 1
        assert reconcile() == []
        db.session.remove()


def test_a_refused_refund_drops_its_claim(live_app, paid, stripe_client):
    order_id, contract_id, amount, _old_end = paid
    held = _hold_refunds(live_app)
    held.release.set()
    held.refuse = True
    with live_app.app_context():
        with pytest.raises(ProviderRefused):
            _refund(contract_id, amount)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Refund)) == 0
        assert db.session.get(Order, order_id).status == OrderStatus.PAID
        held.refuse = False
        assert _refund(contract_id, amount) == (RefundStatus.REFUNDED, True)
        assert len(_provider_refunds(stripe_client, order_id)) == 1
        db.session.remove()
