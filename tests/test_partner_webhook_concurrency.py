"""Two partner webhook delivery runs at once on PostgreSQL: each event reaches the
endpoint once.

The runs must see each other's commits, so this test has a database of its own; it lives
outside tests/partners/, whose fixtures wrap every test in a rolled-back transaction."""
import json
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.partners import webhooks
from portal.partners.events import contract_summary, record_event
from portal.partners.keys import ensure_partner
from portal.partners.models import WebhookDelivery
from portal.timeutil import utc_today
from tests import factories
from tests.threads import run_together
from tests.webhook_receiver import WebhookReceiver

EVENTS = 40


def test_concurrent_runs_deliver_each_event_once(committing_app):
    app = committing_app
    with WebhookReceiver() as receiver:
        with app.app_context():
            today = utc_today()
            plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
            contract = factories.contract(plist, end_date=today + timedelta(days=30))
            partner = ensure_partner("PC", "Partner C")
            contract.partner, contract.channel = partner, "partner"
            webhooks.register(partner, receiver.url, production=False)
            for _ in range(EVENTS):
                record_event(contract, "contract.expiring",
                             {"contract": contract_summary(contract)})
            db.session.commit()

        results = run_together(app, lambda: webhooks.deliver_due_webhooks(limit=EVENTS),
                               timeout=120)
        ids = [json.loads(body)["id"] for _, body, _ in receiver.received]
    assert sum(result["delivered"] for result in results) == EVENTS
    assert all(result["delivered"] > 0 for result in results)  # the work was shared
    assert len(ids) == len(set(ids)) == EVENTS
    with app.app_context():
        assert set(db.session.scalars(select(WebhookDelivery.status))) == {"delivered"}
