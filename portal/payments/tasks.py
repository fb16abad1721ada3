"""Reconciliation as tasks: one per unsettled card order."""
from portal import logs
from portal.celery_app import enqueue, task
from portal.extensions import db
from portal.payments.services import provider, reconcile_order, unsettled_order_ids


@task("portal.payments.reconcile")
def reconcile_all():
    """Queue a reconciliation for each unsettled card order (nothing without a provider)."""
    if provider() is None:
        return 0
    order_ids = unsettled_order_ids()
    db.session.commit()
    for order_id in order_ids:
        enqueue(reconcile_one, order_id)
    logs.job_run("payments.schedule", {"unsettled": len(order_ids)})
    return len(order_ids)


@task("portal.payments.reconcile_order")
def reconcile_one(order_id):
    return reconcile_order(order_id)[1]
