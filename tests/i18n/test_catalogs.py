"""The catalogs stay complete: the template matches the code, every language translates
every message with its placeholders and all its plural forms, nothing is fuzzy, and the
terms of each language's glossary are used the same way everywhere."""
import csv
import re

import pytest
from babel.messages.plurals import get_plural

from portal import i18n
from portal.i18n import tools

#: Terms every glossary defines; those marked True must name the stems that every
#: translation of a message using the term contains.
GLOSSARY_TERMS = {
    "renewal": True, "contract": True, "quote": True, "service level": True,
    "reinstatement fee": True, "back-dated fee": False, "currency conversion fee": False,
    "term": False, "order": False, "payment reference": False, "renewals desk": False,
    "renewal link": False, "automatic renewal": False, "refund": False,
}


@pytest.fixture(scope="module")
def template():
    return tools.read(tools.TEMPLATE)


def test_template_lists_exactly_the_messages_of_the_code(template):
    fresh = tools.keys(tools.extract())
    committed = tools.keys(template)
    assert not fresh - committed, f"new messages: run `portal translations extract`: {sorted(fresh - committed, key=str)[:5]}"
    assert not committed - fresh, f"messages no longer used: {sorted(committed - fresh, key=str)[:5]}"


def test_every_page_language_and_email_locale_has_a_catalog():
    wanted = set(i18n.PAGE_LOCALES) | set(i18n.EMAIL_LOCALES)
    assert wanted - {"en"} == set(tools.LOCALES)
    missing = [locale for locale in tools.LOCALES if not tools.catalog_path(locale).exists()]
    assert not missing


def _forms(message):
    return list(message.string) if isinstance(message.string, (tuple, list)) else [message.string]


def _problems(locale, template):
    catalog = tools.read(tools.catalog_path(locale), locale)
    expected_forms = get_plural(locale).num_plurals
    if catalog.num_plurals != expected_forms:
        yield f"header says {catalog.num_plurals} plural forms, {locale} has {expected_forms}"
    for wanted in template:
        if not wanted.id:
            continue
        message = catalog.get(wanted.id, context=wanted.context)
        label = f"{locale}: {str(wanted.id)[:60]!r}"
        if message is None:
            yield f"{label}: missing"
            continue
        if message.fuzzy:
            yield f"{label}: fuzzy"
        forms = _forms(message)
        if wanted.pluralizable and len(forms) != expected_forms:
            yield f"{label}: {len(forms)} plural forms, needs {expected_forms}"
        if any(not (form or "").strip() for form in forms):
            yield f"{label}: untranslated"
            continue
        yield from _placeholder_problems(label, wanted, forms)


def _placeholder_problems(label, wanted, forms):
    ids = _ids(wanted)
    named = set().union(*(tools.placeholders(text) for text in ids))
    for index, form in enumerate(forms):
        found = tools.placeholders(form)
        extra = set(found) - named
        if extra:
            yield f"{label}: form {index} adds placeholders {sorted(extra)}"
        # A plural form for exactly one item may say "one" instead of the number.
        optional = ({token for token in named if token.startswith("%(num)")}
                    if wanted.pluralizable and len(forms) > 1 else set())
        lost = named - set(found) - optional
        if lost:
            yield f"{label}: form {index} drops placeholders {sorted(lost)}"


def _ids(message):
    return [message.id] if isinstance(message.id, str) else list(message.id)


@pytest.mark.parametrize("locale", tools.LOCALES)
def test_catalog_is_complete_and_keeps_placeholders(locale, template):
    problems = list(_problems(locale, template))
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:15])


def _glossary(locale):
    path = tools.catalog_path(locale).parents[1] / "glossary.csv"
    assert path.exists(), f"{path} is missing"
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["term"].strip().lower(): row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("locale", tools.LOCALES)
def test_glossary_terms_are_used_consistently(locale, template):
    glossary = _glossary(locale)
    missing = set(GLOSSARY_TERMS) - set(glossary)
    assert not missing, f"{locale} glossary lacks {sorted(missing)}"
    catalog = tools.read(tools.catalog_path(locale), locale)
    problems = []
    for term, enforced in GLOSSARY_TERMS.items():
        row = glossary[term]
        assert row["translation"].strip(), f"{locale}: no translation for {term!r}"
        stems = [stem.strip().lower() for stem in (row.get("stems") or "").split("|") if stem.strip()]
        if not enforced:
            continue
        assert stems, f"{locale}: glossary term {term!r} needs stems"
        pattern = re.compile(rf"\b{re.escape(term)}s?\b", re.IGNORECASE)
        for wanted in template:
            if not wanted.id or not any(pattern.search(text) for text in _ids(wanted)):
                continue
            message = catalog.get(wanted.id, context=wanted.context)
            if message is None:
                continue
            for form in _forms(message):
                if form and not any(stem in form.lower() for stem in stems):
                    problems.append(f"{term!r} -> {stems}: {form[:80]!r}")
    assert not problems, f"{locale}: {len(problems)} translations miss the glossary term:\n" + "\n".join(problems[:15])


def test_the_checks_catch_what_they_should(template):
    """The placeholder check fails on translations that break its rule."""

    plural = next(message for message in template if message.pluralizable)
    named = next(message for message in template
                 if not message.pluralizable and tools.placeholders(message.id))
    plain = next(message for message in template
                 if not message.pluralizable and not tools.placeholders(message.id))
    label = "x"
    assert list(_placeholder_problems(label, named, ["sans placeholder"]))
    assert list(_placeholder_problems(label, named, [named.id + " %(extra)s"]))
    assert not list(_placeholder_problems(label, named, [named.id]))
    assert not list(_placeholder_problems(label, plain, ["ok"]))
    changed = named.id.replace(")s", ")d", 1)
    assert list(_placeholder_problems(label, named, [changed])), "a changed type is refused"
    assert list(_placeholder_problems(label, plural, ["%(num)d %(bogus)s", "%(num)d"]))
    assert not list(_placeholder_problems(label, plural, ["one", "%(num)d"]))
