"""PDF documents (the quote, invoices, credit notes) rendered from HTML templates with
WeasyPrint, in the locale of their reader."""
import threading

from flask import render_template
from flask_babel import force_locale

#: Font stacks of a PDF by locale; a script the stack lacks (a Korean name on a German
#: quote) falls back through fontconfig. Only CJK locales start with a CJK font: its
#: glyphs make a PDF twenty times larger. A CJK font covers Latin text too, so those
#: locales use it alone, in one weight: every face embedded is subset from a file of
#: 20 MB, which was over a third of a CJK PDF's time.
PDF_FONTS = {
    "ja": '"Noto Sans CJK JP"',
    "ko": '"Noto Sans CJK KR"',
    "zh_Hans": '"Noto Sans CJK SC"',
}
LATIN_PDF_FONTS = '"Noto Sans", "DejaVu Sans"'

_pdf_fonts = threading.local()


def _font_config():
    """One WeasyPrint font configuration per thread, kept between PDFs: building it again
    for every PDF (fontconfig set-up, font lookups) took about half of a PDF's time."""
    from weasyprint.text.fonts import FontConfiguration

    if getattr(_pdf_fonts, "config", None) is None:
        _pdf_fonts.config = FontConfiguration()
    return _pdf_fonts.config


def render_pdf(template, locale, **context):
    """``template`` rendered in ``locale`` as PDF bytes; it gets ``locale``, ``fonts``
    (the font stack) and ``one_weight`` (CJK: no bold faces)."""
    from weasyprint import HTML

    with force_locale(locale):
        html = render_template(template, locale=locale,
                               fonts=PDF_FONTS.get(locale, LATIN_PDF_FONTS),
                               one_weight=locale in PDF_FONTS, **context)
    return HTML(string=html).write_pdf(font_config=_font_config())
