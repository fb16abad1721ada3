"""Languages: which locale a page or an email is shown in (docs/markets.md, "Page languages").

Pure code apart from ``select_page_locale``, which reads the request. The translation
catalogs (extracting, updating, compiling) are handled by ``portal.i18n.tools`` and its
``portal translations`` commands in ``portal.i18n.cli``.
"""
from functools import lru_cache

from babel import Locale, UnknownLocaleError

#: The 30 page languages.
PAGE_LOCALES = (
    "ar cs da de el en es fi fr he hi hr hu it ja ko nl nb pt_BR pl pt ro ru sk sl sv th tr "
    "zh_Hant zh_Hans"
).split()
#: The 11 email locales (10 languages, Spanish twice).
EMAIL_LOCALES = "en de fr it nl es es_419 pt_BR ja zh_Hans ko".split()
RTL_LOCALES = {"ar", "he"}

_ALIASES = {
    "zh_tw": "zh_Hant", "zh_hk": "zh_Hant", "zh_mo": "zh_Hant", "zh_hant": "zh_Hant",
    "zh_cn": "zh_Hans", "zh_sg": "zh_Hans", "zh_hans": "zh_Hans", "zh": "zh_Hans",
    "no": "nb", "nb_no": "nb", "nn": "nb", "nn_no": "nb", "no_no": "nb",
    "pt_pt": "pt", "pt_br": "pt_BR", "iw": "he",
}
_LATAM = set(
    "MX AR CO CL PE VE EC GT CU BO DO HN PY SV NI CR PA UY".split()
)
_COUNTRY_EMAIL = {
    **dict.fromkeys("DE AT CH LI".split(), "de"),
    **dict.fromkeys("FR BE LU MC".split(), "fr"),
    **dict.fromkeys("IT SM".split(), "it"),
    "NL": "nl", "ES": "es", "BR": "pt_BR", "JP": "ja", "CN": "zh_Hans", "KR": "ko",
    **dict.fromkeys(_LATAM, "es_419"),
}


def _key(code):
    return code.replace("-", "_").strip().lower()


def page_locale(code):
    """The page locale for a language tag (``zh-TW`` -> ``zh_Hant``), or None."""
    if not code:
        return None
    key = _key(code)
    if key in _ALIASES:
        return _ALIASES[key]
    by_key = {_key(locale): locale for locale in PAGE_LOCALES}
    if key in by_key:
        return by_key[key]
    try:
        parsed = Locale.parse(key)
    except (ValueError, UnknownLocaleError):
        return None
    if parsed.language == "zh":
        return "zh_Hant" if parsed.script == "Hant" or parsed.territory in {"TW", "HK", "MO"} else "zh_Hans"
    if parsed.language == "pt":
        return "pt_BR" if parsed.territory == "BR" else "pt"
    return by_key.get(parsed.language)


def email_locale(contact_language, country):
    """The contact's email language if it is one, else the country's (docs/markets.md,
    "Email languages")."""
    country = (country or "").upper()
    if contact_language:
        key = _key(contact_language)
        language = key.split("_")[0]
        region = key[3:].upper()
        # Spanish without a region follows the country: Latin American Spanish in Latin
        # America, Iberian Spanish elsewhere.
        if key == "es_419" or (language == "es" and (region or country) in _LATAM):
            return "es_419"
        # Portuguese and Chinese email only in their Brazilian and Simplified forms; a
        # contact who reads European Portuguese or Traditional Chinese has no email
        # language of their own, so the country decides.
        if language == "pt":
            if region == "BR":
                return "pt_BR"
        elif language == "zh":
            if page_locale(key) == "zh_Hans":
                return "zh_Hans"
        elif language in EMAIL_LOCALES:
            return language
    return _COUNTRY_EMAIL.get(country, "en")


def text_direction(locale):
    return "rtl" if str(locale).split("_")[0] in RTL_LOCALES else "ltr"


@lru_cache(maxsize=None)
def language_name(locale):
    """The language's own name, for the language picker (the same on every page)."""
    name = Locale.parse(locale).get_display_name(locale)
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=None)
def wtforms_catalog(locale):
    """WTForms' own messages (a field's built-in refusals) in ``locale``, read once per
    process; Flask-WTF reads the catalog again for every request that builds a form."""
    from babel.support import Translations
    from wtforms.i18n import messages_path

    return Translations.load(messages_path(), [locale], domain="wtforms")
