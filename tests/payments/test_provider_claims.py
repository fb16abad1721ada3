"""What settling a card payment asks of the provider afterwards is claimed with the
payment and asked with no lock held: keeping the card of a customer who opted in to
automatic renewal, and giving back money that came for an order that no longer takes
it. On a real database with committed data (SQLite and PostgreSQL), a provider double
that waits on an Event keeps the call open while another connection writes the order; a
lost answer leaves the claim ``requested`` until reconciliation asks again with the same
idempotency key."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.autorenew.models import AutoRenewal
from portal.autorenew.optin import turn_off
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.money import amount_string
from portal.orders.models import Order, OrderStatus, Payment
from portal.payments.attempts import start_card_payment
from portal.payments.cards import pay_with_card
from portal.payments.models import ClaimKind, ClaimStatus, ProviderClaim
from portal.payments.provider import CardDeclined, ProviderError
from portal.payments.reconciliation import reconcile
from portal.payments.webhooks import handle_webhook
from portal.timeutil import utc_today
from tests.payments.conftest import signed_event
from tests.payments.test_attempts import (
    HeldProvider,
    _hold_provider,
    _in_thread,
    _write_to_the_order,
)
from tests.payments.test_concurrency import _card_order
from tests.payments.test_refund_claims import HeldRefunds, finish_lost_answer
from tests.payments.test_webhook import _charged_behind_the_portal


class HeldCards(HeldProvider):
    """Keeping a card waits until released; ``fail`` loses the answer after the card was
    kept, ``refuse`` declines to keep it."""

    refuse = False

    def start(self, request):
        return self.real.start(request)

    def keep_card(self, customer_ref, card_ref, *, idempotency_key=None):
        self.keys.append(idempotency_key)
        self.entered.set()
        assert self.release.wait(timeout=30), "the test never released the provider"
        if self.refuse:
            raise CardDeclined("card_not_reusable")
        self.real.keep_card(customer_ref, card_ref, idempotency_key=idempotency_key)
        if self.fail:
            raise ProviderError("read timeout")


def _receipt():
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "payment_received"))
    return None if message is None else message.mime.decode("utf-8", "replace")


def _claim():
    return db.session.scalar(select(ProviderClaim))


def _while_the_provider_is_held(app, held, order_id, work, check):
    """Run ``work()`` in a thread until the provider call ``held`` is entered; meanwhile
    another connection writes the order and ``check()`` reads what was committed. Returns
    what ``work()`` returned once released."""
    thread, results = _in_thread(app, work)
    try:
        assert held.entered.wait(timeout=30)
        assert _write_to_the_order(app, order_id)
        with app.app_context():
            check()
            db.session.remove()
        assert thread.is_alive()  # the provider has still not answered
    finally:
        held.release.set()
        thread.join(timeout=30)
    return results


@pytest.fixture
def opted_in(live_app):
    """A card order whose customer opted in, its payment opened: its id."""
    with live_app.app_context():
        order_id, _contract_id = _card_order(utc_today(), auto_renew=True)
        start_card_payment(db.session.get(Order, order_id))
        db.session.remove()
    return order_id


def _pay(order_id, card_ref):
    state = pay_with_card(db.session.get(Order, order_id), card_ref)
    db.session.commit()
    return state.state


def test_another_connection_writes_while_the_provider_keeps_the_card(live_app, opted_in,
                                                                     card, stripe_client):
    order_id = opted_in
    held = _hold_provider(live_app, kind=HeldCards)

    def claimed():  # paid and claimed, committed before the call
        assert db.session.get(Order, order_id).status == OrderStatus.PAID
        claim = _claim()
        assert (claim.kind, claim.status) == (ClaimKind.KEEP_CARD, ClaimStatus.REQUESTED)
        assert db.session.scalar(select(func.count()).select_from(AutoRenewal)) == 0
        assert _receipt() is None  # it says whether automatic renewal is on: it waits

    results = _while_the_provider_is_held(live_app, held, order_id,
                                          lambda: _pay(order_id, card("ok")), claimed)
    assert results == ["succeeded"]
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        assert order.po_number == "PO-1"
        renewal = db.session.scalar(select(AutoRenewal))
        assert renewal.enabled and renewal.card_ref == _claim().card_ref
        assert stripe_client.v1.payment_methods.retrieve(
            renewal.card_ref).customer == renewal.customer_ref
        assert held.keys == [f"keep-card-{order.provider_payment_id}"]
        assert _claim().status == ClaimStatus.DONE
        assert "Automatic renewal is on." in _receipt()
        db.session.remove()


@pytest.mark.parametrize("finish", ["command", "schedule"])
def test_a_lost_card_answer_is_finished_by_reconciliation_with_its_key(live_app, opted_in,
                                                                       card, finish):
    order_id = opted_in
    held = _hold_provider(live_app, fail=True, kind=HeldCards)
    held.release.set()
    with live_app.app_context():
        assert _pay(order_id, card("ok")) == "succeeded"
        assert _claim().status == ClaimStatus.REQUESTED
        assert db.session.scalar(select(func.count()).select_from(AutoRenewal)) == 0
        assert _receipt() is None
        reference = db.session.get(Order, order_id).reference
        assert reconcile() == []  # the call may still be under way: left alone
        finish_lost_answer(_claim(), held, finish, (reference, "card_kept"))
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        assert db.session.scalar(select(AutoRenewal.enabled)) is True
        assert held.keys == [f"keep-card-{order.provider_payment_id}"] * 2
        assert "Automatic renewal is on." in _receipt()
        assert reconcile() == []
        db.session.remove()


def test_turned_off_while_the_card_answer_was_lost_stays_off(live_app, opted_in, card):
    """Automatic renewal was on from an earlier term; the customer opts in again with this
    payment, whose card answer is lost, then turns automatic renewal off: reconciliation
    finishing the card claim later does not turn it back on."""
    order_id = opted_in
    held = _hold_provider(live_app, fail=True, kind=HeldCards)
    held.release.set()
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        db.session.add(AutoRenewal(contract_id=order.contract_id, enabled=True,
                                   provider="stripe", customer_ref="cus_earlier",
                                   card_ref="pm_earlier", method="visa"))
        db.session.commit()
        assert _pay(order_id, card("ok")) == "succeeded"
        assert _claim().status == ClaimStatus.REQUESTED
        order = db.session.get(Order, order_id)
        assert turn_off(order.contract, "customer") is True
        db.session.commit()
        _claim().created_at -= timedelta(hours=1)
        db.session.commit()
        held.fail = False
        reconcile()
        db.session.remove()
    with live_app.app_context():
        renewal = db.session.scalar(select(AutoRenewal))
        assert renewal.enabled is False and renewal.card_ref == "pm_earlier"
        assert _claim().status == ClaimStatus.DONE
        assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "autorenew.not_turned_on")) == 1
        db.session.remove()


def test_a_card_the_provider_will_not_keep_leaves_automatic_renewal_off(live_app, opted_in,
                                                                       card):
    order_id = opted_in
    held = _hold_provider(live_app, kind=HeldCards)
    held.release.set()
    held.refuse = True
    with live_app.app_context():
        assert _pay(order_id, card("ok")) == "succeeded"
        assert _claim().status == ClaimStatus.REFUSED
        assert db.session.scalar(select(func.count()).select_from(AutoRenewal)) == 0
        receipt = _receipt()
        assert "Automatic renewal is on." not in receipt
        assert "Automatic renewal could not be turned on" in receipt
        assert db.session.scalar(select(AuditEntry.action).where(
            AuditEntry.action == "autorenew.card_refused")) is not None
        assert reconcile() == []
        db.session.remove()


@pytest.fixture
def orphan(live_app, card, stripe_client, stripe_emulator):
    """A card order cancelled after its payment was opened, then paid at the provider:
    ``(order_id, webhook payload, signature)``."""
    with live_app.app_context():
        order_id, _contract_id = _card_order(utc_today())
        start_card_payment(db.session.get(Order, order_id))
        order = db.session.get(Order, order_id)
        order.transition(OrderStatus.CANCELLED)
        db.session.commit()
        _charged_behind_the_portal(stripe_client, order, card("ok"))
        payload, signature = signed_event(stripe_emulator.webhook_secret,
                                          "payment_intent.succeeded", order.provider_payment_id)
        db.session.remove()
    return order_id, payload, signature


def _refunds_at_the_provider(stripe_client, order_id):
    intent = db.session.get(Order, order_id).provider_payment_id
    return stripe_client.v1.refunds.list(params={"payment_intent": intent}).data


def test_another_connection_writes_while_the_provider_returns_the_money(live_app, orphan,
                                                                        stripe_client):
    order_id, payload, signature = orphan
    held = _hold_provider(live_app, kind=HeldRefunds)

    def claimed():  # claimed and committed before the call
        claim = _claim()
        assert (claim.kind, claim.status) == (ClaimKind.RETURN_MONEY, ClaimStatus.REQUESTED)

    results = _while_the_provider_is_held(live_app, held, order_id,
                                          lambda: handle_webhook(payload, signature), claimed)
    assert results == ["refunded"]
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        assert order.po_number == "PO-1" and order.status == OrderStatus.CANCELLED
        (made,) = _refunds_at_the_provider(stripe_client, order_id)
        claim = _claim()
        assert (claim.status, claim.result) == (ClaimStatus.DONE, made.id)
        assert held.keys == [f"refund-orphan-{order.provider_payment_id}"]
        audit = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "payment.refund_orphan"))
        assert audit.details["refund"] == made.id
        assert audit.details["amount"] == f"{amount_string(order.amount_due, 'USD')} USD"
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 0
        db.session.remove()


def test_a_lost_refund_of_orphaned_money_is_finished_once_by_reconciliation(
        live_app, orphan, stripe_client, stripe_emulator):
    order_id, payload, signature = orphan
    held = _hold_provider(live_app, fail=True, kind=HeldRefunds)
    held.release.set()
    with live_app.app_context():
        assert handle_webhook(payload, signature) == "error: read timeout"
        assert _claim().status == ClaimStatus.REQUESTED
        order = db.session.get(Order, order_id)
        reference, intent = order.reference, order.provider_payment_id
        again = signed_event(stripe_emulator.webhook_secret, "charge.succeeded", intent)
        assert handle_webhook(*again) == "returning"  # the claim exists: not asked again
        assert len(held.keys) == 1
        assert reconcile() == []  # the call may still be under way: left alone
        _claim().created_at -= timedelta(hours=1)
        db.session.commit()
        # Still no answer: counted as an error (the command exits non-zero), kept.
        assert reconcile() == [(reference, "error: read timeout")]
        assert _claim().status == ClaimStatus.REQUESTED
        held.fail = False
        assert reconcile() == [(reference, "refunded")]
        assert reconcile() == []
        db.session.remove()
    with live_app.app_context():
        (made,) = _refunds_at_the_provider(stripe_client, order_id)  # asked 3 times, once made
        assert _claim().result == made.id
        assert held.keys == [f"refund-orphan-{intent}"] * 3
        db.session.remove()
