"""Refunds from the renewal link's page and from the staff console: the amount shown
before confirming, card refunds through the provider (emulator), offline refunds as a
staff task, the end date going back, the email, and a double request refunding once."""
import re
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.orders.models import Payment, Refund
from portal.orders.refunds import RefundRefused, complete_offline_refund, refund_renewal
from portal.orders.services import place_order, record_payment
from portal.renewals.services import issue_quote
from portal.selfservice import routes
from tests.checkout.conftest import csrf_token, field_value


def _count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _confirm(web, page=None):
    page = page or web.get("/renewal/refund").get_data(as_text=True)
    return web.post("/renewal/refund", data={
        "csrf_token": csrf_token(page), "amount_shown": field_value(page, "amount_shown"),
        "confirm": "1"})


def _charged_days_ago(order, days):
    payment = db.session.scalar(select(Payment).where(Payment.order_id == order.id))
    payment.received_on -= timedelta(days=days)
    db.session.flush()


def test_card_refund_within_60_days_shows_the_amount_then_refunds_once(
        renewed_by_card, web, stripe_client):
    contract, order = renewed_by_card()
    previous_end = order.previous_end_date
    assert "data-refund-link" in web.get("/renewal/confirmation").get_data(as_text=True)
    page = web.get("/renewal/refund")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-refund-amount="900.00" data-currency="USD"' in html
    assert _count(Refund) == 0  # showing the amount changes nothing

    response = _confirm(web, html)
    assert response.status_code == 303
    again = _confirm(web, html)  # a double click, a second tab
    assert again.status_code == 303
    refund = db.session.scalar(select(Refund))
    db.session.refresh(contract)
    db.session.refresh(order)
    assert _count(Refund) == 1
    assert (refund.status, refund.amount, refund.rule) == ("refunded", Decimal("900.00"), "full")
    assert order.status == "refunded" and contract.end_date == previous_end
    provider_refund = stripe_client.v1.refunds.retrieve(refund.provider_ref)
    assert provider_refund.amount == 90000
    assert _count(Payment, Payment.order_id == order.id, Payment.kind == "refund") == 1
    assert _count(OutboxMessage, OutboxMessage.kind == "refund_confirmation") == 1
    done = web.get("/renewal/refund").get_data(as_text=True)
    assert 'data-refund-status="refunded"' in done


def test_no_refund_after_60_days_outside_nl_gb_and_quebec(renewed_by_card, web):
    contract, order = renewed_by_card()
    html = web.get("/renewal/refund").get_data(as_text=True)
    _charged_days_ago(order, 61)
    page = web.get("/renewal/refund").get_data(as_text=True)
    assert "within 60 days" in page and "data-refund-amount" not in page
    response = _confirm(web, html)  # the amount shown earlier is no longer offered
    assert response.status_code == 409
    db.session.refresh(order)
    assert order.status == "paid" and _count(Refund) == 0


def test_gb_customer_gets_the_days_from_next_month_after_60_days(
        renewed_by_card, web, today, monkeypatch):
    contract, order = renewed_by_card(country="GB")
    later = order.term_start + timedelta(days=75)  # the charge was 120 days before
    monkeypatch.setattr(routes, "utc_today", lambda: later)
    html = web.get("/renewal/refund").get_data(as_text=True)
    amount = field_value(html, "amount_shown")
    assert _confirm(web, html).status_code == 303
    refund = db.session.scalar(select(Refund))
    assert refund.rule == "next_month" and f"{refund.amount:.2f} USD" == amount
    # 900.00 x days from the first day of the next month through the term's end / days
    # in the term
    start = (later.replace(day=1) + timedelta(days=32)).replace(day=1)
    left = (order.term_end - start).days + 1
    in_term = (order.term_end - order.term_start).days + 1
    assert 0 < left < in_term
    expected = (Decimal("900.00") * left / in_term).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert refund.amount == expected


def test_a_changed_amount_is_not_refunded(renewed_by_card, web):
    _contract, _order = renewed_by_card()
    html = web.get("/renewal/refund").get_data(as_text=True)
    response = web.post("/renewal/refund", data={
        "csrf_token": csrf_token(html), "amount_shown": "1.00 USD", "confirm": "1"})
    assert response.status_code == 409 and _count(Refund) == 0


def test_refund_needs_csrf_and_a_link(renewed_by_card, web, app):
    _contract, _order = renewed_by_card()
    response = web.post("/renewal/refund", data={"amount_shown": "900.00 USD"})
    assert response.status_code == 400 and _count(Refund) == 0
    other = app.test_client()
    assert other.get("/renewal/refund").status_code == 403


def test_offline_refund_becomes_a_staff_task(renewed_offline, web):
    contract, order = renewed_offline()
    assert _confirm(web).status_code == 303
    refund = db.session.scalar(select(Refund))
    db.session.refresh(contract)
    assert refund.status == "staff_task" and refund.provider_ref is None
    assert contract.end_date == order.previous_end_date
    assert _count(AuditEntry, AuditEntry.action == "refund.staff_task") == 1


def test_an_offline_refund_paid_back_by_the_desk_is_said_to_be_paid_back(renewed_offline, web):
    _contract, order = renewed_offline()
    assert _confirm(web).status_code == 303
    refund = db.session.scalar(select(Refund))
    assert "We will refund" in web.get("/renewal/refund").get_data(as_text=True)
    complete_offline_refund(refund, "desk@portal.example", "BANK-BACK-1")
    db.session.commit()
    page = re.sub(r"<[^>]+>|[\u2066-\u2069]", "", web.get("/renewal/refund").get_data(
        as_text=True))
    assert (f"We have paid back $900.00 for order {order.reference} to the account you paid "
            "from." in page)
    assert "We will refund" not in page


def test_a_contract_refunded_once_is_not_refunded_again(renewed_offline, today):
    contract, order = renewed_offline()
    refund_renewal(contract.id, today, "customer", card_provider=None)
    try:
        refund_renewal(contract.id, today, "customer", card_provider=None)
    except RefundRefused as error:
        assert error.code == "nothing_to_refund"
    else:
        raise AssertionError("refunded twice")
    # Renewed and paid again: that renewal is not refunded, the contract had its refund.
    again = place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=today, actor="customer")
    record_payment(again.id, provider="offline", provider_ref="BANK-AGAIN",
                   amount=again.amount_due, currency=again.pay_currency, received_on=today,
                   actor="desk@example.com")
    db.session.commit()
    try:
        refund_renewal(contract.id, today, "customer", card_provider=None)
    except RefundRefused as error:
        assert error.code == "already_refunded"
    else:
        raise AssertionError("a contract refunded once was refunded again")
    assert _count(Refund) == 1


def test_a_partner_customer_who_paid_here_is_refunded_here(renewed_offline, web):
    contract, order = renewed_offline(channel="partner", partner="P-EAST")
    assert order.channel == "partner"
    page = web.get("/renewal/refund").get_data(as_text=True)
    assert 'data-refund-amount="900.00"' in page
    assert _confirm(web, page).status_code == 303
    refund = db.session.scalar(select(Refund))
    assert (refund.order_id, refund.amount, refund.rule) == (order.id, Decimal("900.00"), "full")


def test_refunding_an_upgrade_restores_the_previous_level_and_term(make_checkout, today):
    contract, _link, _token = make_checkout(lines=[("VS-ENT", 1)])  # within the cap
    assert (contract.service_level, contract.term_months) == ("basic", 12)
    previous_end = contract.end_date
    order = place_order(issue_quote(contract, today), "production", 36, "USD",
                        "bank_transfer", contact_id=None, today=today, actor="customer")
    record_payment(order.id, provider="offline", provider_ref="BANK-UPGRADE",
                   amount=order.amount_due, currency=order.pay_currency, received_on=today,
                   actor="desk@example.com")
    db.session.commit()
    assert (contract.service_level, contract.term_months) == ("production", 36)
    refund_renewal(contract.id, today, "customer", card_provider=None)
    db.session.commit()
    db.session.refresh(contract)
    assert (contract.service_level, contract.term_months, contract.end_date) == (
        "basic", 12, previous_end)


def test_hostile_refund_and_auto_renew_posts_change_nothing(renewed_by_card, web):
    _contract, order = renewed_by_card()
    html = web.get("/renewal/refund").get_data(as_text=True)
    # Too long for the form: 400; any other amount than the one shown: 409.
    for shown, status in (("x" * 10000, 400), ("900.00\x00 USD", 409), ("900.00 usd", 409),
                          ("", 409), ("-900.00 USD", 409)):
        response = web.post("/renewal/refund", data={
            "csrf_token": csrf_token(html), "amount_shown": shown, "confirm": "1"})
        assert response.status_code == status, (shown[:20], response.status_code)
    assert web.post("/renewal/auto-renew", data={"csrf_token": csrf_token(html),
                                                 "confirm": "\x00" * 100}).status_code == 200
    assert web.get("/r/nonsense?to=%00").status_code == 404
    db.session.refresh(order)
    assert order.status == "paid" and _count(Refund) == 0
