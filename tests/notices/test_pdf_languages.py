"""The quote PDF in every email language, with Japanese, Korean and Chinese text intact.

A glyph the fonts lack comes out of text extraction as a control character or a wrong
one, so comparing the extracted text with what went in finds any missing glyph.
"""
import io
import re
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from babel.dates import format_date
from babel.numbers import format_currency
from pypdf import PdfReader
from sqlalchemy import select

from portal.contracts.models import Contact
from portal.extensions import db
from portal.i18n import EMAIL_LOCALES
from portal.mail.models import OutboxMessage
from portal.notices.services import send_notices
from tests import factories
from tests.notices.conftest import END, days_before

ACCOUNT = "株式会社北極星 한빛 주식회사 北京云端科技 Müller & Søn Ñandú"
PRODUCT = "ボールトサーバー 볼트 서버 保险库服务器"


def normalise(text):
    return re.sub(r"\s+", " ", re.sub(r"[\u00a0\u202f]", " ", text)).strip()


@pytest.fixture
def notices_by_locale(book):
    factories.product("VS-ENT").name = PRODUCT
    contract = factories.contract(book, end_date=END, language="en")
    contract.account.name = ACCOUNT
    contract.account.contacts.extend(
        Contact(name=f"Contact {locale}", email=f"{locale.lower()}@x.example",
                language=locale.replace("_", "-"), renewals=True)
        for locale in EMAIL_LOCALES if locale != "en"
    )
    db.session.flush()
    day = days_before(30)
    send_notices(day)
    rows = db.session.scalars(select(OutboxMessage)).all()
    return day, {row.locale: row for row in rows}


def test_every_email_language_renders_its_pdf_without_missing_glyphs(notices_by_locale):
    day, by_locale = notices_by_locale
    assert sorted(by_locale) == sorted(EMAIL_LOCALES)
    for locale, row in by_locale.items():
        message = message_from_bytes(row.mime, policy=default_policy)
        assert message["Content-Language"] == locale.replace("_", "-")
        (attachment,) = list(message.iter_attachments())
        reader = PdfReader(io.BytesIO(attachment.get_content()))
        text = normalise("\n".join(page.extract_text() for page in reader.pages))
        expected = [ACCOUNT, PRODUCT, format_date(day, "long", locale=locale),
                    format_currency(450, "USD", locale=locale)]
        for piece in expected:
            assert normalise(piece) in text, (locale, piece)
        assert not re.search(r"[\x00-\x08\x0b-\x1f]", text), locale
        fonts = {str(font.get_object()["/BaseFont"]) for page in reader.pages
                 for font in page["/Resources"]["/Font"].values()}
        assert any("CJK" in name for name in fonts), (locale, fonts)


def test_every_email_language_is_translated_in_body_and_pdf(notices_by_locale):
    from babel.support import Translations

    from portal.i18n import tools
    from tests.i18n.english import english_left

    _day, by_locale = notices_by_locale
    for locale, row in by_locale.items():
        if locale == "en":
            continue
        message = message_from_bytes(row.mime, policy=default_policy)
        body = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        (attachment,) = list(message.iter_attachments())
        pdf = "\n".join(page.extract_text() for page in PdfReader(
            io.BytesIO(attachment.get_content())).pages)
        title = Translations.load(str(tools.DIRECTORY), [locale]).gettext("Renewal quote")
        assert title != "Renewal quote" and normalise(title) in normalise(pdf), locale
        for part, text in (("subject", str(message["Subject"])), ("text", body),
                           ("html", html), ("pdf", pdf)):
            assert not english_left(text), (locale, part, english_left(text)[:3])
