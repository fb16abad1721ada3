"""Partner webhook delivery as a task: each run delivers what is due (claimed under row
locks, so runs on several workers at once deliver each event once)."""
from portal import logs
from portal.celery_app import task
from portal.partners.webhooks import deliver_due_webhooks


@task("portal.partners.deliver_webhooks")
def deliver_webhooks(limit=500):
    counts = deliver_due_webhooks(limit=limit)
    logs.job_run("partners.deliver_webhooks", counts, failed=counts["failed"])
    return counts
