"""PDF documents (the quote, invoices, credit notes) rendered from HTML templates with
WeasyPrint, in the locale of their reader."""
import atexit
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from flask import render_template
from flask_babel import force_locale, get_translations

log = logging.getLogger(__name__)

#: Font stacks of a PDF by locale; a script the stack lacks (a Korean name on a German
#: quote) falls back through fontconfig. Only CJK locales start with a CJK font: its
#: glyphs make a PDF twenty times larger. A CJK font covers Latin text too, so those
#: locales use it alone, in one weight.
PDF_FONTS = {
    "ja": '"Noto Sans CJK JP"',
    "ko": '"Noto Sans CJK KR"',
    "zh_Hans": '"Noto Sans CJK SC"',
}
LATIN_PDF_FONTS = '"Noto Sans", "DejaVu Sans"'

#: The CJK faces (fontconfig family names), and the characters common enough to go into
#: a CJK locale's prepared font: rows of its national character set, as (codec, first
#: row, last row): JIS X 0208 level 1 (2,965 kanji), the 2,350 hangul syllables of
#: KS X 1001, GB 2312 level 1 (3,755 hanzi).
CJK_FACES = {"ja": "Noto Sans CJK JP", "ko": "Noto Sans CJK KR", "zh_Hans": "Noto Sans CJK SC"}
COMMON_ROWS = {"ja": ("euc_jp", 16, 47), "ko": ("euc_kr", 16, 40), "zh_Hans": ("gb2312", 16, 55)}
#: Latin, general punctuation, currency and letter-like signs, CJK punctuation and kana,
#: hangul jamo, full-width forms.
BASIC_RANGES = ((0x20, 0x7E), (0xA0, 0x17F), (0x2000, 0x214F), (0x3000, 0x30FF),
                (0x3130, 0x318F), (0xFF00, 0xFFEF))

#: The user-agent stylesheet of the PDFs: WeasyPrint's HTML one cut down to the rules of
#: the elements the PDF templates use (the same rules, so the same layout). Every element
#: is matched against every user-agent rule; the full sheet, made for any web page, was
#: about a sixth of a PDF's time.
PDF_UA_STYLESHEET = """
[hidden], head, meta, script, style, title { display: none }
html, body, div, h1, p { display: block }
table { display: table; border-spacing: 2px; border-collapse: separate; box-sizing: border-box;
        text-indent: initial; border-color: gray }
thead { display: table-header-group }
tbody { display: table-row-group }
thead, tbody, table > tr { vertical-align: middle }
tr { display: table-row }
td, th { display: table-cell; padding: 1px; border-color: gray }
thead, tbody, tr { border-color: inherit }
tr, td, th { vertical-align: inherit }
html { color-scheme: light }
body { margin: 8px }
p { margin-top: 1em; margin-bottom: 1em }
h1 { margin-top: .67em; margin-bottom: .67em; font-size: 2em; font-weight: bold;
     bookmark-level: 1; bookmark-label: content(text); hyphens: manual; break-after: avoid;
     break-inside: avoid }
b, strong, th { font-weight: bold }
br::before { content: "\\A"; white-space: pre-line }
[dir=ltr i] { direction: ltr }
[dir=rtl i] { direction: rtl }
@page { margin: 75px }
"""

_pdf_fonts = threading.local()
_prepared = {}  # locale -> path of its prepared font, or None when it cannot be made
_preparing = threading.Lock()


def _font_config():
    """One WeasyPrint font configuration per thread, kept between PDFs: building it again
    for every PDF (fontconfig set-up, font lookups) took about half of a PDF's time."""
    from weasyprint.text.fonts import FontConfiguration

    if getattr(_pdf_fonts, "config", None) is None:
        _pdf_fonts.config = FontConfiguration()
        _pdf_fonts.faces = {}
        atexit.register(_remove_font_copies, _pdf_fonts.config)
    return _pdf_fonts.config


def _remove_font_copies(config):
    """WeasyPrint copies each @font-face font into a temporary folder of the font
    configuration and removes it when the configuration is collected, which fails at
    interpreter exit: remove it before."""
    if config._folder is not None:
        shutil.rmtree(config._folder, ignore_errors=True)
        config._folder = None


def render_pdf(template, locale, **context):
    """``template`` rendered in ``locale`` as PDF bytes; it gets ``locale``, ``fonts``
    (the font stack) and ``one_weight`` (CJK: no bold faces)."""
    config = _font_config()
    fonts, stylesheets = PDF_FONTS.get(locale, LATIN_PDF_FONTS), []
    face = _prepared_face(locale, config)
    if face is not None:
        family, stylesheet = face
        fonts, stylesheets = f'"{family}", {fonts}', [stylesheet]
    with force_locale(locale):
        html = render_template(template, locale=locale, fonts=fonts,
                               one_weight=locale in PDF_FONTS, **context)
    return _pdf_html()(string=html).write_pdf(font_config=config, stylesheets=stylesheets)


@functools.cache
def _pdf_html():
    """WeasyPrint's HTML class with the PDFs' user-agent stylesheet, parsed once per
    process and shared, as WeasyPrint shares its own."""
    from weasyprint import CSS, HTML

    user_agent = CSS(string=PDF_UA_STYLESHEET)

    class PdfHtml(HTML):
        def _ua_stylesheets(self, forms=False):
            return [user_agent]

    return PdfHtml


# --- the prepared CJK fonts ---
#
# WeasyPrint embeds a subset of every font a PDF uses, made from the whole font file: for
# a CJK face that is a collection of 20 MB and 65,000 glyphs, read and subset again for
# each PDF, about half of a CJK PDF's time. So each CJK locale gets, once per machine, a
# font of the glyphs it needs (its catalog, its dates and numbers, Latin, and its common
# characters), listed first in the stack; the whole face stays next in the stack, so a
# character outside the prepared font (a rare kanji in a customer's name) is still drawn
# from it, never as a missing glyph.


def _prepared_face(locale, config):
    """``(family, stylesheet)`` of ``locale``'s prepared font for this thread's font
    configuration, or None (not a CJK locale, or the font could not be made)."""
    if locale not in CJK_FACES:
        return None
    faces = _pdf_fonts.faces
    if locale not in faces:
        path = prepared_font(locale)
        faces[locale] = None if path is None else _face_stylesheet(locale, path, config)
    return faces[locale]


def _face_stylesheet(locale, path, config):
    from weasyprint import CSS

    family = f"{CJK_FACES[locale]} Portal"  # "CJK" stays in the name the PDF shows
    rule = f'@font-face {{ font-family: "{family}"; src: url("{path.as_uri()}"); }}'
    return family, CSS(string=rule, font_config=config)


def prepared_font(locale):
    """Path of ``locale``'s prepared font: made at first use (a few seconds) and kept in
    the user's cache folder under a name that changes with the font file and the
    characters, so every later process (and worker) only reads it. None when the face is
    not installed or cannot be subset: the PDF then uses the whole face."""
    with _preparing:
        if locale not in _prepared:
            try:
                _prepared[locale] = _prepare(locale)
            except Exception as error:  # noqa: BLE001 - the whole face still works
                log.warning("no prepared PDF font for %s (%s): the whole face is used",
                            locale, error)
                _prepared[locale] = None
        return _prepared[locale]


def _prepare(locale):
    from fontTools import subset
    from fontTools.ttLib import TTFont

    source, index = _face_file(CJK_FACES[locale])
    characters = "".join(sorted(locale_characters(locale)))
    stat = source.stat()
    key = hashlib.sha256(f"{source}|{index}|{stat.st_size}|{stat.st_mtime_ns}|"
                         f"{characters}".encode()).hexdigest()[:20]
    folder = _cache_folder()
    path = folder / f"pdf-{locale}-{key}.otf"
    if path.exists():
        return path
    # No layout tables: WeasyPrint drops them from the PDF, and CJK text needs none
    # (keeping them took subsetting from 6 to 14 s and the file from 0.7 to 1.5 MB).
    options = subset.Options(layout_features=[], hinting=False, desubroutinize=False,
                             notdef_outline=True, name_IDs=["*"], name_languages=["*"])
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(character) for character in characters])
    descriptor, partial = tempfile.mkstemp(dir=folder, suffix=".part")
    os.close(descriptor)
    with TTFont(source, fontNumber=index, lazy=True) as font:
        subsetter.subset(font)
        font.save(partial)
    os.replace(partial, path)  # complete or absent, also with two processes at once
    return path


def locale_characters(locale):
    """The characters of ``locale``'s prepared font: the basic ranges, its common
    characters, every translation of its catalog, and Babel's text for its dates and
    numbers (month and day names, date patterns, number and currency symbols)."""
    from babel import Locale

    characters = {chr(code) for first, last in BASIC_RANGES for code in range(first, last + 1)}
    codec, first_row, last_row = COMMON_ROWS[locale]
    for row in range(first_row, last_row + 1):
        for cell in range(1, 95):
            try:
                characters.add(bytes([0xA0 + row, 0xA0 + cell]).decode(codec))
            except UnicodeDecodeError:
                pass  # an unassigned cell
    with force_locale(locale):
        catalog = get_translations()._catalog  # msgid -> msgstr of the compiled catalog
    texts = list(catalog.values())
    data = Locale.parse(locale)
    for names in (data.months, data.days, data.quarters):  # context -> width -> names
        for widths in names.values():
            for by_width in widths.values():
                texts.extend(by_width.values())
    for by_width in data.eras.values():
        texts.extend(by_width.values())
    texts += [str(getattr(pattern, "pattern", pattern)) for pattern in
              (*data.date_formats.values(), *data.time_formats.values())]
    symbols = data.number_symbols
    texts += [*symbols.get("latn", symbols).values(), *data.currency_symbols.values()]
    for text in texts:
        characters.update(text)
    return {character for character in characters if character.isprintable()}


def _face_file(family):
    """``(path, index in the collection)`` of the fontconfig face named ``family``."""
    from fontTools.ttLib import TTCollection
    from weasyprint.text.ffi import ffi, fontconfig

    pattern = ffi.gc(fontconfig.FcPatternCreate(), fontconfig.FcPatternDestroy)
    fontconfig.FcPatternAddString(pattern, b"family", family.encode())
    config = ffi.gc(fontconfig.FcInitLoadConfigAndFonts(), fontconfig.FcConfigDestroy)
    fontconfig.FcConfigSubstitute(config, pattern, fontconfig.FcMatchPattern)
    fontconfig.FcDefaultSubstitute(pattern)
    match = fontconfig.FcFontMatch(config, pattern, ffi.new("FcResult *"))
    if match == ffi.NULL:
        raise LookupError(f"no font for {family}")
    match = ffi.gc(match, fontconfig.FcPatternDestroy)
    name = ffi.new("FcChar8 **")
    if fontconfig.FcPatternGetString(match, b"file", 0, name) != 0:
        raise LookupError(f"no font file for {family}")
    path = Path(ffi.string(name[0]).decode())
    if path.suffix.lower() not in (".ttc", ".otc"):
        return path, 0
    with TTCollection(path, lazy=True) as collection:
        for index, face in enumerate(collection.fonts):
            if face["name"].getDebugName(1) == family:
                return path, index
    raise LookupError(f"{family} is not in {path}")


def _cache_folder():
    """The user's cache folder for prepared fonts; a private temporary one if that
    cannot be written."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "renewal-portal" / "fonts"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    if getattr(_cache_folder, "private", None) is None:
        _cache_folder.private = Path(tempfile.mkdtemp(prefix="portal-fonts-"))
    return _cache_folder.private
