"""Refunds from the staff console: the same rules as the customer's page, the audit log,
offline refunds as tasks that staff mark as paid back, and the console's refusals."""
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.orders.models import Payment, Refund
from tests.access import (  # noqa: F401  (staff fixtures)
    _cheap_password_hashing,
    csrf_token,
    https_client,
    post_form,
    sales,
    sales_user,
)


def _amount_shown(page):
    return page.split('name="amount_shown" type="hidden" value="')[1].split('"')[0]


def test_staff_issue_an_offline_refund_then_mark_it_paid_back(renewed_offline, sales):
    contract, order = renewed_offline()
    page = sales.get(f"/staff/contracts/{contract.number}/refund").get_data(as_text=True)
    assert 'data-refund-amount="900.00"' in page
    shown = _amount_shown(page)
    response = post_form(sales, f"/staff/contracts/{contract.number}/refund",
                         {"amount_shown": shown})
    assert response.status_code == 303
    again = post_form(sales, f"/staff/contracts/{contract.number}/refund",
                      {"amount_shown": shown})  # a double click
    assert again.status_code == 303
    refund = db.session.scalar(select(Refund))
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 1
    assert refund.status == "staff_task" and refund.requested_by == "sam.sales@portal.example"
    listing = sales.get("/staff/refunds").get_data(as_text=True)
    assert f'id="refund-{refund.id}" data-status="staff_task"' in listing
    done = post_form(sales, f"/staff/refunds/{refund.id}/done", {"reference": "BANK-OUT-1"})
    assert done.status_code == 303
    db.session.refresh(refund)
    assert refund.status == "done"
    assert db.session.scalar(select(Payment).where(Payment.kind == "refund")).provider_ref == (
        "BANK-OUT-1")
    actions = set(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target == contract.number)))
    assert {"refund.staff_task", "refund.complete"} <= actions


def test_staff_cannot_refund_a_different_amount_but_refund_any_channel(renewed_offline, sales):
    contract, order = renewed_offline()
    response = post_form(sales, f"/staff/contracts/{contract.number}/refund",
                         {"amount_shown": "1.00 USD"})
    assert response.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 0
    order.channel = "oem"  # the portal took the money, so the portal pays it back
    db.session.commit()
    page = sales.get(f"/staff/contracts/{contract.number}/refund").get_data(as_text=True)
    assert "data-refund-reason" not in page and "refund 900.00 USD" in page


def test_refund_pages_need_a_signed_in_staff_user(renewed_offline, app):
    contract, _order = renewed_offline()
    client = https_client(app)
    for url in (f"/staff/contracts/{contract.number}/refund", "/staff/refunds"):
        response = client.get(url)
        assert response.status_code == 302 and "/staff/sign-in" in response.headers["Location"]
    token = csrf_token(client.get("/staff/sign-in").get_data(as_text=True))
    response = client.post(f"/staff/contracts/{contract.number}/refund",
                           data={"csrf_token": token, "amount_shown": "900.00 USD"})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 0
