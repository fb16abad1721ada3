"""The prepared CJK fonts of the quote PDF (portal/pdf.py): the PDF draws its text from
the locale's small prepared font, and a character outside it (a rare kanji or hangul
syllable in a customer's name) is still drawn with a real glyph, from the whole face
listed next, never as a missing glyph."""
import io
import re
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from sqlalchemy import select

from portal.extensions import db
from portal.mail.models import OutboxMessage
from portal.notices.services import send_notices
from portal.pdf import CJK_FACES, _face_file, prepared_font
from tests import factories
from tests.notices.conftest import END, days_before

#: Names with characters outside each locale's prepared font (not in JIS X 0208 level 1,
#: KS X 1001 or GB 2312 level 1), one of them outside the Basic Multilingual Plane.
RARE_NAMES = {"ja": "髙橋𠮷野 株式会社", "ko": "똠햏 상사", "zh_Hans": "堃犇 科技"}
RARE = {"ja": "髙𠮷", "ko": "똠햏", "zh_Hans": "堃犇"}


def cmap(path, index=0):
    with TTFont(path, fontNumber=index, lazy=True) as font:
        return font.getBestCmap()


def drawn_glyphs(pdf):
    """``{character: (font name, has an outline)}`` for every character the PDF's fonts
    map a glyph to, read from each font's ToUnicode map and its embedded font program."""
    drawn = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            to_unicode = font["/ToUnicode"].get_object().get_data().decode("latin-1")
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            program = (descriptor.get("/FontFile3") or descriptor["/FontFile2"]).get_object()
            with TTFont(io.BytesIO(program.get_data())) as embedded:
                order, glyphs = embedded.getGlyphOrder(), embedded.getGlyphSet()
                for glyph, text in re.findall(r"<([0-9a-f]{4})> <([0-9a-f]+)>", to_unicode):
                    pen = BoundsPen(glyphs)
                    glyphs[order[int(glyph, 16)]].draw(pen)
                    character = bytes.fromhex(text).decode("utf-16-be")
                    drawn[character] = (str(font["/BaseFont"]), pen.bounds is not None)
    return drawn


@pytest.fixture
def pdf_by_locale(book):
    pdfs = {}
    day = days_before(30)
    for locale, name in RARE_NAMES.items():
        contract = factories.contract(book, end_date=END, language=locale.replace("_", "-"))
        contract.account.name = name
    db.session.flush()
    send_notices(day)
    for row in db.session.scalars(select(OutboxMessage)):
        message = message_from_bytes(row.mime, policy=default_policy)
        (attachment,) = message.iter_attachments()
        pdfs[row.locale] = attachment.get_content()
    return pdfs


@pytest.mark.parametrize("locale", sorted(CJK_FACES))
def test_a_character_outside_the_prepared_font_is_drawn_from_the_whole_face(
        pdf_by_locale, locale):
    prepared = prepared_font(locale)
    assert prepared is not None and prepared.stat().st_size < 2_000_000
    whole = cmap(*_face_file(CJK_FACES[locale]))
    for character in RARE[locale]:  # the premise: outside the prepared font, in the face
        assert ord(character) not in cmap(prepared) and ord(character) in whole

    drawn = drawn_glyphs(pdf_by_locale[locale])
    text = "".join(page.extract_text() for page in PdfReader(
        io.BytesIO(pdf_by_locale[locale])).pages)
    assert RARE_NAMES[locale] in text
    for character in RARE_NAMES[locale].replace(" ", ""):
        font, outlined = drawn[character]
        assert outlined, (locale, character, font)  # a real glyph, not an empty box
        assert "CJK" in font
    prepared_name = f"{CJK_FACES[locale]} Portal".replace(" ", "-")
    for character in RARE[locale]:
        assert prepared_name not in drawn[character][0]
    # the rest of the text (the catalog's words, digits) comes from the prepared font
    assert prepared_name in drawn["0"][0]
