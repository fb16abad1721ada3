"""Partner events: what happened to a partner's contracts, recorded in the transaction of
the change itself and fanned out to the partner's webhook endpoints.

The packages that make the changes (orders, payments, automatic renewal, notices) know
nothing of partners: they send the signals of portal/signals.py, and ``connect`` below
subscribes to them. A contract sold without a partner records nothing.
"""
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import signals
from portal.contracts.models import Contract
from portal.extensions import db
from portal.money import amount_string
from portal.partners.models import PartnerEvent, PartnerWebhook, WebhookDelivery
from portal.partners.services import contract_status, status_filter
from portal.timeutil import utc_now, utc_today

#: A contract that ended longer ago than this is not announced as expired any more: a
#: portal that was down for a while catches up, a new one does not replay years of books.
EXPIRED_CATCH_UP_DAYS = 30


def timestamp(moment):
    return moment.replace(microsecond=0).isoformat() + "Z"


def contract_summary(contract, today=None):
    """The contract as an event shows it; ``status`` is the API's (``contract_status``) on
    ``today``, the day the event is recorded (UTC)."""
    return {"number": contract.number,
            "status": contract_status(contract, today or utc_today()),
            "service_level": contract.service_level, "term_months": contract.term_months,
            "end_date": contract.end_date.isoformat()}


def order_summary(order):
    return {"reference": order.reference, "status": order.status, "method": order.method,
            "amount_due": amount_string(order.amount_due, order.pay_currency),
            "currency": order.pay_currency, "service_level": order.service_level,
            "term_months": order.term_months, "term_start": order.term_start.isoformat(),
            "term_end": order.term_end.isoformat(), "placed_at": timestamp(order.placed_at)}


def event_document(event):
    """The JSON of an event, as POSTed to endpoints and listed by the feed."""
    return {"id": event.id, "type": event.type, "created": timestamp(event.created_at),
            "data": event.data}


def record_event(contract, event_type, data, once_key=None):
    """Record an event of ``contract`` for its partner, and one pending delivery per live
    endpoint, in the caller's transaction. Returns the event, or None when the contract
    has no partner or an event with ``once_key`` exists already."""
    if contract.partner_id is None:
        return None
    event = PartnerEvent(partner_id=contract.partner_id, contract_id=contract.id,
                         type=event_type, data=data, once_key=once_key, created_at=utc_now())
    if once_key is not None:
        try:
            with db.session.begin_nested():
                db.session.add(event)
        except IntegrityError:
            return None
    else:
        db.session.add(event)
        db.session.flush()
    endpoints = db.session.scalars(select(PartnerWebhook.id).where(
        PartnerWebhook.partner_id == contract.partner_id, PartnerWebhook.removed_at.is_(None)))
    for webhook_id in endpoints:
        db.session.add(WebhookDelivery(event_id=event.id, webhook_id=webhook_id,
                                       next_attempt_at=event.created_at))
    db.session.flush()
    return event


# --- receivers of the business signals ---


def _order_event(event_type):
    def receive(_sender, order, **_extra):
        record_event(order.contract, event_type, {"contract": contract_summary(order.contract),
                                                  "order": order_summary(order)})
    receive.__name__ = "on_" + event_type.replace(".", "_")
    return receive


on_order_placed = _order_event("order.placed")
on_order_paid = _order_event("order.paid")
on_order_lapsed = _order_event("order.lapsed")


def on_order_paid_renewed(_sender, order, **_extra):
    contract = order.contract
    record_event(contract, "contract.renewed", {
        "contract": contract_summary(contract),
        "previous_end_date": order.previous_end_date.isoformat(),
        "order": order_summary(order)})


def on_auto_renew_changed(_sender, contract, enabled, **_extra):
    record_event(contract, "auto_renew.changed",
                 {"contract": contract_summary(contract), "auto_renew": bool(enabled)})


def on_renewal_day(_sender, today, **_extra):
    record_date_events(today)


def record_date_events(today):
    """``contract.expiring`` and ``contract.expired`` for partner contracts, once per
    contract and end date; each contract in its own short transaction. Returns the count."""
    windows = (  # the contracts whose status (``contract_status``) is expiring, expired
        ("contract.expiring", status_filter("expiring", today)),
        ("contract.expired", status_filter("expired", today)
         & (Contract.end_date >= today - timedelta(days=EXPIRED_CATCH_UP_DAYS))),
    )
    recorded = 0
    for event_type, window in windows:
        candidates = db.session.scalars(select(Contract).where(
            Contract.partner_id.is_not(None), window).order_by(Contract.id)).all()
        announced = set(db.session.scalars(select(PartnerEvent.once_key).where(
            PartnerEvent.type == event_type,
            PartnerEvent.contract_id.in_([c.id for c in candidates]))))
        for contract in candidates:
            key = f"{event_type}:{contract.id}:{contract.end_date.isoformat()}"
            if key in announced:
                continue
            if record_event(contract, event_type,
                            {"contract": contract_summary(contract, today)},
                            once_key=key) is not None:
                recorded += 1
            db.session.commit()
    return recorded


def connect():
    """Subscribe to the business signals (once per process; blinker ignores repeats)."""
    signals.order_placed.connect(on_order_placed)
    signals.order_paid.connect(on_order_paid)
    signals.order_paid.connect(on_order_paid_renewed)
    signals.order_lapsed.connect(on_order_lapsed)
    signals.auto_renew_changed.connect(on_auto_renew_changed)
    signals.renewal_day.connect(on_renewal_day)


# --- the feed ---


def events_after(partner, after, limit, settled_before):
    """The partner's events with an id above ``after``, oldest first, at most ``limit``,
    and only those recorded before ``settled_before`` (see docs/partners.md, "Replay")."""
    return db.session.scalars(
        select(PartnerEvent).where(PartnerEvent.partner_id == partner.id,
                                   PartnerEvent.id > after,
                                   PartnerEvent.created_at < settled_before)
        .order_by(PartnerEvent.id).limit(limit)).all()
