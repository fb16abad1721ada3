"""The daily exchange-rate refresh as a task (storing a day's rates twice changes nothing)."""
from flask import current_app

from portal import logs
from portal.celery_app import task
from portal.rates.providers import ProviderError
from portal.rates.services import refresh_rates
from portal.timeutil import utc_today


@task("portal.rates.refresh")
def refresh(source=None):
    source = source or current_app.config["RATES_SOURCE"]
    try:
        written, _newest, missing = refresh_rates(
            source, utc_today(), current_app.config["RATES_TIMEOUT_SECONDS"], actor="schedule")
    except ProviderError as error:
        current_app.logger.warning("rates refresh from %s failed: %s", source, error)
        logs.job_run("rates.refresh", {"stored": 0}, failed=1)
        return 0
    logs.job_run("rates.refresh", {"stored": written, "missing": len(missing)})
    return written
