"""Email delivery as tasks: one task per message, and the sweep that finds what is due.

A message is claimed under a row lock and marked sent in the transaction that hands it
to the server, so a delivery task run twice (or next to ``portal outbox drain``) sends
nothing the second time.
"""
from portal import logs
from portal.celery_app import enqueue, queue_depth, queued, task
from portal.extensions import db
from portal.mail.outbox import deliver_one, due_message_ids

#: At most this many messages are queued by one sweep; the next sweep takes the rest.
SWEEP_LIMIT = 5000


@task("portal.mail.deliver_message")
def deliver_message(message_id):
    return deliver_one(message_id)


@task("portal.mail.sweep")
def sweep():
    """Queue delivery of every message due (new ones, and retries whose time has come).

    While deliveries are still waiting in the mail queue (a day of notices queues its
    emails itself), the sweep queues nothing: it would only add copies of those tasks.
    """
    if queued() and queue_depth(["mail"]):
        logs.job_run("outbox.sweep", {"due": 0, "waiting": 1})
        return 0
    message_ids = due_message_ids(limit=SWEEP_LIMIT)
    db.session.commit()
    outcomes = {"sent": 0, "retry": 0, "failed": 0}
    for message_id in message_ids:
        outcome = enqueue(deliver_message, message_id)
        if outcome:
            outcomes[outcome] += 1
    logs.job_run("outbox.sweep", {"due": len(message_ids), **outcomes},
                 failed=outcomes["failed"])
    return len(message_ids)
