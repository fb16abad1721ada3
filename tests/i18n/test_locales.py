"""Which language a page and an email speak (docs/markets.md): explicit choice, then the link's
contact, then Accept-Language, then English; email by contact, then country."""
import pytest

from portal import i18n
from tests.checkout.conftest import (  # noqa: F401  (fixtures shared with the checkout)
    _fresh_rate_limits,
    make_checkout,
    open_checkout,
    today,
    web,
)


@pytest.mark.parametrize("tag, locale", [
    ("zh-TW", "zh_Hant"), ("zh_HK", "zh_Hant"), ("zh-Hant-TW", "zh_Hant"),
    ("zh-CN", "zh_Hans"), ("zh_SG", "zh_Hans"), ("zh", "zh_Hans"),
    ("no", "nb"), ("nb_NO", "nb"), ("nb-NO", "nb"), ("nn", "nb"),
    ("pt_PT", "pt"), ("pt", "pt"), ("pt-BR", "pt_BR"),
    ("de-AT", "de"), ("fr_CA", "fr"), ("es-MX", "es"), ("iw", "he"), ("AR", "ar"),
    ("en-GB", "en"), ("xx", None), ("", None), ("*", None), ("de;q=1", None),
])
def test_page_locale_of_a_language_tag(tag, locale):
    assert i18n.page_locale(tag) == locale


@pytest.mark.parametrize("language, country, locale", [
    ("de", "US", "de"), ("fr", "DE", "fr"), (None, "AT", "de"), (None, "LI", "de"),
    (None, "CH", "de"), ("fr", "CH", "fr"), ("it", "CH", "it"),
    (None, "BE", "fr"), ("nl", "BE", "nl"), (None, "LU", "fr"), (None, "MC", "fr"),
    (None, "SM", "it"), (None, "NL", "nl"), (None, "ES", "es"),
    (None, "MX", "es_419"), (None, "AR", "es_419"), (None, "UY", "es_419"),
    ("es_MX", "US", "es_419"), ("es-AR", "ES", "es_419"), ("es", "CO", "es_419"),
    ("es", "ES", "es"), ("es_ES", "MX", "es"), ("es-419", None, "es_419"),
    (None, "BR", "pt_BR"), ("pt-BR", "US", "pt_BR"), ("pt_PT", "PT", "en"), ("pt", "PT", "en"),
    ("pt", "BR", "pt_BR"), ("pt", "DE", "de"), (None, "PT", "en"),
    (None, "JP", "ja"), (None, "CN", "zh_Hans"), ("zh_TW", "TW", "en"), ("zh-HK", "CN", "zh_Hans"),
    ("zh", "US", "zh_Hans"), ("zh-CN", "US", "zh_Hans"), ("zh_Hans", None, "zh_Hans"),
    (None, "KR", "ko"), (None, "US", "en"), (None, "IL", "en"),
    ("ru", "DE", "de"), ("ru", "RU", "en"), (None, None, "en"), ("", "", "en"),
])
def test_email_locale_by_contact_then_country(language, country, locale):
    assert i18n.email_locale(language, country) == locale


def test_every_page_and_email_locale_is_known_to_babel():
    from babel import Locale

    for locale in {*i18n.PAGE_LOCALES, *i18n.EMAIL_LOCALES}:
        assert Locale.parse(locale)
    assert len(i18n.PAGE_LOCALES) == 30 and len(i18n.EMAIL_LOCALES) == 11


def _lang(html):
    return html.split('<html lang="', 1)[1].split('"', 1)[0]


def test_page_language_order(web, make_checkout):
    _contract, _link, token = make_checkout(language="ja")
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9,en;q=0.5"
    page = open_checkout(web, token).get_data(as_text=True)
    assert _lang(page) == "ja", "the contact's language comes before Accept-Language"
    page = web.get("/renewal?lang=ru").get_data(as_text=True)
    assert _lang(page) == "ru" and 'dir="ltr"' in page
    page = web.get("/renewal").get_data(as_text=True)
    assert _lang(page) == "ru", "an explicit choice lasts for the session"
    page = web.get("/renewal?lang=he").get_data(as_text=True)
    assert _lang(page) == "he" and 'dir="rtl"' in page
    page = web.get("/renewal?lang=zh-TW").get_data(as_text=True)
    assert _lang(page) == "zh-Hant"
    page = web.get("/renewal?lang=klingon").get_data(as_text=True)
    assert _lang(page) == "zh-Hant", "an unknown choice changes nothing"


def test_accept_language_then_english(web, make_checkout):
    _contract, _link, token = make_checkout()
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "xx-YY, zh-HK;q=0.8, de;q=0.5"
    assert _lang(open_checkout(web, token).get_data(as_text=True)) == "zh-Hant"
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "xx, yy;q=0.4"
    assert _lang(web.get("/renewal").get_data(as_text=True)) == "en"
    web.environ_base["HTTP_ACCEPT_LANGUAGE"] = "pt-PT,pt;q=0.9"
    assert _lang(web.get("/renewal").get_data(as_text=True)) == "pt"
