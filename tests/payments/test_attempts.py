"""Payment attempts as records, and no lock held while the provider is asked: on a real
database with committed data (SQLite and PostgreSQL), a provider double that waits on an
Event keeps the card payment's provider call open while another connection writes."""
import threading
from datetime import timedelta

from sqlalchemy import select, text

from portal.extensions import db
from portal.orders.models import AttemptState, Order, OrderStatus, PaymentAttempt
from portal.payments import registry
from portal.payments.attempts import start_card_payment
from portal.payments.provider import ProviderError
from portal.payments.reconciliation import reconcile
from portal.timeutil import utc_today
from tests.payments.test_concurrency import _card_order

#: How long the other connection may wait for the database before it counts as blocked.
WRITE_WAIT_SECONDS = 2


class HeldProvider:
    """The emulator's provider, except that opening a payment waits until released (a
    provider that is slow to answer); ``fail`` makes it lose the answer after the call."""

    def __init__(self, real, fail=False):
        self.real, self.fail = real, fail
        self.name = real.name
        self.entered, self.release = threading.Event(), threading.Event()
        self.keys = []

    def start(self, request):
        self.keys.append(request.idempotency_key)
        self.entered.set()
        assert self.release.wait(timeout=30), "the test never released the provider"
        state = self.real.start(request)
        if self.fail:
            raise ProviderError("read timeout")
        return state

    def __getattr__(self, name):
        return getattr(self.real, name)


def _hold_provider(app, fail=False, kind=HeldProvider):
    with app.app_context():
        held = kind(registry.card_provider(), fail=fail)
        app.extensions[registry.CACHE] = {held.name: held}
    return held


def _in_thread(app, work):
    """Run ``work()`` in its own app context and thread; returns (thread, results)."""
    results = []

    def run():
        with app.app_context():
            try:
                results.append(work())
            except Exception as error:  # noqa: BLE001  reported by the caller's assertion
                results.append(error)
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


def _write_to_the_order(app, order_id):
    """Another connection writes the order row itself, waiting at most
    WRITE_WAIT_SECONDS for a lock; returns True when the write went through."""
    with app.app_context():
        with db.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.connection.driver_connection.execute(
                    f"PRAGMA busy_timeout={WRITE_WAIT_SECONDS * 1000}")
            else:
                connection.exec_driver_sql(f"SET lock_timeout = '{WRITE_WAIT_SECONDS}s'")
            try:
                connection.execute(text("UPDATE renewal_order SET po_number = 'PO-1' "
                                        "WHERE id = :id"), {"id": order_id})
                connection.commit()
            except Exception:  # noqa: BLE001  locked: the write did not go through
                return False
    return True


def test_another_connection_writes_while_the_provider_opens_the_payment(live_app):
    with live_app.app_context():
        order_id, _contract_id = _card_order(utc_today())
    held = _hold_provider(live_app)
    thread, results = _in_thread(live_app, lambda: start_card_payment(
        db.session.get(Order, order_id)).provider_ref)
    try:
        assert held.entered.wait(timeout=30)
        assert _write_to_the_order(live_app, order_id)
        with live_app.app_context():  # claimed and committed before the call
            attempt = db.session.scalar(select(PaymentAttempt))
            assert attempt.state == AttemptState.STARTING and attempt.provider_ref is None
        assert thread.is_alive()  # the provider has still not answered
    finally:
        held.release.set()
        thread.join(timeout=30)
    assert len(results) == 1 and isinstance(results[0], str), results
    with live_app.app_context():
        order = db.session.get(Order, order_id)
        assert order.po_number == "PO-1" and order.status == OrderStatus.PENDING
        (attempt,) = order.attempts
        assert (attempt.state, attempt.provider_ref) == (AttemptState.OPEN, results[0])
        assert (attempt.amount, attempt.currency) == (order.amount_due, order.pay_currency)


def test_a_second_click_waits_for_the_first_attempt_and_shows_its_payment(live_app):
    with live_app.app_context():
        order_id, _contract_id = _card_order(utc_today())
    held = _hold_provider(live_app)

    def start():
        return start_card_payment(db.session.get(Order, order_id)).provider_ref

    first, first_result = _in_thread(live_app, start)
    assert held.entered.wait(timeout=30)
    second, second_result = _in_thread(live_app, start)
    try:
        second.join(timeout=0.5)
        assert second.is_alive()  # waiting for the first attempt's answer
    finally:
        held.release.set()
        first.join(timeout=30)
        second.join(timeout=30)
    assert first_result == second_result and isinstance(first_result[0], str)
    assert len(held.keys) == 1  # the provider was asked once
    with live_app.app_context():
        assert len(db.session.get(Order, order_id).attempts) == 1


def test_a_lost_answer_leaves_the_attempt_unknown_until_reconciliation(live_app,
                                                                       stripe_client):
    with live_app.app_context():
        order_id, _contract_id = _card_order(utc_today())
    held = _hold_provider(live_app, fail=True)
    held.release.set()
    with live_app.app_context():
        assert start_card_payment(db.session.get(Order, order_id)) is None  # "try again"
        order = db.session.get(Order, order_id)
        reference = order.reference
        (attempt,) = order.attempts
        assert attempt.state == AttemptState.UNKNOWN and attempt.provider_ref is None
        assert "read timeout" in attempt.error
        held.fail = False
        assert reconcile() == [(reference, "waiting")]
        db.session.remove()
    with live_app.app_context():
        (attempt,) = db.session.get(Order, order_id).attempts
        assert attempt.state == AttemptState.OPEN
    # Asked twice with the attempt's own key: the provider opened one payment.
    assert held.keys == [attempt.idempotency_key] * 2
    intents = [i for i in stripe_client.v1.payment_intents.list(params={"limit": 100}).data
               if i.to_dict()["metadata"].get("order") == reference]
    assert [i.id for i in intents] == [attempt.provider_ref]


def test_a_starting_attempt_whose_process_died_is_taken_up_with_its_key(live_app):
    with live_app.app_context():
        order_id, _contract_id = _card_order(utc_today())
        order = db.session.get(Order, order_id)
        long_ago = order.placed_at - timedelta(hours=1)
        db.session.add(PaymentAttempt(
            order=order, provider="stripe", idempotency_key=f"{order.reference}-attempt-1",
            amount=order.amount_due, currency=order.pay_currency,
            state=AttemptState.STARTING, created_at=long_ago, updated_at=long_ago))
        db.session.commit()
        state = start_card_payment(db.session.get(Order, order_id))
        (attempt,) = db.session.get(Order, order_id).attempts
        assert attempt.state == AttemptState.OPEN and attempt.provider_ref == state.provider_ref
        assert attempt.idempotency_key == f"{order.reference}-attempt-1"
