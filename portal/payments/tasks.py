"""Reconciliation as tasks: one per unsettled card order, one per card refund whose
provider answer was never recorded."""
from portal import logs
from portal.celery_app import enqueue, task
from portal.extensions import db
from portal.payments.services import (
    provider,
    reconcile_order,
    reconcile_refund,
    unfinished_refund_ids,
    unsettled_order_ids,
)


@task("portal.payments.reconcile")
def reconcile_all():
    """Queue a reconciliation for each unsettled card order and each unfinished card
    refund (nothing without a provider)."""
    if provider() is None:
        return 0
    order_ids = unsettled_order_ids()
    refund_ids = unfinished_refund_ids()
    db.session.commit()
    for order_id in order_ids:
        enqueue(reconcile_one, order_id)
    for refund_id in refund_ids:
        enqueue(reconcile_one_refund, refund_id)
    logs.job_run("payments.schedule", {"unsettled": len(order_ids),
                                       "refunds": len(refund_ids)})
    return len(order_ids) + len(refund_ids)


@task("portal.payments.reconcile_order")
def reconcile_one(order_id):
    return reconcile_order(order_id)[1]


@task("portal.payments.reconcile_refund")
def reconcile_one_refund(refund_id):
    return reconcile_refund(refund_id)[1]
