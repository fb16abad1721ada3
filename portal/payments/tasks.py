"""Reconciliation as tasks: one per unsettled card order, one per card refund and one
per claimed provider call whose provider answer was never recorded."""
from portal import logs
from portal.celery_app import enqueue, task
from portal.extensions import db
from portal.payments.cards import provider
from portal.payments.claims import finish_claim
from portal.payments.reconciliation import (
    reconcile_order,
    reconcile_refund,
    unfinished_claim_keys,
    unfinished_refund_ids,
    unsettled_order_ids,
)


@task("portal.payments.reconcile")
def reconcile_all():
    """Queue a reconciliation for each unsettled card order, each unfinished card refund
    and each unfinished claimed provider call (nothing without a provider)."""
    if provider() is None:
        return 0
    order_ids = unsettled_order_ids()
    refund_ids = unfinished_refund_ids()
    claim_keys = unfinished_claim_keys()
    db.session.commit()
    for order_id in order_ids:
        enqueue(reconcile_one, order_id)
    for refund_id in refund_ids:
        enqueue(reconcile_one_refund, refund_id)
    for key in claim_keys:
        enqueue(reconcile_one_claim, key)
    logs.job_run("payments.schedule", {"unsettled": len(order_ids),
                                       "refunds": len(refund_ids),
                                       "claims": len(claim_keys)})
    return len(order_ids) + len(refund_ids) + len(claim_keys)


@task("portal.payments.reconcile_order")
def reconcile_one(order_id):
    return reconcile_order(order_id)[1]


@task("portal.payments.reconcile_refund")
def reconcile_one_refund(refund_id):
    return reconcile_refund(refund_id)[1]


@task("portal.payments.reconcile_claim")
def reconcile_one_claim(key):
    return finish_claim(key)[1]
