"""Translation catalogs under ``translations/``: one ``messages.po`` per language, made
from ``messages.pot``, compiled to ``messages.mo`` at install time (never kept in git).

Pure Babel code, no Flask: the command line, the install and the tests share it.
"""
import os
import re
import tempfile
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po, write_po

from portal.i18n import EMAIL_LOCALES, PAGE_LOCALES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = PROJECT_ROOT / "translations"
TEMPLATE = DIRECTORY / "messages.pot"
MAPPING = PROJECT_ROOT / "babel.cfg"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3)}
COMMENT_TAG = "i18n:"
#: Every locale with a catalog: the page languages and the email locales, English aside
#: (its text is the message ids themselves).
LOCALES = tuple(sorted({*PAGE_LOCALES, *EMAIL_LOCALES} - {"en"}))
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr]")


def extract(root=PROJECT_ROOT, mapping=MAPPING):
    """A fresh template catalog of every customer-facing string in the sources."""
    from babel.messages.frontend import parse_mapping_cfg

    with open(mapping, encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    catalog = Catalog(project="Renewal Portal", version="1", copyright_holder="Renewal Portal",
                      msgid_bugs_address="renewals@portal.example", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(root), method_map, options_map, keywords=KEYWORDS, comment_tags=[COMMENT_TAG],
        strip_comment_tags=True,
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    return catalog


def keys(catalog):
    """What identifies each message: (context, id, plural id)."""
    return {(message.context, *_ids(message)) for message in catalog if message.id}


def _ids(message):
    if isinstance(message.id, (tuple, list)):
        return tuple(message.id)
    return (message.id, None)


def write_template(catalog, path=TEMPLATE):
    _atomic_write(path, lambda out: write_po(out, catalog, width=0, sort_by_file=True,
                                              omit_header=False))


def read(path, locale=None):
    with open(path, "rb") as handle:
        return read_po(handle, locale=locale)


def catalog_path(locale, directory=DIRECTORY):
    return Path(directory) / locale / "LC_MESSAGES" / "messages.po"


def update(directory=DIRECTORY, template_path=TEMPLATE):
    """Merge the template into every catalog (new messages arrive untranslated; the
    tests refuse a catalog until they are translated). Returns the locales updated."""
    template = read(template_path)
    updated = []
    for locale in LOCALES:
        path = catalog_path(locale, directory)
        if path.exists():
            catalog = read(path, locale)
            catalog.update(template, update_header_comment=False)
            catalog.obsolete.clear()
        else:
            catalog = Catalog(locale=locale, project="Renewal Portal", version="1",
                              copyright_holder="Renewal Portal", charset="utf-8")
            catalog.update(template)
        _atomic_write(path, lambda out, catalog=catalog: write_po(
            out, catalog, width=0, sort_by_file=True, ignore_obsolete=True))
        updated.append(locale)
    return updated


def compile_all(directory=DIRECTORY, force=False):
    """Compile each ``messages.po`` to ``messages.mo`` beside it when the ``.mo`` is
    missing or older. Written to a temporary file and renamed, so a reader never sees
    half a file. Returns the locales compiled."""
    compiled = []
    for po_path in sorted(Path(directory).glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        catalog = read(po_path, po_path.parts[-3])
        buffer = BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        _atomic_write(mo_path, lambda out: out.write(buffer.getvalue()))
        compiled.append(po_path.parts[-3])
    return compiled


def placeholders(text):
    """Every ``%(name)s``-style placeholder of a message, with its conversion type."""
    return sorted(match.group(0) for match in PLACEHOLDER.finditer((text or "").replace("%%", "")))


def plural_count(locale):
    return get_plural(locale).num_plurals


def _atomic_write(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
