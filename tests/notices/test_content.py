"""What a notice says, what it carries, and that it reaches each recipient once over SMTP."""
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from babel.dates import format_date
from babel.numbers import format_currency
from pypdf import PdfReader
from sqlalchemy import select

from portal.extensions import db
from portal.links.services import find_link
from portal.mail.models import OutboxMessage
from portal.mail.outbox import drain
from portal.notices.services import send_notices
from tests import factories
from tests.notices.conftest import END, days_before
from tests.smtpsink import SmtpSink


@pytest.fixture
def smtp(app, monkeypatch):
    with SmtpSink() as sink:
        monkeypatch.setitem(app.config, "SMTP_URL", sink.url)
        yield sink.handler


def spaces(text):
    """PDF text extraction gives plain spaces where the layout had no-break ones."""
    return re.sub(r"[\u00a0\u202f]", " ", text)


def pdf_text(data):
    return spaces("\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def delivered_notice(smtp, book, **contract_args):
    contract = factories.contract(book, end_date=END, **contract_args)
    send_notices(days_before(30))
    assert drain()["sent"] == 1
    (message,) = smtp.messages
    return contract, message


def test_notice_content_link_and_pdf(smtp, book, client):
    contract, message = delivered_notice(smtp, book, lines=[("VS-ENT", 2)], language="de",
                                         country="DE")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert contract.number in message["Subject"]
    total = format_currency(Decimal("900.00"), "USD", locale="de")  # 2 x 450.00, basic 12
    for body in (text, html):
        assert contract.number in body and "VS-ENT" in body
        assert total in body
        assert format_currency(Decimal("3240.00"), "USD", locale="de") in body  # other option
        assert format_date(END, "long", locale="de") in body
        assert contract.account.contacts[0].email in body
    url = re.search(r"http://127\.0\.0\.1:5000/r/(\S+)", text)
    link = find_link(url.group(1))
    assert link.contract_id == contract.id and link.purpose == "notice"
    assert link.reference in text and link.reference in html
    opened = client.get(f"/r/{url.group(1)}")
    assert opened.status_code == 303 and url.group(1) not in opened.headers["Location"]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    pdf = pdf_text(attachment.get_content())
    assert contract.number in pdf and spaces(total) in pdf


def test_over_cap_contract_gets_its_quote_and_a_quote_request_link(smtp, book):
    contract, message = delivered_notice(smtp, book, lines=[("VS-BIG", 1)])
    text = message.get_body(("plain",)).get_content()
    assert "Request a quote" in text and "Renew online" not in text
    assert "above what can be paid online" in text
    assert "$5,000.00" in text
    (attachment,) = list(message.iter_attachments())
    assert "$5,000.00" in pdf_text(attachment.get_content())


def test_staged_notices_survive_a_crash_and_are_delivered_once(smtp, book):
    for _ in range(3):
        factories.contract(book, end_date=END)
    send_notices(days_before(15))
    # the process dies here: nothing was delivered, the staged rows are committed
    assert smtp.messages == []
    assert drain(limit=2)["sent"] == 2
    assert drain()["sent"] == 1
    send_notices(days_before(15))
    assert drain()["sent"] == 0
    ids = smtp.message_ids()
    assert len(ids) == 3 and len(set(ids)) == 3
    rows = db.session.scalars(select(OutboxMessage)).all()
    assert {r.status for r in rows} == {"sent"} and sorted(r.message_id for r in rows) == sorted(ids)


def test_notices_cli(cli, book):
    contract = factories.contract(book, end_date=END)
    result = cli("notices", "send", "--date", days_before(60).isoformat())
    assert result.exit_code == 0 and contract.number in result.output
    assert "1 notice(s), 1 email(s) staged" in result.output
    bad = cli("notices", "send", "--date", "2026-13-01")
    assert bad.exit_code != 0


def test_notice_mentions_the_accounts_other_due_contracts_with_one_link(smtp, book, client):
    """Notices stay per contract; each mentions the account's other contracts due in the
    same window, with one link to the combined order."""

    contract = factories.contract(book, end_date=END, lines=[("VS-ENT", 2)])
    sibling = factories.contract(book, account=contract.account,
                                 end_date=END + timedelta(days=10))
    far = factories.contract(book, account=contract.account, end_date=END + timedelta(days=300))
    oem = factories.contract(book, account=contract.account, end_date=END, channel="oem")
    send_notices(days_before(30))
    assert drain()["sent"] == 2  # one notice per due contract (none for the OEM one)
    for message in smtp.messages:
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        own, other = ((contract, sibling) if contract.number in message["Subject"]
                      else (sibling, contract))
        assert f'data-other-contract="{other.number}"' in html
        assert f'data-other-contract="{own.number}"' not in html
        assert far.number not in text and far.number not in html
        assert oem.number not in text  # renewed through its OEM partner, not here
        combined = re.search(r"(http://127\.0\.0\.1:5000/r/\S+)\?to=contracts", text)
        assert combined, text
    token = combined.group(1).rsplit("/", 1)[1]
    opened = client.get(f"/r/{token}?to=contracts")
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/renewal/contracts")
