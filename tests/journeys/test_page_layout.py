"""What a customer reads in Chromium: codes in running text (contract numbers, order and
payment references) and amounts in sentences stay whole on one line and read left to
right in an Arabic page at 360 px on every main customer page; the amount of the confirmation page's order list
starts where the list's other values start."""
import pytest

from tests.journeys.test_screens import _open

#: For each visible occurrence of each string: whether its characters sit on one line
#: and follow each other from left to right (Range rectangles of single characters).
CODE_LAYOUT = """(codes) => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const code of codes) {
      for (let at = node.data.indexOf(code); at >= 0; at = node.data.indexOf(code, at + 1)) {
        const boxes = [];
        for (let i = at; i < at + code.length; i++) {
          const range = document.createRange();
          range.setStart(node, i); range.setEnd(node, i + 1);
          const box = range.getBoundingClientRect();
          if (box.width > 0) boxes.push(box);
        }
        if (!boxes.length) continue;  // not shown (a hidden element)
        const tops = new Set(boxes.map((box) => Math.round(box.top)));
        const ordered = boxes.every((box, i) => i === 0 || box.x > boxes[i - 1].x);
        found.push({code, where: node.parentElement.tagName, oneLine: tops.size === 1,
                    leftToRight: ordered});
      }
    }
  }
  return found;
}"""


def _codes_whole(page, codes, what):
    page.set_viewport_size({"width": 360, "height": 800})
    scroll, inner = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= inner, f"{what}: the page scrolls sideways at 360 px"
    found = page.evaluate(CODE_LAYOUT, codes)
    assert found, f"{what}: none of {codes} is shown"
    broken = [each for each in found if not (each["oneLine"] and each["leftToRight"])]
    assert broken == [], f"{what}: {broken}"
    return found


def _pay_offline(journey_app, reference, amount):
    run = journey_app.test_cli_runner().invoke(args=[
        "orders", "record-payment", reference, "--amount", amount, "--currency", "USD",
        "--reference", f"BANK-{reference}"])
    assert run.exit_code == 0, run.output


def test_codes_stay_whole_and_left_to_right_in_arabic_at_360(page, journey_app,
                                                            account_links):
    url, numbers = account_links({"days_to_end": 40}, {"days_to_end": 20})
    _open(page, url, "ar")
    found = _codes_whole(page, numbers, "quote page")
    assert any(each["code"] == numbers[0] and each["where"] != "H1" for each in found)
    heading = page.locator("h1").inner_text()
    assert numbers[0] in heading  # "Renew contract <number>" with the number whole
    phone = page.locator('.support a[href^="tel:"]').inner_text()
    _codes_whole(page, [phone], "support phone number in the footer")

    page.goto(page.url.split("/renewal")[0] + "/renewal/contracts")
    _codes_whole(page, numbers, "combined page")

    page.goto(page.url.split("/renewal")[0] + "/renewal")
    page.check("input[name=payment_method][value=bank_transfer]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    order = page.locator("[data-reference]").inner_text()
    payment = page.locator("[data-payment-reference]").get_attribute("data-payment-reference")
    amount = page.locator("[data-amount-due]").get_attribute("data-amount-due")
    shown_amount = page.locator("[data-amount-due]").text_content()  # "900.00 US$"
    found = _codes_whole(page, [numbers[0], order, payment, shown_amount],
                         "confirmation page")
    assert {each["code"] for each in found} >= {numbers[0], payment}
    # The instructions' sentence "Please pay 900.00 US$ with ..." as well as the list.
    assert [each["where"] for each in found if each["code"] == shown_amount].count("BDI") == 1

    _pay_offline(journey_app, payment, amount)
    page.goto(page.url.split("/renewal")[0] + "/renewal/refund")
    found = _codes_whole(page, [numbers[0], order, shown_amount], "refund page")
    assert order in {each["code"] for each in found}  # "... for order <reference> ..."
    assert shown_amount in {each["code"] for each in found}  # "You can get 900.00 US$ ..."
    page.goto(page.url.split("/renewal")[0] + "/renewal/auto-renew")
    _codes_whole(page, [numbers[0]], "automatic renewal page")


#: The x where each value of the order list starts (its first character), by term; the
#: product list (a bulleted list, indented) aside.
VALUE_STARTS = """() => [...document.querySelectorAll('.order dl > dd:not(:has(ul))')].map((dd) => {
  const walker = document.createTreeWalker(dd, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    const rtl = getComputedStyle(dd).direction === 'rtl';
    return {term: dd.previousElementSibling.textContent.trim(),
            start: Math.round(rtl ? box.right : box.left)};
  }
  return null;
}).filter(Boolean)"""


@pytest.mark.parametrize("locale", ["en", "ar"])
@pytest.mark.parametrize("width", [1280, 390])
def test_the_confirmation_amount_lines_up_with_the_other_values(page, renewal_link, locale,
                                                                width):
    url, _number = renewal_link(days_to_end=40)
    _open(page, url, locale)
    page.check("input[name=payment_method][value=bank_transfer]")
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/confirmation")
    page.set_viewport_size({"width": width, "height": 900})
    starts = page.evaluate(VALUE_STARTS)
    assert len(starts) >= 7, starts
    # In a right-to-left page values start at their right edge; the amount's own text
    # reads left to right, so its start is its right edge too (the page's direction).
    places = {each["start"] for each in starts}
    assert len(places) == 1, starts
    amount = page.locator("[data-amount-due]").bounding_box()
    reference = page.locator("[data-reference]").bounding_box()
    if locale == "ar":
        assert abs(amount["x"] + amount["width"] - reference["x"] - reference["width"]) < 2
    else:
        assert abs(amount["x"] - reference["x"]) < 2


def test_submit_inputs_look_like_the_buttons_beside_them(page, renewal_link):
    """The change form's "Send request" (an input) is drawn like the page's secondary
    buttons, not as the browser's native control."""
    url, _number = renewal_link(days_to_end=40)
    _open(page, url, "en")
    style = """(selector) => { const s = getComputedStyle(document.querySelector(selector));
      return [s.backgroundColor, s.color, s.borderTopColor, s.borderRadius, s.cursor]; }"""
    send = page.evaluate(style, '#submit')
    secondary = page.evaluate(style, 'button.secondary')
    assert send == secondary, (send, secondary)
