"""The stale-claim window of automatic renewal is measured in UTC on both sides: the claim's
time and the time it is compared with come from the application's clock, so a database
session in New York (hours behind UTC) or a server in Tokyo (hours ahead) cannot make a
claim in progress look dead, or a dead one look alive (tests/conftest.py sets both)."""
from datetime import timedelta

from sqlalchemy import func, select

from portal.autorenew.models import AutoRenewAttempt
from portal.autorenew.services import STALE_CLAIM, attempt_key
from portal.extensions import db
from portal.timeutil import utc_now


def _claim(contract):
    """A claim as a run leaves it when it dies right after claiming: no created_at given,
    the model's default stamps it."""
    end = contract.end_date
    claim = AutoRenewAttempt(contract_id=contract.id, end_date=end, milestone=14,
                             idempotency_key=attempt_key(contract.number, end, 14),
                             run_date=end - timedelta(days=14))
    db.session.add(claim)
    db.session.commit()
    return claim


def _age(claim, age):
    claim.created_at = utc_now() - age
    db.session.commit()


def test_the_stale_claim_window_is_utc(auto_renewing, cycle):
    contract, _token = auto_renewing("ok", days_to_end=40)
    before = utc_now()
    claim = _claim(contract)
    day = contract.end_date - timedelta(days=14)

    # just claimed, and still inside the window: a run in progress, left alone
    assert cycle(day).charged == []
    # stamped in UTC by the application's clock (the database's is hours off here)
    assert before <= claim.created_at <= utc_now()
    _age(claim, STALE_CLAIM - timedelta(minutes=1))
    assert cycle(day).charged == []
    assert db.session.get(AutoRenewAttempt, claim.id).status == "claimed"

    # past the window: its run died, the claim is taken up once with the same key
    _age(claim, STALE_CLAIM + timedelta(minutes=1))
    report = cycle(day)
    assert [m for _, m, _ in report.charged] == [14]
    attempt = db.session.get(AutoRenewAttempt, claim.id)
    assert attempt.status == "succeeded"
    assert utc_now() - timedelta(minutes=1) <= attempt.created_at <= utc_now()  # re-claimed
    assert attempt.finished_at >= attempt.created_at
    assert db.session.scalar(select(func.count()).select_from(AutoRenewAttempt)) == 1
