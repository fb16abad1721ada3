"""The automatic-renewal cycle across simulated days, against the local Stripe emulator:
the pre-charge notice, the off-session charge (success, decline, authentication
required), the retries at 7 and 1 days, the fall-back to the manual notices, and runs that
repeat or die halfway."""
from datetime import timedelta

from sqlalchemy import func, select

from portal.autorenew.models import AutoRenewAttempt
from portal.autorenew.services import attempt_key
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.notices.services import send_notices
from portal.orders.models import Order, Payment


def _emails(kind, contract):
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == kind, OutboxMessage.contract_id == contract.id))


def _charges(contract):
    return db.session.scalar(select(func.count()).select_from(Payment).join(Order).where(
        Order.contract_id == contract.id, Payment.kind == "charge"))


def test_notice_at_30_days_then_one_charge_at_14_renews_from_the_old_end(
        auto_renewing, cycle, today, stripe_client):
    contract, _token = auto_renewing("ok", days_to_end=40)
    end = contract.end_date
    assert cycle(end - timedelta(days=31)).notices == []
    report = cycle(end - timedelta(days=30))
    assert report.notices == [contract.number]
    assert cycle(end - timedelta(days=30)).notices == []  # hourly: staged once
    assert _emails("autorenew_notice", contract) == 1
    notice = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.kind == "autorenew_notice"))
    assert "900.00" in notice.mime.decode("utf-8", "replace")
    # while automatic renewal is on, no manual 30- or 15-day notice
    assert send_notices(end - timedelta(days=30)).sent == []
    assert cycle(end - timedelta(days=15)).charged == []

    report = cycle(end - timedelta(days=14))
    assert [(n, m) for n, m, _ in report.charged] == [(contract.number, 14)]
    again = cycle(end - timedelta(days=14))
    assert again.charged == [] and again.failed == []
    assert _charges(contract) == 1
    order = db.session.scalar(select(Order).where(Order.contract_id == contract.id))
    assert order.status == "paid" and order.term_start == end + timedelta(days=1)
    assert contract.end_date == order.term_end  # the remaining days are kept
    assert _emails("payment_received", contract) == 1
    intent = stripe_client.v1.payment_intents.retrieve(order.provider_payment_id)
    assert intent.status == "succeeded" and intent.amount == 90000
    assert cycle(end - timedelta(days=7)).charged == []  # the new end date is far away


def test_decline_retries_at_7_and_1_days_then_falls_back_to_manual_notices(
        auto_renewing, cycle):
    contract, _token = auto_renewing("declined", days_to_end=40)
    end = contract.end_date
    for days in (14, 7):
        report = cycle(end - timedelta(days=days))
        assert [(m, code) for _, m, code in report.failed] == [(days, "card_declined")]
        assert send_notices(end - timedelta(days=days)).sent == []  # still automatic
    assert cycle(end - timedelta(days=5)).failed == []  # no attempt between milestones
    report = cycle(end - timedelta(days=1))
    assert [m for _, m, _ in report.failed] == [1]
    assert _emails("autorenew_failed", contract) == 3
    assert _charges(contract) == 0 and contract.end_date == end
    sent = send_notices(end - timedelta(days=1)).sent
    assert [(number, milestone) for number, milestone, _ in sent] == [(contract.number, 15)]
    attempts = db.session.scalars(select(AutoRenewAttempt.status)).all()
    assert attempts == ["failed"] * 3


def test_a_card_that_needs_authentication_is_not_charged(auto_renewing, cycle,
                                                          stripe_client):
    contract, _token = auto_renewing("3ds", days_to_end=40)
    report = cycle(contract.end_date - timedelta(days=14))
    assert [code for _, _, code in report.failed] == ["authentication_required"]
    attempt = db.session.scalar(select(AutoRenewAttempt))
    intent = stripe_client.v1.payment_intents.retrieve(attempt.provider_ref)
    assert intent.status == "canceled"
    assert _emails("autorenew_failed", contract) == 1 and _charges(contract) == 0


def test_a_run_that_died_after_claiming_is_retried_with_the_same_key(auto_renewing, cycle):
    contract, _token = auto_renewing("ok", days_to_end=40)
    end = contract.end_date
    claim = AutoRenewAttempt(contract_id=contract.id, end_date=end, milestone=14,
                             idempotency_key=attempt_key(contract.number, end, 14), run_date=end)
    db.session.add(claim)
    db.session.commit()
    # a claim of a run still in progress is left alone
    assert cycle(end - timedelta(days=14)).charged == []
    claim.created_at -= timedelta(hours=1)  # that run died
    db.session.commit()
    report = cycle(end - timedelta(days=14))
    assert [m for _, m, _ in report.charged] == [14]
    attempt = db.session.scalar(select(AutoRenewAttempt))
    assert attempt.id == claim.id and attempt.status == "succeeded"
    assert attempt.idempotency_key == f"autorenew-{contract.number}-{end.isoformat()}-14"
    assert _charges(contract) == 1


def test_over_the_cap_is_not_charged_and_asks_to_pay_by_hand(auto_renewing, cycle,
                                                              card_app, monkeypatch):
    monkeypatch.setitem(card_app.config, "ONLINE_CAP_USD", "100.00")
    contract, _token = auto_renewing("ok", days_to_end=40)
    report = cycle(contract.end_date - timedelta(days=14))
    assert report.charged == [] and report.skipped
    assert _emails("autorenew_failed", contract) == 1 and _charges(contract) == 0


def test_over_the_cap_gets_the_manual_30_day_notice_instead(auto_renewing, cycle, card_app,
                                                           monkeypatch):
    monkeypatch.setitem(card_app.config, "ONLINE_CAP_USD", "100.00")
    contract, _token = auto_renewing("ok", days_to_end=40)
    day = contract.end_date - timedelta(days=30)
    assert cycle(day).notices == [contract.number]
    assert cycle(day).notices == []  # hourly: once
    assert _emails("notice", contract) == 1 and _emails("autorenew_notice", contract) == 0
    notice = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "notice"))
    assert "Ask us for a quote" in notice.mime.decode("utf-8", "replace")


def test_command_runs_the_cycle_for_a_date(auto_renewing, cli):
    contract, _token = auto_renewing("ok", days_to_end=40)
    day = (contract.end_date - timedelta(days=30)).isoformat()
    result = cli("autorenew", "run", "--date", day)
    assert result.exit_code == 0, result.output
    assert f"{contract.number}\tpre-charge notice" in result.output
    assert cli("autorenew", "run", "--date", "2026-02-30").exit_code != 0


def test_an_offline_order_awaiting_payment_is_not_charged(auto_renewing, cycle, today):
    from portal.orders.services import place_order
    from portal.renewals.services import issue_quote

    contract, _token = auto_renewing("ok", days_to_end=40)
    place_order(issue_quote(contract, today), "basic", 12, "USD", "bank_transfer",
                contact_id=None, today=today, actor="customer")
    db.session.commit()
    report = cycle(contract.end_date - timedelta(days=14))
    assert [reason for _, _, reason in report.skipped] == ["customer_paying"]
    assert _charges(contract) == 0 and _emails("autorenew_failed", contract) == 0


def test_a_customer_paying_by_card_at_charge_time_is_not_charged_twice(
        auto_renewing, cycle, today):
    from portal.orders.services import place_order
    from portal.renewals.services import issue_quote

    contract, _token = auto_renewing("ok", days_to_end=40)
    # The customer has the card form open: a pending card order for the same choice.
    mine = place_order(issue_quote(contract, today), "basic", 12, "USD", "visa",
                       contact_id=None, today=today, actor="customer")
    db.session.commit()
    report = cycle(contract.end_date - timedelta(days=14))
    assert [reason for _, _, reason in report.skipped] == ["customer_paying"]
    assert _charges(contract) == 0 and mine.provider_payment_id is None


def test_a_refunded_automatic_renewal_is_not_charged_again(auto_renewing, cycle, today):
    from portal.autorenew.optin import auto_renewal
    from portal.orders.refunds import refund_renewal
    from portal.payments.cards import card_provider

    contract, _token = auto_renewing("ok", days_to_end=40)
    end = contract.end_date
    assert [m for _, m, _ in cycle(end - timedelta(days=14)).charged] == [14]
    refund, refunded_now = refund_renewal(contract.id, end - timedelta(days=10), "customer",
                                          card_provider=card_provider())
    db.session.commit()
    assert refunded_now and contract.end_date == end
    assert auto_renewal(contract) is None  # taking the renewal back stops the cycle
    for days in (7, 1):
        assert cycle(end - timedelta(days=days)).charged == []
    assert _charges(contract) == 1
