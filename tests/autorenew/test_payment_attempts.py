"""An automatic-renewal charge is a payment attempt of its order, charged off-session
with the charge's own key: an answer that never came leaves it unknown (reconciliation
leaves it to the cycle), and the cycle's next run asks again with the same key, so the
card is charged once and the paid renewal is not lost."""
from datetime import timedelta

from sqlalchemy import select

from portal.autorenew.models import AutoRenewAttempt
from portal.autorenew.services import run_cycle
from portal.extensions import db
from portal.orders.models import AttemptState, PaymentAttempt
from portal.payments.cards import provider
from portal.payments.provider import ProviderError
from portal.payments.reconciliation import reconcile


class LostAnswer:
    """The provider charges the card, but its answer never reaches the portal."""

    def __init__(self, real):
        self.real, self.name, self.keys = real, real.name, []

    def charge_saved_card(self, request, customer_ref, card_ref):
        self.keys.append(request.idempotency_key)
        self.real.charge_saved_card(request, customer_ref, card_ref)
        raise ProviderError("read timeout")

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_charge_whose_answer_was_lost_is_asked_again_with_its_key(
        auto_renewing, cycle, stripe_client):
    contract, _token = auto_renewing("ok", days_to_end=40)
    day = contract.end_date - timedelta(days=14)
    lost = LostAnswer(provider())
    report = run_cycle(day, lost)
    db.session.expire_all()
    assert report.charged == [] and report.errors == [(contract.number, "read timeout")]
    (payment,) = db.session.scalars(select(PaymentAttempt)).all()
    assert payment.state == AttemptState.UNKNOWN and payment.off_session
    assert payment.provider_ref is None and payment.order.status == "pending"
    assert reconcile() == []  # the cycle repeats its own charges, with their keys

    claim = db.session.scalar(select(AutoRenewAttempt))
    claim.created_at -= timedelta(hours=1)  # past the stale-claim window
    db.session.commit()
    report = cycle(day)
    assert [m for _, m, _ in report.charged] == [14]
    (payment,) = db.session.scalars(select(PaymentAttempt)).all()
    assert payment.state == AttemptState.SUCCEEDED
    assert lost.keys == [payment.idempotency_key] == [claim.idempotency_key]
    intents = [i.id for i in stripe_client.v1.payment_intents.list(params={"limit": 100}).data
               if i.to_dict()["metadata"].get("order") == payment.order.reference]
    assert intents == [payment.provider_ref] and payment.order.status == "paid"
