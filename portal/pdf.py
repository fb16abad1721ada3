"""PDF documents (the quote, invoices, credit notes) rendered from HTML templates with
WeasyPrint, in the locale of their reader."""
import threading

from flask import render_template
from flask_babel import force_locale

#: Fonts first in line for the PDF by locale; other scripts fall back through fontconfig.
#: Only CJK locales start with a CJK font: its glyphs make a PDF twenty times larger.
PDF_FONTS = {
    "ja": '"Noto Sans CJK JP"',
    "ko": '"Noto Sans CJK KR"',
    "zh_Hans": '"Noto Sans CJK SC"',
}

_pdf_fonts = threading.local()


def _font_config():
    """One WeasyPrint font configuration per thread, kept between PDFs: building it again
    for every PDF (fontconfig set-up, font lookups) took about half of a PDF's time."""
    from weasyprint.text.fonts import FontConfiguration

    if getattr(_pdf_fonts, "config", None) is None:
        _pdf_fonts.config = FontConfiguration()
    return _pdf_fonts.config


def render_pdf(template, locale, **context):
    """``template`` rendered in ``locale`` as PDF bytes; it gets ``locale`` and ``font``."""
    from weasyprint import HTML

    with force_locale(locale):
        html = render_template(template, locale=locale,
                               font=PDF_FONTS.get(locale, '"Noto Sans"'), **context)
    return HTML(string=html).write_pdf(font_config=_font_config())
