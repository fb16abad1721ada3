"""Shared pieces of the partner event and webhook tests: registering an endpoint,
checking a signature, placing and paying an order, delivering until nothing is due."""
import hashlib
import hmac
import time

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.orders.services import place_order, record_payment
from portal.partners import webhooks
from portal.partners.models import PartnerEvent, WebhookDelivery
from portal.renewals.services import issue_quote
from tests.access import bearer

API = "/api/partner/v1"


@pytest.fixture(autouse=True)
def feed_without_delay(app, monkeypatch):
    """Events are fed at once (no settle time) in every test of a module that imports this."""
    monkeypatch.setitem(app.config, "PARTNER_EVENTS_SETTLE_SECONDS", 0)


def register(client, key, url):
    response = client.post(f"{API}/webhooks", headers=bearer(key), json={"url": url})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def verify(secret, headers, body, tolerance=300):
    """What a partner's receiver does (docs/partners.md, "Verifying a signature")."""
    fields = dict(part.split("=", 1) for part in headers["Portal-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return (hmac.compare_digest(expected, fields["v1"])
            and abs(time.time() - int(fields["t"])) <= tolerance)


def place(contract, today, method="bank_transfer"):
    return place_order(issue_quote(contract, today), "basic", 12, "USD", method,
                       contact_id=None, today=today, actor="customer")


def pay(order, today):
    return record_payment(order.id, provider="bank", provider_ref=f"bank-{order.reference}",
                          amount=order.amount_due, currency=order.pay_currency,
                          received_on=today, actor="staff")


def deliver_until_done(start, rounds=40):
    """Run deliveries as a schedule would, the clock moving past each backoff."""
    now, totals = start, {}
    for _ in range(rounds):
        counts = webhooks.deliver_due_webhooks(now=now, limit=100)
        for outcome, count in counts.items():
            totals[outcome] = totals.get(outcome, 0) + count
        pending = db.session.scalar(select(func.count(WebhookDelivery.id)).where(
            WebhookDelivery.status == "pending"))
        if not pending:
            break
        now += webhooks.RETRY_MAX
    return totals


def types_of(partner):
    return db.session.scalars(select(PartnerEvent.type).where(
        PartnerEvent.partner_id == partner.id).order_by(PartnerEvent.id)).all()
