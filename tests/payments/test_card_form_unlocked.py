"""The emulator's card form confirms a payment with no lock held: on a real database with
committed data (SQLite and PostgreSQL), a provider double that waits on an Event keeps
the confirmation open while another connection writes the order."""
from portal.extensions import db
from portal.orders.models import Order, OrderStatus
from portal.payments.attempts import start_card_payment
from portal.payments.cards import pay_with_card
from portal.payments.provider import SUCCEEDED
from portal.timeutil import utc_today
from tests.payments.test_attempts import (
    HeldProvider,
    _hold_provider,
    _in_thread,
    _write_to_the_order,
)
from tests.payments.test_concurrency import _card_order


class HeldConfirm(HeldProvider):
    """Confirming with a card waits until released; everything else is the emulator's."""

    def start(self, request):
        return self.real.start(request)

    def confirm(self, provider_ref, card_ref=None):
        if card_ref is not None:
            self.keys.append(provider_ref)
            self.entered.set()
            assert self.release.wait(timeout=30), "the test never released the provider"
        return self.real.confirm(provider_ref, card_ref)


def test_another_connection_writes_while_the_card_is_confirmed(live_app, card):
    with live_app.app_context():
        order_id, contract_id = _card_order(utc_today())
        start_card_payment(db.session.get(Order, order_id))
        db.session.remove()
    held = _hold_provider(live_app, kind=HeldConfirm)
    ok = card("ok")
    thread, results = _in_thread(live_app, lambda: pay_with_card(
        db.session.get(Order, order_id), ok).state)
    try:
        assert held.entered.wait(timeout=30)
        assert _write_to_the_order(live_app, order_id)
        assert thread.is_alive()  # the provider has still not answered
    finally:
        held.release.set()
        thread.join(timeout=30)
    assert results == [SUCCEEDED]
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        assert order.po_number == "PO-1" and order.status == OrderStatus.PAID
        assert order.contract.end_date == order.term_end
        assert pay_with_card(order, card("ok")) is None  # paid: the card is not touched
        assert held.keys == [order.current_attempt.provider_ref]
        db.session.remove()
