"""When automatic renewal acts on a contract, and which contracts it leaves to the manual
notices: read by automatic renewal itself and by the notices, which must not import it."""
from flask import current_app
from sqlalchemy import exists, or_

from portal.autorenew.models import RETRY_MILESTONES, AutoRenewAttempt, AutoRenewal
from portal.contracts.models import Contract


def charge_milestones():
    """Days before E on which a charge is attempted, the first one first."""
    first = int(current_app.config["AUTO_RENEW_CHARGE_DAYS"])
    return tuple(sorted({first, *RETRY_MILESTONES}, reverse=True))


def manual_path_condition():
    """SQL: the contract gets the manual 30- and 15-day notices, i.e. automatic renewal
    is off, or its last charge attempt for the current end date did not renew it."""
    last = min(charge_milestones())
    on = exists().where(AutoRenewal.contract_id == Contract.id, AutoRenewal.enabled.is_(True))
    given_up = exists().where(
        AutoRenewAttempt.contract_id == Contract.id,
        AutoRenewAttempt.end_date == Contract.end_date,
        AutoRenewAttempt.milestone == last,
        AutoRenewAttempt.status.in_(("failed", "skipped")),
    )
    return or_(~on, given_up)
