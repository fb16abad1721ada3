"""In a right-to-left page, Latin pieces inside translated sentences (codes, amounts, the
seller's name and address) are isolated, so their words and commas keep their order."""
import re

from tests.checkout.conftest import open_checkout


def test_the_sellers_name_and_address_are_isolated_in_an_arabic_page(web, make_checkout):
    _contract, _link, token = make_checkout()
    open_checkout(web, token)
    page = web.get("/renewal?lang=ar").get_data(as_text=True)
    assert 'dir="rtl"' in page
    party = re.search(r'<p data-contracting-party="[^"]*">(.*?)</p>', page, re.S).group(1)
    isolated = re.findall(r"<bdi[^>]*>(.*?)</bdi>", party)
    assert len(isolated) == 3, party  # the name, the address, the tax number
    assert all(piece.strip() and "<" not in piece for piece in isolated)
