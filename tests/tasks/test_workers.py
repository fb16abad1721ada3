"""Notices and automatic renewal on real Celery workers with a real Redis broker.

A day with 500 notices due is scheduled twice while two worker processes share it, and
one of them is killed with SIGKILL halfway: the rule book's "at most once per (contract,
end date, milestone)" must hold, and every notice must still be delivered, once. A day of
automatic renewals scheduled twice on two workers charges each saved card once.
"""
from datetime import timedelta

from sqlalchemy import func, select

from portal.autorenew.models import AutoRenewAttempt, AutoRenewal
from portal.autorenew.tasks import renew_one, run_day
from portal.celery_app import enqueue, queue_depth, workers_ready
from portal.contracts.models import Contract
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.notices.models import NoticeRecord
from portal.mail.tasks import sweep
from portal.notices.tasks import send_day, send_notice
from portal.orders.models import Payment
from portal.timeutil import utc_today
from tests import factories
from tests.checkout.conftest import PRICES
from tests.payments.conftest import stripe_client, stripe_emulator  # noqa: F401
from tests.notices.conftest import END, days_before
from tests.smtpsink import SmtpSink
from tests.tasks.conftest import flush_broker, wait_for

NOTICES = 500


def _book(count):
    factories.launch("US", "2013-03-19")
    factories.rate("USD", "1.0861", days_before(31))
    plist = factories.price_list("US", "USD", {("VS-ENT", "basic", 12): "450.00"})
    for _ in range(count):
        factories.contract(plist, end_date=END)
    db.session.commit()


def _count(model, *where):
    value = db.session.scalar(select(func.count(model.id)).where(*where))
    db.session.rollback()
    return value


def test_a_day_scheduled_twice_with_a_worker_killed_halfway_sends_each_notice_once(
        broker_app, workers):
    day = days_before(30).isoformat()
    with SmtpSink() as sink, broker_app.app_context():
        _book(NOTICES)
        # A message the killed worker had taken stays its own for the lease
        # (4 x SMTP_TIMEOUT_SECONDS + 60 s); then the outbox sweep hands it on.
        group = workers(2, SMTP_URL=sink.url, SMTP_TIMEOUT_SECONDS=5)
        enqueue(send_day, day)
        enqueue(send_day, day)  # the scheduler fired twice (two beats, or beat and a person)

        wait_for(lambda: _count(NoticeRecord) >= NOTICES // 2, 300, "half the notices", group)
        group.kill(0)
        assert len(group.alive()) == 1

        # A task the killed worker held comes back after the visibility timeout; a message
        # it had taken is delivered again once its lease ends, by the sweep that beat runs
        # every minute (run here every few seconds once the queue is empty).
        def all_delivered():
            if queue_depth() != 0:
                return False
            if len(set(sink.handler.message_ids())) >= NOTICES:
                return True
            enqueue(sweep)
            return False

        wait_for(all_delivered, 600, f"{NOTICES} emails at the SMTP sink", group, interval=3)

        def all_marked_sent():
            if _count(OutboxMessage, OutboxMessage.status != "sent") == 0:
                return True
            enqueue(sweep)
            return False

        wait_for(all_marked_sent, 150, "every staged email marked sent", group, interval=5)

        assert _count(NoticeRecord) == NOTICES
        assert _count(OutboxMessage) == NOTICES
        ids = sink.handler.message_ids()
        assert len(set(ids)) == NOTICES
        # The one case the rule book allows a copy: the worker died after the mail server
        # took a message and before its "sent" was committed; the copy keeps its Message-ID.
        assert len(ids) - NOTICES <= 1
        recipients = sorted(str(message["To"]) for message in sink.handler.messages)
        assert len(set(recipients)) == NOTICES
        for message in sink.handler.messages:  # each rendered its PDF in a worker
            assert [part.get_content_type() for part in message.iter_attachments()] == [
                "application/pdf"]


RENEWING = 6


def test_automatic_renewal_scheduled_twice_on_two_workers_charges_each_card_once(
        broker_app, workers, stripe_emulator, stripe_client):
    today = utc_today()
    with broker_app.app_context():
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", today)
        plist = factories.price_list("US", "USD", PRICES)
        old_ends = {}
        for _ in range(RENEWING):
            contract = factories.contract(plist, end_date=today + timedelta(days=14))
            customer = stripe_client.v1.customers.create(params={"email": "b@example.com"})
            method = stripe_client.v1.payment_methods.create(params={
                "type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                         "exp_year": 2034, "cvc": "123"}})
            stripe_client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
            db.session.add(AutoRenewal(contract_id=contract.id, customer_ref=customer.id,
                                       card_ref=method.id, method="visa",
                                       contact_id=contract.account.contacts[0].id))
            old_ends[contract.id] = contract.end_date
        db.session.commit()
        group = workers(2, **stripe_emulator.config())
        wait_for(lambda: workers_ready(2), 120, "both workers listening", group)
        for contract_id, end_date in old_ends.items():  # each one to both workers at once
            enqueue(renew_one, contract_id, end_date.isoformat(), today.isoformat())
            enqueue(renew_one, contract_id, end_date.isoformat(), today.isoformat())
        enqueue(run_day, today.isoformat())  # and the day, scheduled twice
        enqueue(run_day, today.isoformat())

        def all_attempts_finished():
            return _count(AutoRenewAttempt, AutoRenewAttempt.status == "succeeded") == RENEWING
        wait_for(all_attempts_finished, 300, "every charge attempt", group)
        wait_for(lambda: queue_depth() == 0, 120, "an empty queue", group)

        assert _count(AutoRenewAttempt) == RENEWING
        assert _count(Payment) == RENEWING
        intents = stripe_client.v1.payment_intents.list(params={"limit": 100})
        assert len([i for i in intents.data if i.status == "succeeded"]) == RENEWING
        for contract_id, old_end in old_ends.items():
            assert db.session.get(Contract, contract_id).end_date > old_end
        db.session.rollback()


def test_the_sweep_adds_nothing_while_deliveries_wait_in_the_mail_queue(broker_app):
    day = days_before(30).isoformat()
    with broker_app.app_context():
        _book(3)
        for contract_id in db.session.scalars(select(Contract.id)).all():
            send_notice(contract_id, END.isoformat(), 30, day)  # run here, no worker
        assert queue_depth(["mail"]) == 3  # each notice queued its email's delivery
        assert sweep() == 0  # those deliveries still wait: no copies
        assert queue_depth(["mail"]) == 3
        flush_broker(broker_app)  # the deliveries were lost (a broker restarted empty)
        assert sweep() == 3  # every staged message is queued again, once
        assert queue_depth(["mail"]) == 3
