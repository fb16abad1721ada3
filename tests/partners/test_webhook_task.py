"""Partner webhook delivery as a scheduled task."""
from portal.partners import tasks


def test_the_schedule_delivers_webhooks_through_its_task(app, monkeypatch):
    """The periodic task calls the delivery run and logs its counts."""
    seen = []
    monkeypatch.setattr(tasks, "deliver_due_webhooks",
                        lambda limit: seen.append(limit) or {"delivered": 2, "retry": 0,
                                                             "failed": 0, "cancelled": 0})
    assert tasks.deliver_webhooks() == {"delivered": 2, "retry": 0, "failed": 0, "cancelled": 0}
    assert seen == [500]
