"""Partner webhooks registered through the API and the replay feed of events
(docs/partners.md): secrets shown once, refused URLs and bodies, the feed's pages, order,
settle time and document."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.autorenew.models import AutoRenewal
from portal.autorenew.optin import turn_off
from portal.extensions import db
from portal.notices.services import send_notices
from portal.orders.services import expire_offline_orders
from portal.partners import webhooks
from portal.partners.events import record_date_events
from portal.partners.models import PartnerEvent, PartnerWebhook
from portal.timeutil import utc_now
from tests.access import bearer
from tests.partners.webhook_cases import (  # noqa: F401 (feed_without_delay: a fixture)
    API,
    feed_without_delay,
    pay,
    place,
    register,
)


# --- registering endpoints through the API ---


def test_secret_shown_once_and_not_stored(client, partners):
    _, key = partners["A"]
    created = register(client, key, "https://hooks.partner.example/portal")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    listed = client.get(f"{API}/webhooks", headers=bearer(key)).get_json()["webhooks"]
    assert listed == [{k: created[k] for k in ("id", "url", "created")}]
    row = db.session.get(PartnerWebhook, created["id"])
    stored = " ".join(str(getattr(row, column.key)) for column in PartnerWebhook.__table__.c)
    assert created["secret"] not in stored and created["secret"][6:] not in stored


@pytest.mark.parametrize("url, production", [
    ("http://hooks.partner.example/x", False),
    ("http://127.0.0.1:8080/x", True),
    ("https://127.0.0.1/x", True),
    ("https://10.1.2.3/x", True),
    ("https://localhost/x", True),
    ("ftp://hooks.partner.example/x", False),
    ("https://user:pw@hooks.partner.example/x", False),
    ("https://", False),
    ("https://hooks.partner.example:99999/x", False),
    ("http://127.0.0.2:8080/x", False),
    ("https://hooks.partner.example/x#top", False),
    ("https://hooks.partner.example/" + "x" * 2100, False),
    ("https://hooks.partner.example/a b", False),
])
def test_unacceptable_urls_are_400(app, client, partners, monkeypatch, url, production):
    monkeypatch.setitem(app.config, "PORTAL_ENV", "production" if production else "development")
    _, key = partners["A"]
    response = client.post(f"{API}/webhooks", headers=bearer(key), json={"url": url})
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"
    assert db.session.scalar(select(func.count(PartnerWebhook.id))) == 0


@pytest.mark.parametrize("body", [None, [], "x", {}, {"url": 5}, {"url": "https://a.example",
                                                                   "extra": 1}])
def test_bad_bodies_are_400(client, partners, body):
    _, key = partners["A"]
    response = client.post(f"{API}/webhooks", headers=bearer(key), json=body)
    assert response.status_code == 400


def test_endpoints_of_another_partner_are_invisible(client, partners):
    _, key_a = partners["A"]
    _, key_b = partners["B"]
    created = register(client, key_a, "https://a.partner.example/hooks")
    assert client.get(f"{API}/webhooks", headers=bearer(key_b)).get_json() == {"webhooks": []}
    response = client.delete(f"{API}/webhooks/{created['id']}", headers=bearer(key_b))
    assert response.status_code == 404
    assert len(client.get(f"{API}/webhooks", headers=bearer(key_a)).get_json()["webhooks"]) == 1
    for bad in ("abc", "0", "99999999999", "-1"):
        assert client.delete(f"{API}/webhooks/{bad}", headers=bearer(key_a)).status_code == 404


def test_at_most_five_endpoints(client, partners):
    _, key = partners["A"]
    for n in range(webhooks.MAX_ENDPOINTS):
        register(client, key, f"https://hooks.partner.example/{n}")
    response = client.post(f"{API}/webhooks", headers=bearer(key),
                           json={"url": "https://hooks.partner.example/more"})
    assert response.status_code == 409 and response.get_json()["error"] == "conflict"
    again = client.post(f"{API}/webhooks", headers=bearer(key),
                        json={"url": "https://hooks.partner.example/0"})
    assert again.status_code == 409


# --- the replay feed ---


def test_events_and_the_api_give_a_contract_one_status(client, make_contract, partners,
                                                       today):
    """An event's ``data.contract.status`` is the status GET /contracts/<number> shows
    for the same contract at the same time (docs/interfaces.md: expiring 0 to 60 days
    before the end date, expired after it), not the contract's stored active/cancelled."""
    partner, key = partners["A"]
    expiring = make_contract(days_to_end=20, partner=partner)
    expired = make_contract(days_to_end=-1, partner=partner)
    after = 0

    def events_and_api():
        """``{number: (status, event types)}`` of the events recorded since the last call;
        the test fails unless each event's status is the one the API shows now."""
        nonlocal after
        db.session.commit()
        feed = client.get(f"{API}/events", headers=bearer(key),
                          query_string={"after": after}).get_json()["events"]
        after = max([after] + [event["id"] for event in feed])
        seen = {}
        for event in feed:
            number = event["data"]["contract"]["number"]
            shown = client.get(f"{API}/contracts/{number}", headers=bearer(key)).get_json()
            assert event["data"]["contract"]["status"] == shown["status"], event
            seen.setdefault(number, (shown["status"], []))[1].append(event["type"])
        return seen

    order = place(expiring, today)
    assert events_and_api() == {expiring.number: ("expiring", ["order.placed"])}
    send_notices(today)
    assert events_and_api() == {expiring.number: ("expiring", ["contract.expiring"]),
                                expired.number: ("expired", ["contract.expired"])}
    pay(order, today)
    assert events_and_api() == {expiring.number: ("active", ["order.paid",
                                                             "contract.renewed"])}


def test_feed_pages_in_order_and_only_own_events(client, make_contract, partners, today):
    partner_a, key_a = partners["A"]
    partner_b, key_b = partners["B"]
    for _ in range(3):
        pay(place(make_contract(days_to_end=20, partner=partner_a), today), today)
    place(make_contract(days_to_end=20, partner=partner_b), today)
    db.session.commit()
    seen, after = [], 0
    while True:
        page = client.get(f"{API}/events", headers=bearer(key_a),
                          query_string={"after": after, "limit": 4}).get_json()
        seen += page["events"]
        if not page["has_more"]:
            break
        after = page["events"][-1]["id"]
    assert len(seen) == 9
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)
    own = db.session.scalars(select(PartnerEvent.id).where(
        PartnerEvent.partner_id == partner_a.id).order_by(PartnerEvent.id)).all()
    assert [e["id"] for e in seen] == own
    b_events = client.get(f"{API}/events", headers=bearer(key_b)).get_json()["events"]
    assert [e["type"] for e in b_events] == ["order.placed"]
    last = client.get(f"{API}/events", headers=bearer(key_a),
                      query_string={"after": own[-1]}).get_json()
    assert last == {"events": [], "has_more": False}


def test_feed_holds_back_events_younger_than_the_settle_time(app, client, make_contract,
                                                             partners, today, monkeypatch):
    monkeypatch.setitem(app.config, "PARTNER_EVENTS_SETTLE_SECONDS", 60)
    partner, key = partners["A"]
    place(make_contract(days_to_end=20, partner=partner), today)
    db.session.commit()
    assert client.get(f"{API}/events", headers=bearer(key)).get_json()["events"] == []
    db.session.execute(PartnerEvent.__table__.update().values(
        created_at=utc_now() - timedelta(seconds=61)))
    assert len(client.get(f"{API}/events", headers=bearer(key)).get_json()["events"]) == 1


@pytest.mark.parametrize("params", [{"after": "-1"}, {"after": "x"}, {"after": "1" * 12},
                                    {"limit": "0"}, {"limit": "101"}, {"since": "1"},
                                    {"after": ["1", "2"]}])
def test_feed_bad_query_is_400(client, partners, params):
    _, key = partners["A"]
    assert client.get(f"{API}/events", headers=bearer(key),
                      query_string=params).status_code == 400


def test_every_event_type_matches_the_document(client, make_contract, partners, today):
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource

    from portal.partners.models import EVENT_TYPES
    from portal.partners.openapi import openapi_document

    partner, key = partners["A"]
    renewed = make_contract(days_to_end=20, partner=partner)
    pay(place(renewed, today), today)
    lapsed = place(make_contract(days_to_end=30, partner=partner), today)
    expire_offline_orders(lapsed.expires_on + timedelta(days=1))
    db.session.add(AutoRenewal(contract_id=renewed.id, enabled=True, provider="stripe",
                               customer_ref="cus_1", card_ref="pm_1", method="card"))
    db.session.flush()
    turn_off(renewed, "customer:1")
    make_contract(days_to_end=-2, partner=partner)
    record_date_events(today)
    db.session.commit()
    page = client.get(f"{API}/events", headers=bearer(key)).get_json()
    assert {event["type"] for event in page["events"]} == set(EVENT_TYPES)
    registry = Registry().with_resource("urn:api", Resource.opaque(openapi_document()))
    validator = OAS30Validator({"$ref": "urn:api#/components/schemas/EventPage"},
                               registry=registry)
    assert [error.message for error in validator.iter_errors(page)] == []
