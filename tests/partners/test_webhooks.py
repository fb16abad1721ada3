"""Partner events and signed webhooks (docs/partners.md): events recorded with the change
they describe, delivered to a real HTTP endpoint on loopback, retried with backoff.
Registering endpoints and the replay feed are in test_event_feed.py."""
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.autorenew.models import AutoRenewal
from portal.autorenew.optin import turn_off
from portal.extensions import db
from portal.notices.services import send_notices
from portal.orders.services import expire_offline_orders, record_payment
from portal.partners import webhooks
from portal.partners.events import record_date_events
from portal.partners.models import PartnerEvent, WebhookAttempt, WebhookDelivery
from portal.timeutil import utc_now
from tests.access import bearer
from tests.webhook_receiver import WebhookReceiver
from tests.partners.webhook_cases import (  # noqa: F401 (feed_without_delay: a fixture)
    API,
    deliver_until_done,
    feed_without_delay,
    pay,
    place,
    register,
    types_of,
    verify,
)


def test_every_event_arrives_signed_after_failures(client, make_contract, partners, today):
    partner, key = partners["A"]
    other, other_key = partners["B"]
    with WebhookReceiver(fail_first=3) as receiver, WebhookReceiver() as other_receiver:
        endpoint = register(client, key, receiver.url)
        register(client, other_key, other_receiver.url)
        contract = make_contract(days_to_end=20, partner=partner)
        make_contract(days_to_end=20, partner=other)  # B's contract: nothing happens to it
        order = place(contract, today)
        pay(order, today)
        db.session.commit()
        assert types_of(partner) == ["order.placed", "order.paid", "contract.renewed"]

        totals = deliver_until_done(utc_now())

    assert totals == {"delivered": 3, "retry": 3, "failed": 0, "cancelled": 0}
    accepted = receiver.accepted()
    bodies = [json.loads(body) for _, body in accepted]
    assert sorted(b["type"] for b in bodies) == ["contract.renewed", "order.paid",
                                                 "order.placed"]
    assert all(verify(endpoint["secret"], headers, body) for headers, body in accepted)
    assert not verify("whsec_wrong", *accepted[0])
    # Failed attempts were the same events: a receiver recognises the repeat by its id.
    ids = [json.loads(body)["id"] for _, body, _status in receiver.received]
    assert len(ids) == 6 and set(ids) == {b["id"] for b in bodies}
    renewed = next(b for b in bodies if b["type"] == "contract.renewed")
    assert renewed["data"]["contract"] == {
        "number": contract.number, "status": "active", "service_level": "basic",
        "term_months": 12, "end_date": order.term_end.isoformat()}
    assert renewed["data"]["order"]["reference"] == order.reference
    assert other_receiver.received == []  # nothing of partner A's reached partner B
    attempts = db.session.scalars(select(WebhookAttempt.status_code)
                                  .order_by(WebhookAttempt.id)).all()
    assert sorted(attempts) == [200, 200, 200, 503, 503, 503]


def test_event_is_part_of_the_change(make_contract, partners, today):
    """An order that is rolled back leaves no event, so nothing is announced."""
    partner, _ = partners["A"]
    contract = make_contract(days_to_end=20, partner=partner)
    db.session.commit()
    with db.session.begin_nested() as savepoint:
        place(contract, today)
        assert types_of(partner) == ["order.placed"]
        savepoint.rollback()
    assert types_of(partner) == []


def test_direct_contracts_record_nothing(make_contract, partners, today):
    pay(place(make_contract(days_to_end=20), today), today)
    assert db.session.scalar(select(func.count(PartnerEvent.id))) == 0


def test_lapsed_order_and_auto_renew_events(make_contract, partners, today):
    partner, _ = partners["A"]
    contract = make_contract(days_to_end=20, partner=partner)
    order = place(contract, today)
    expire_offline_orders(order.expires_on + timedelta(days=1))
    db.session.add(AutoRenewal(contract_id=contract.id, enabled=True, provider="stripe",
                               customer_ref="cus_1", card_ref="pm_1", method="card"))
    db.session.flush()
    assert turn_off(contract, "customer:1") is True
    events = db.session.scalars(select(PartnerEvent).order_by(PartnerEvent.id)).all()
    assert [e.type for e in events] == ["order.placed", "order.lapsed", "auto_renew.changed"]
    assert events[1].data["order"]["status"] == "expired"
    assert events[2].data["auto_renew"] is False


def test_expiring_and_expired_once_per_end_date(make_contract, partners, today):
    partner, _ = partners["A"]
    expiring = make_contract(days_to_end=60, partner=partner)
    later = make_contract(days_to_end=61, partner=partner)
    ended = make_contract(days_to_end=-1, partner=partner)
    make_contract(days_to_end=-31, partner=partner)  # ended before the catch-up window
    make_contract(days_to_end=10, partner=partner, status="cancelled")
    send_notices(today)  # the daily job announces the day to its subscribers
    send_notices(today)
    assert record_date_events(today) == 0
    rows = db.session.execute(select(PartnerEvent.type, PartnerEvent.contract_id)
                              .order_by(PartnerEvent.id)).all()
    assert sorted(rows) == sorted([("contract.expiring", expiring.id),
                                   ("contract.expired", ended.id)])
    assert record_date_events(today + timedelta(days=1)) == 1  # `later` enters the window
    assert types_of(partner).count("contract.expiring") == 2
    assert later.id in db.session.scalars(select(PartnerEvent.contract_id)).all()


def test_backoff_then_give_up_after_three_days(client, make_contract, partners, today):
    partner, key = partners["A"]
    register(client, key, "http://127.0.0.1:9/never")
    contract = make_contract(days_to_end=20, partner=partner)
    place(contract, today)
    db.session.commit()
    calls = []

    def refuse(url, body, headers):
        calls.append(url)
        return webhooks.PostResult(None, "ConnectionRefusedError: refused", 1)

    start = db.session.scalar(select(PartnerEvent.created_at))
    now, gaps = start, []
    while True:
        counts = webhooks.deliver_due_webhooks(now=now, post=refuse)
        delivery = db.session.scalar(select(WebhookDelivery))
        if delivery.status != "pending":
            break
        gaps.append(delivery.next_attempt_at - now)
        now = delivery.next_attempt_at
    assert counts["failed"] == 1 and delivery.status == "failed"
    assert gaps[:4] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4),
                        timedelta(minutes=8)]
    assert max(gaps) == webhooks.RETRY_MAX
    assert timedelta(days=2) < now - start <= timedelta(days=3)
    assert len(calls) == delivery.attempts == db.session.scalar(
        select(func.count(WebhookAttempt.id)))
    assert webhooks.deliver_due_webhooks(now=now + timedelta(days=30), post=refuse) == {
        "delivered": 0, "retry": 0, "failed": 0, "cancelled": 0}


def test_a_dead_endpoint_does_not_hold_up_the_others(client, make_contract, partners, today,
                                                     monkeypatch):
    monkeypatch.setattr(webhooks, "READ_TIMEOUT", 0.5)
    monkeypatch.setattr(webhooks.post_json, "__defaults__",
                        (webhooks.CONNECT_TIMEOUT, 0.5))
    partner_a, key_a = partners["A"]
    partner_b, key_b = partners["B"]
    with WebhookReceiver(hang=True) as dead, WebhookReceiver() as alive:
        register(client, key_a, dead.url)
        register(client, key_b, alive.url)
        for _ in range(5):
            place(make_contract(days_to_end=20, partner=partner_a), today)
        for _ in range(5):
            place(make_contract(days_to_end=20, partner=partner_b), today)
        db.session.commit()
        started = time.monotonic()
        counts = webhooks.deliver_due_webhooks(limit=100)
        elapsed = time.monotonic() - started
    assert counts["delivered"] == 5 and counts["retry"] == 1  # one timeout, not five
    assert len(alive.accepted()) == 5
    assert elapsed < 3
    # The dead endpoint's other events were given back untried, due as before.
    waiting = db.session.execute(select(WebhookDelivery.attempts, WebhookDelivery.status)
                                 .where(WebhookDelivery.status == "pending")).all()
    assert sorted(waiting) == [(0, "pending")] * 4 + [(1, "pending")]
    assert webhooks.deliver_due_webhooks(post=lambda *a: webhooks.PostResult(
        200, None, 1))["delivered"] == 4


def test_removed_endpoint_gets_nothing_more(client, make_contract, partners, today):
    partner, key = partners["A"]
    with WebhookReceiver() as receiver:
        endpoint = register(client, key, receiver.url)
        place(make_contract(days_to_end=20, partner=partner), today)
        db.session.commit()
        response = client.delete(f"{API}/webhooks/{endpoint['id']}", headers=bearer(key))
        assert response.status_code == 204
        assert webhooks.deliver_due_webhooks()["delivered"] == 0
        place(make_contract(days_to_end=20, partner=partner), today)
        assert webhooks.deliver_due_webhooks()["delivered"] == 0
    assert receiver.received == []
    assert db.session.scalar(select(WebhookDelivery.status)) == "cancelled"


def test_staff_see_endpoints_and_attempts(app, client, make_contract, partners, today):
    from tests.access import https_client, sign_in
    from portal.staff.accounts import add_staff

    partner, key = partners["A"]
    created = register(client, key, "https://hooks.partner.example/portal")
    place(make_contract(days_to_end=20, partner=partner), today)
    db.session.commit()
    webhooks.deliver_due_webhooks(post=lambda url, body, headers: webhooks.PostResult(
        502, None, 7))
    add_staff("sam.sales@portal.example", "correct horse battery", "sales")
    db.session.commit()
    staff = https_client(app)
    assert sign_in(staff, "sam.sales@portal.example").status_code == 303
    page = staff.get("/staff/webhooks").get_data(as_text=True)
    assert "https://hooks.partner.example/portal" in page and "PA" in page
    assert "502" in page and "order.placed" in page
    assert created["secret"] not in page


def test_deliver_command(cli, client, make_contract, partners, today):
    partner, key = partners["A"]
    with WebhookReceiver() as receiver:
        register(client, key, receiver.url)
        place(make_contract(days_to_end=20, partner=partner), today)
        db.session.commit()
        result = cli("partner", "deliver-webhooks", "--limit", "10")
        assert result.exit_code == 0, result.output
        assert "1 delivered" in result.output
        assert len(receiver.accepted()) == 1
        again = cli("partner", "deliver-webhooks")
        assert again.exit_code == 0 and "0 delivered" in again.output
    bad = cli("partner", "deliver-webhooks", "--limit", "0")
    assert bad.exit_code != 0 and "--limit" in bad.output


def test_auto_renew_switched_on_is_announced(make_contract, partners, today):
    from portal.autorenew.optin import keep_card

    partner, _ = partners["A"]
    order = place(make_contract(days_to_end=20, partner=partner), today, method="bank_transfer")
    renewal = keep_card(order, "stripe", "cus_9", "pm_9")
    assert (renewal.customer_ref, renewal.card_ref, renewal.enabled) == ("cus_9", "pm_9", True)
    event = db.session.scalars(select(PartnerEvent).order_by(PartnerEvent.id.desc())).first()
    assert (event.type, event.data["auto_renew"]) == ("auto_renew.changed", True)


def test_a_refused_payment_announces_nothing(make_contract, partners, today):
    from portal.orders.services import PaymentMismatch

    partner, _ = partners["A"]
    order = place(make_contract(days_to_end=20, partner=partner), today)
    with pytest.raises(PaymentMismatch):
        record_payment(order.id, provider="bank", provider_ref="short", amount="1.00",
                       currency=order.pay_currency, received_on=today, actor="staff")
    assert types_of(partner) == ["order.placed"]
    pay(order, today)
    pay(order, today)  # the same bank payment recorded twice renews, and announces, once
    assert types_of(partner) == ["order.placed", "order.paid", "contract.renewed"]


def test_production_posts_only_to_public_addresses(app, client, make_contract, partners,
                                                   today, monkeypatch):
    partner, key = partners["A"]
    register(client, key, "https://hooks.partner.example/in")
    place(make_contract(days_to_end=20, partner=partner), today)
    db.session.commit()
    monkeypatch.setitem(app.config, "PORTAL_ENV", "production")
    answers = {"hooks.partner.example": "10.0.0.7"}
    monkeypatch.setattr(webhooks.socket, "getaddrinfo", lambda host, *a, **k: [
        (2, 1, 6, "", (answers[host], 443))])
    posted = []

    def post(url, body, headers):
        posted.append(url)
        return webhooks.PostResult(200, None, 1)

    assert webhooks.deliver_due_webhooks(post=post)["retry"] == 1
    assert posted == []
    attempt = db.session.scalar(select(WebhookAttempt))
    assert "public address" in attempt.error
    answers["hooks.partner.example"] = "203.0.114.9"  # a public address
    assert webhooks.deliver_due_webhooks(now=utc_now() + timedelta(minutes=2),
                                         post=post)["delivered"] == 1
    assert posted == ["https://hooks.partner.example/in"]


def test_an_unusable_host_name_is_a_failed_attempt_not_a_crash(client, make_contract,
                                                                partners, today):
    partner, key = partners["A"]
    register(client, key, "https://hooks..partner.example/in")
    place(make_contract(days_to_end=20, partner=partner), today)
    db.session.commit()
    assert webhooks.deliver_due_webhooks()["retry"] == 1
    attempt = db.session.scalar(select(WebhookAttempt))
    assert attempt.status_code is None and attempt.error
