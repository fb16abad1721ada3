"""Money that came for a cancelled order: refused with a clear message, kept for the desk,
and marked as paid back (reference, reason, audited) once the desk returned it."""
import pytest
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.orders.models import Payment, ReturnedPayment
from portal.orders.offline import return_payment
from portal.orders.services import PaymentRefused
from tests.access import post_form
from tests.staff.test_console import _pay, _text


@pytest.fixture
def late_payment(sales, offline_order):
    """``(contract, order, payment)``: the order cancelled by staff, then its bank transfer
    recorded anyway (refused, kept to be paid back)."""
    contract, order = offline_order
    url = f"/staff/contracts/{contract.number}/orders/{order.reference}/cancel"
    post_form(sales, url, {"reason": "Customer pays through their reseller"})
    response = _pay(sales, contract, order, "900.00", reference="BANK-LATE")
    page = _text(sales.get(response.headers["Location"]))
    assert (f"Not done: order {order.reference} is cancelled: payment BANK-LATE of 900.00 USD"
            " is kept on the refunds page to be paid back; no contract was renewed") in page
    payment = db.session.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment.kind == "to_return"
    return contract, order, payment


def _returned(payment):
    return db.session.scalars(select(ReturnedPayment).where(
        ReturnedPayment.payment_id == payment.id)).all()


def _audit(contract):
    return db.session.scalars(select(AuditEntry).where(
        AuditEntry.target == contract.number, AuditEntry.action == "payment.returned")).all()


def test_the_desk_marks_a_late_payment_as_paid_back(sales, late_payment, today):
    contract, order, payment = late_payment
    page = _text(sales.get("/staff/refunds"))
    assert 'data-to-return="BANK-LATE" data-returned="no"' in page
    url = f"/staff/payments/{payment.id}/returned"
    assert url in page
    done = post_form(sales, url, {"reference": " RET-2211 ",
                                  "reason": "Order cancelled; paid through the reseller"})
    page = _text(sales.get(done.headers["Location"]))
    assert "Payment BANK-LATE marked as paid back." in page
    assert 'data-to-return="BANK-LATE" data-returned="yes"' in page
    assert (f"Paid back on {today.isoformat()} by sam.sales@portal.example (RET-2211): "
            "Order cancelled; paid through the reseller") in page
    [returned] = _returned(payment)
    assert (returned.reference, returned.reason, returned.returned_by, returned.returned_on) == (
        "RET-2211", "Order cancelled; paid through the reseller", "sam.sales@portal.example",
        today)
    [entry] = _audit(contract)
    assert entry.details == {"order": order.reference, "payment": "BANK-LATE",
                             "amount": "900.00 USD", "reference": "RET-2211",
                             "reason": "Order cancelled; paid through the reseller"}
    # A second desk member pressing the button too: refused, nothing added.
    again = post_form(sales, url, {"reference": "RET-2212", "reason": "twice"})
    assert (f"Not done: payment BANK-LATE was paid back on {today.isoformat()} by "
            "sam.sales@portal.example") in _text(sales.get(again.headers["Location"]))
    assert len(_returned(payment)) == 1 and len(_audit(contract)) == 1


@pytest.mark.parametrize(("form", "message"), [
    ({"reference": "", "reason": "returned"}, "Bank or cheque reference: This field is required"),
    ({"reference": "R", "reason": "returned"}, "must be 2 to 128 characters"),
    ({"reference": "R" * 129, "reason": "returned"}, "must be 2 to 128 characters"),
    ({"reference": "RET-1", "reason": "  "}, "Reason: This field is required"),
    ({"reference": "RET-1", "reason": "x" * 501}, "in at most 500 characters"),
    ({"reference": "RET\x00-1", "reason": "returned"}, "Remove the control characters"),
])
def test_a_bad_paid_back_form_changes_nothing(sales, late_payment, form, message):
    contract, _order, payment = late_payment
    response = post_form(sales, f"/staff/payments/{payment.id}/returned", form)
    assert response.status_code == 303
    page = _text(sales.get(response.headers["Location"]))
    assert "Not done" in page and message in page
    assert _returned(payment) == [] and _audit(contract) == []


def test_only_a_payment_to_return_can_be_marked_paid_back(sales, offline_order, today):
    contract, order = offline_order
    _pay(sales, contract, order, "900.00", reference="BANK-OK")  # renews: a charge
    charge = db.session.scalar(select(Payment).where(Payment.order_id == order.id))
    for payment_id in (charge.id, 2147483647):
        response = post_form(sales, f"/staff/payments/{payment_id}/returned",
                             {"reference": "RET-1", "reason": "mistake"})
        assert f"payment {payment_id} is not one to pay back" in _text(
            sales.get(response.headers["Location"]))
    with pytest.raises(PaymentRefused):
        return_payment(charge.id, "RET-1", "mistake", actor="desk", today=today)
    assert db.session.scalars(select(ReturnedPayment)).all() == []
