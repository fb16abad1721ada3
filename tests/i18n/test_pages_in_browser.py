"""The quote page in headless Chromium in scripts and directions that break layouts:
translated through and through, amounts formatted for the locale, right-to-left where the
language is, nothing wider than the window. Screenshots go to test-artifacts/i18n/ for a
person to look at."""
from datetime import timedelta
from decimal import Decimal

import pytest
from babel.numbers import format_currency
from babel.support import Translations

from portal.i18n import tools
from portal.extensions import db
from portal.links.services import issue_link
from portal.markets.services import seed_launch_dates
from portal.payments.emulator import LOOPBACK, free_port
from portal.timeutil import utc_today
from tests import factories
from tests.browser import chromium, needs_chromium, new_page, screenshot, serving
from tests.checkout.conftest import PRICES
from tests.conftest import make_app
from tests.i18n.english import english_left

pytestmark = needs_chromium

LOCALES = ["ar", "he", "ja", "th", "hi", "ru", "de", "zh_Hant", "ko", "en"]
#: Chromium's interface language per page locale: the page must not depend on it.
BROWSER_LOCALES = {"zh_Hant": "zh-TW"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("i18n-browser")
    app = make_app(f"sqlite:///{folder / 'portal.db'}", folder, TESTING=False,
                   PORTAL_BASE_URL=f"http://{LOOPBACK}:{port}")
    with app.app_context():
        db.create_all()
        seed_launch_dates()
        factories.launch("US", "2013-03-19")
        factories.rate("USD", "1.0861", utc_today() - timedelta(days=1))
        db.session.commit()
    with serving(app, port):
        yield app


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def _renewal_url(app):
    with app.app_context():
        plist = _has_list() or factories.price_list("US", "USD", PRICES)
        contract = factories.contract(plist, lines=[("VS-ENT", 3)],
                                      end_date=utc_today() + timedelta(days=40))
        _link, token = issue_link(contract, contract.account.contacts[0], purpose="test")
        db.session.commit()
        return f"{app.config['PORTAL_BASE_URL']}/r/{token}", contract.number


def _has_list():
    from sqlalchemy import select

    from portal.pricing.models import PriceList

    return db.session.scalar(select(PriceList).where(PriceList.code == "US"))


@needs_chromium
@pytest.mark.parametrize("locale", LOCALES)
def test_quote_page_in_each_script(browser, server, locale):
    url, number = _renewal_url(server)
    with new_page(browser, BROWSER_LOCALES.get(locale, locale.replace("_", "-"))) as page:
        page.goto(url)
        page.wait_for_url("**/renewal")
        page.goto(page.url.split("?")[0] + f"?lang={locale}")
        html = page.locator("html")
        assert html.get_attribute("lang") == locale.replace("_", "-")
        rtl = locale in ("ar", "he")
        assert html.get_attribute("dir") == ("rtl" if rtl else "ltr")
        screenshot(page, "i18n", f"quote-{locale}")

        translations = Translations.load(str(tools.DIRECTORY), [locale])
        heading = translations.gettext("Renew contract %(number)s") % {"number": number}
        assert page.locator("h1").inner_text().strip() == heading

        amount = page.locator("[data-amount-due]")
        due = Decimal(amount.get_attribute("data-amount-due"))
        currency = amount.get_attribute("data-currency")
        assert amount.inner_text().strip() == format_currency(due, currency, locale=locale)

        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"page is {width[0]}px wide in a {width[1]}px window"
        brand = page.locator(".brand").bounding_box()
        picker = page.locator(".language-picker").bounding_box()
        assert (brand["x"] > picker["x"]) == rtl, "the header is not mirrored for the direction"

        if locale != "en":
            left_over = english_left(page.locator("body").inner_text())
            assert not left_over, f"English left on the {locale} page: {left_over[:5]}"
