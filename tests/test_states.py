"""The state machines of orders, payment attempts, refunds, outbox messages, change
requests and provider claims: every move of each table, legal or not, goes through the machine's one
``move``; the database refuses a status the machine does not know."""
from datetime import date
from decimal import Decimal
from itertools import product

import pytest
from sqlalchemy import column
from sqlalchemy.exc import IntegrityError

from portal.checkout.models import CHANGE_REQUEST_STATES, QuoteChangeRequest
from portal.errors import PortalError
from portal.extensions import db
from portal.mail.models import OUTBOX_STATES, OutboxMessage
from portal.orders.models import (
    ATTEMPT_STATES,
    ORDER_STATES,
    REFUND_STATES,
    IllegalTransition,
    Order,
    PaymentAttempt,
    Refund,
)
from portal.orders.services import place_order
from portal.payments.models import CLAIM_STATES, ProviderClaim
from portal.renewals.services import issue_quote
from portal.states import one_of
from tests import factories

#: Each machine with its model and the moves it must allow, written out here so that a
#: change to a machine's table shows up as a failing case.
LEGAL = {
    "order": (ORDER_STATES, Order, {
        "pending": {"paid", "failed", "expired", "cancelled"},
        "awaiting_payment": {"paid", "expired", "cancelled"},
        "failed": {"pending", "paid", "cancelled"},
        "paid": {"refunded"},
        "expired": set(), "cancelled": set(), "refunded": set(),
    }),
    "attempt": (ATTEMPT_STATES, PaymentAttempt, {
        "starting": {"open", "unknown", "succeeded", "failed", "cancelled"},
        "unknown": {"starting", "open", "succeeded", "failed", "cancelled"},
        "open": {"succeeded", "failed", "cancelled"},
        "failed": {"open", "succeeded", "cancelled"},
        "cancelled": {"succeeded"},
        "succeeded": set(),
    }),
    "refund": (REFUND_STATES, Refund, {
        "requested": {"refunded"}, "refunded": set(), "staff_task": {"done"}, "done": set(),
    }),
    "outbox": (OUTBOX_STATES, OutboxMessage, {
        "staged": {"sent", "retry", "failed"},
        "retry": {"sent", "retry", "failed"},
        "failed": {"retry"},
        "sent": set(),
    }),
    "change_request": (CHANGE_REQUEST_STATES, QuoteChangeRequest, {
        "open": {"answered"}, "answered": set(),
    }),
    "provider_claim": (CLAIM_STATES, ProviderClaim, {
        "requested": {"done", "refused"}, "done": set(), "refused": set(),
    }),
}
CASES = [(machine, start, target, target in legal[start])
         for machine, (_states, _model, legal) in LEGAL.items()
         for start, target in product(legal, repeat=2)]


@pytest.mark.parametrize("machine, start, target, allowed", CASES,
                         ids=[f"{m}:{s}->{t}" for m, s, t, _ in CASES])
def test_every_move_of_every_machine(machine, start, target, allowed):
    states, model, _legal = LEGAL[machine]
    row = model(**{states.attribute: start})
    if allowed:
        row.transition(target)
        assert getattr(row, states.attribute) == target
        assert type(getattr(row, states.attribute)) is states.states  # stored as the enum
    else:
        with pytest.raises(IllegalTransition) as refused:
            row.transition(target)
        assert getattr(row, states.attribute) == start  # nothing changed
        assert isinstance(refused.value, PortalError)
        assert f"{start} -> {target}" in str(refused.value)


@pytest.mark.parametrize("machine", LEGAL)
def test_the_machine_knows_exactly_the_statuses_of_its_table(machine):
    states, _model, legal = LEGAL[machine]
    assert {state.value for state in states.states} == set(legal)


def test_an_unknown_status_is_refused_as_an_illegal_move():
    order = Order(status="paid", reference="RN-T")
    with pytest.raises(IllegalTransition):
        order.transition("shipped")
    assert order.status == "paid"


@pytest.fixture
def order(app):
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", "2026-11-20")
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
    contract = factories.contract(plist, end_date="2026-12-31")
    today = date(2026, 11, 22)
    return place_order(issue_quote(contract, today), "basic", 12, "USD", "visa",
                       contact_id=None, today=today, actor="test")


def _rows_with(order, status):
    """One row of each machine's table, all carrying ``status``."""
    return {
        "order": None,
        "attempt": PaymentAttempt(order_id=order.id, provider="stripe", amount=Decimal("1"),
                                  currency="USD", idempotency_key="k-1", state=status),
        "refund": Refund(order_id=order.id, contract_id=order.contract_id,
                         amount=Decimal("1"), currency="USD", rule="full", status=status,
                         requested_by="test", requested_on=date(2026, 11, 22),
                         refunded_end_date=date(2027, 12, 31),
                         restored_end_date=date(2026, 12, 31)),
        "outbox": OutboxMessage(message_id="<m-1@test>", to="a@example.com", locale="en",
                                subject="s", kind="k", mime=b"", status=status),
        "change_request": QuoteChangeRequest(contract_id=order.contract_id, kind="other",
                                             status=status),
        "provider_claim": ProviderClaim(kind="keep_card", order_id=order.id,
                                        provider="stripe", payment_ref="pi_1",
                                        idempotency_key="keep-card-pi_1", actor="test",
                                        status=status),
    }


def _store(order, machine, status):
    row = _rows_with(order, status)[machine]
    if row is None:
        order.status = status
    else:
        db.session.add(row)
    db.session.flush()


@pytest.mark.parametrize("machine", LEGAL)
def test_the_database_takes_exactly_the_statuses_of_the_machine(order, machine):
    states, _model, _legal = LEGAL[machine]
    for state in states.states:
        savepoint = db.session.begin_nested()
        _store(order, machine, state)
        savepoint.rollback()
    with pytest.raises(IntegrityError):
        with db.session.begin_nested():
            _store(order, machine, "bogus")


def test_states_written_into_a_statement_are_only_state_names():
    sql = str(one_of(column("status"), ("paid", "awaiting_payment")).compile())
    assert sql == "status IN ('paid', 'awaiting_payment')"  # nothing bound, nothing expanded
    for bad in ("paid'; drop table x; --", "Paid", ""):
        with pytest.raises(ValueError):
            one_of(column("status"), ("paid", bad))
