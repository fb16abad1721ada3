"""Every checkout page fits phones, tablets and desktops in all 30 page languages: the
document never scrolls sideways at 360, 390, 768 or 1,280 px; amounts keep their symbol
order in right-to-left pages. The 390 px quote pages of ar, de, ja, th and en are kept in
test-artifacts/screens/ for a person to look at."""
import pytest

from portal.i18n import PAGE_LOCALES
from tests.browser import screenshot
from tests.journeys.conftest import needs_chromium

pytestmark = needs_chromium

WIDTHS = (360, 390, 768, 1280)
SHOTS = {"ar", "de", "ja", "th", "en"}


def overflow(page):
    """``{width: (scroll width, viewport width)}`` for each width the page is too wide at."""
    too_wide = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        scroll, inner = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        if scroll > inner:
            too_wide[width] = (scroll, inner)
    return too_wide


def _open(page, url, locale):
    page.goto(url)
    page.wait_for_url("**/renewal*")
    page.goto(page.url.split("?")[0] + f"?lang={locale}")


@pytest.mark.parametrize("locale", PAGE_LOCALES)
def test_checkout_pages_fit_every_width(page, renewal_link, locale):
    lapsed, _number = renewal_link(days_to_end=-10)
    _open(page, lapsed, locale)
    page.goto(page.url.split("?")[0] + "?service_level=basic&term_months=12&pay_currency=EUR")
    assert page.locator("[data-fx-fee]").count() == 1 and page.locator("[data-backdated-fee]").count()
    assert overflow(page) == {}, f"quote page (lapsed, converted) in {locale}"
    if locale in SHOTS:
        page.set_viewport_size({"width": 390, "height": 900})
        screenshot(page, "screens", f"quote-390-{locale}")
    page.check("input[name=payment_method][value=bank_transfer]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    assert overflow(page) == {}, f"offline order confirmation in {locale}"

    active, _number = renewal_link(days_to_end=40)
    _open(page, active, locale)
    assert page.locator('[data-within-cap="false"]').count() >= 1  # an over-cap card too
    assert overflow(page) == {}, f"quote page (active, over-cap option) in {locale}"
    page.check("input[name=payment_method][value=visa]")
    page.locator("#card-element input").first.wait_for()  # the card typed on this page
    assert overflow(page) == {}, f"quote page with the card fields in {locale}"
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/pay")
    page.locator("#card-element input").first.wait_for()
    assert overflow(page) == {}, f"card page in {locale}"


@pytest.mark.parametrize("locale", ["ar", "he"])
def test_amounts_keep_their_symbol_order_right_to_left(page, renewal_link, locale):
    url, _number = renewal_link(days_to_end=40)
    _open(page, url, locale)
    page.set_viewport_size({"width": 390, "height": 900})
    # The visual x of characters of the amount due: formatted for ar and he as "900.00 US$"
    # and "900.00 $", they must read in that order from left to right, the symbol whole.
    positions = page.evaluate("""() => {
      const text = document.querySelector('[data-amount-due]').firstChild;
      const s = text.textContent;
      const at = (i) => { const r = document.createRange(); r.setStart(text, i);
                          r.setEnd(text, i + 1); return r.getBoundingClientRect().x; };
      return {text: s, digit: at(s.search(/[0-9]/)), dollar: at(s.indexOf('$')),
              u: s.includes('US$') ? at(s.indexOf('US$')) : null};
    }""")
    assert positions["digit"] < positions["dollar"], positions
    if locale == "ar":
        assert positions["u"] is not None and positions["u"] < positions["dollar"], positions
