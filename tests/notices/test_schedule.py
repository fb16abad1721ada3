"""Which notice goes out on which day (docs/rules.md, "Renewal notices")."""
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

from sqlalchemy import func, select

from portal.contracts.models import Contact
from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.notices.models import NoticeRecord
from portal.notices.services import send_notices
from portal.orders.services import place_order, record_payment
from portal.renewals.services import issue_quote
from tests import factories
from tests.notices.conftest import END, days_before


def milestones(contract):
    return [r.milestone for r in db.session.scalars(
        select(NoticeRecord).where(NoticeRecord.contract_id == contract.id)
        .order_by(NoticeRecord.id))]


def text_of(row):
    message = message_from_bytes(row.mime, policy=default_policy)
    return message.get_body(("plain",)).get_content()


def emails():
    return db.session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "notice"))


def test_60_30_15_on_their_days_and_nothing_in_between(book):
    contract = factories.contract(book, end_date=END)
    sent_on = {}
    for n in range(70, -5, -1):
        report = send_notices(days_before(n))
        for _, milestone, _ in report.sent:
            sent_on[milestone] = n
    assert sent_on == {60: 60, 30: 30, 15: 15, -1: -1}  # then the first lapsed reminder
    assert milestones(contract) == [60, 30, 15, -1]
    assert emails() == 4


def test_missed_days_send_only_the_latest_milestone_due(book):
    contract = factories.contract(book, end_date=END)
    send_notices(days_before(20))
    assert milestones(contract) == [30]
    (row,) = db.session.scalars(select(OutboxMessage)).all()
    assert "(in 20 days)" in text_of(row)
    send_notices(days_before(19))
    send_notices(days_before(16))
    assert milestones(contract) == [30]
    send_notices(days_before(3))
    assert milestones(contract) == [30, 15]
    # a run for an earlier day afterwards does not go back to an older milestone
    send_notices(days_before(45))
    assert milestones(contract) == [30, 15]


def test_on_the_end_date_the_last_notice_still_goes_but_not_after(book):
    late = factories.contract(book, end_date=END)
    send_notices(END + timedelta(days=1))
    assert milestones(late) == [-1]  # after E only the lapsed reminder, never the 15-day one
    late = factories.contract(book, end_date=END)
    send_notices(END)
    assert milestones(late) == [15]
    row = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert "ends today" in text_of(row)


def test_nothing_for_oem_cancelled_or_renewed_contracts(book):
    oem = factories.contract(book, end_date=END, channel="oem")
    cancelled = factories.contract(book, end_date=END, status="cancelled")
    renewed = factories.contract(book, end_date=END)
    awaiting = factories.contract(book, end_date=END)
    day = days_before(40)
    order = place_order(issue_quote(renewed, day), "basic", 12, "USD", "bank_transfer",
                        contact_id=None, today=day, actor="test")
    record_payment(order.id, provider="offline", provider_ref="B-1", amount="450.00",
                   currency="USD", received_on=day, actor="staff@x")
    place_order(issue_quote(awaiting, day), "basic", 12, "USD", "bank_transfer",
                contact_id=None, today=day, actor="test")
    report = send_notices(days_before(30))
    assert report.sent == []
    assert report.skipped == {awaiting.number: "already_renewed"}
    for contract in (oem, cancelled, renewed, awaiting):
        assert milestones(contract) == []
    assert emails() == 0


def test_running_twice_sends_nothing_twice(book):
    factories.contract(book, end_date=END)
    factories.contract(book, end_date=END + timedelta(days=30))
    first = send_notices(days_before(30))
    second = send_notices(days_before(30))
    assert [m for _, m, _ in first.sent] == [30, 60]
    assert second.sent == [] and second.skipped == {}
    assert emails() == 2


def test_one_email_per_recipient_in_each_contacts_language(book):
    contract = factories.contract(book, end_date=END, country="DE", language="de")
    contract.account.contacts.extend([
        Contact(name="Ken", email="ken@x.example", language="ja", renewals=True),
        Contact(name="Ana", email="ana@x.example", language="es-MX", renewals=True),
        Contact(name="No Mail", email="quiet@x.example", renewals=False),
        Contact(name="Country", email="country@x.example", language="fi", renewals=True),
    ])
    db.session.flush()
    report = send_notices(days_before(60))
    assert report.sent == [(contract.number, 60, 4)]
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.to)).all()
    assert {(r.to, r.locale) for r in rows} == {
        (contract.account.contacts[0].email, "de"), ("ken@x.example", "ja"),
        ("ana@x.example", "es_419"), ("country@x.example", "de"),
    }
    assert {r.kind for r in rows} == {"notice"} and {r.contract_id for r in rows} == {contract.id}


def test_a_contract_without_a_rate_is_reported_and_retried_next_run(book, app):
    plist = factories.price_list("JP", "JPY", {("VS-ENT", "basic", 12): "50000"})
    contract = factories.contract(plist, end_date=END, country="JP")
    report = send_notices(days_before(30))
    assert contract.number in report.errors and milestones(contract) == []
    factories.rate("JPY", "160.5", days_before(30))
    report = send_notices(days_before(29))
    assert report.sent == [(contract.number, 30, 1)]


def test_lapsed_reminders_1_and_30_days_after_the_end_with_the_reinstatement_quote(book):
    contract = factories.contract(book, end_date=END)
    for n in range(0, 50):
        send_notices(END + timedelta(days=n))
    assert milestones(contract) == [15, -1, -30]
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    first, second = (" ".join(text_of(row).split()) for row in rows[1:3])
    assert "ended on March 1, 2027" in first and "reinstate it online until February 29, 2028" in first
    assert "Reinstate online: http" in first
    # 30 days lapsed: the back-dated fee for 30 days and the reinstatement fee are shown
    assert "Back-dated fee (30 days)" in second and "Reinstatement fee" in second
    assert "has ended: reinstate it online by" in rows[2].subject
    send_notices(END + timedelta(days=30))  # run again: nothing twice
    assert emails() == 3


def test_a_job_that_missed_days_sends_only_the_latest_lapsed_reminder(book):
    contract = factories.contract(book, end_date=END)
    send_notices(END + timedelta(days=40))
    assert milestones(contract) == [-30]
    send_notices(END + timedelta(days=2))  # an earlier day afterwards: nothing older
    assert milestones(contract) == [-30]


def test_no_lapsed_reminder_once_online_reinstatement_is_over(book):
    contract = factories.contract(book, end_date=END)
    send_notices(END + timedelta(days=400))
    assert milestones(contract) == [] and emails() == 0


def test_a_lapsed_reminder_is_in_the_contacts_language_and_none_when_not_online(book):
    german = factories.contract(book, end_date=END, country="DE", language="de")
    premier = factories.contract(book, end_date=END, level="premier")  # level_not_online
    send_notices(END + timedelta(days=1))
    assert milestones(german) == [-1] and milestones(premier) == []
    (row,) = db.session.scalars(select(OutboxMessage)).all()
    assert row.locale == "de" and row.subject.startswith(f"Vertrag {german.number} ist abgelaufen")
    assert "Reaktivierungsgebühr" in text_of(row)
