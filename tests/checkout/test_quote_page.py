"""The quote page: options, amounts, pay currency and FX fee, over-cap options, garbage."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from werkzeug.datastructures import MultiDict

from portal.checkout.forms import BillingForm
from portal.extensions import db
from portal.orders.models import Order
from tests import factories
from tests.checkout.conftest import FreshGlobalsClient, amount_due, field_value, open_checkout


def test_quote_page_shows_contract_products_options_and_amount_due(web, make_checkout):
    contract, link, token = make_checkout()
    response = open_checkout(web, token)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert contract.number in page
    assert "Vs-Ent" in page  # the product name from the factory
    assert f'data-end-date="{contract.end_date.isoformat()}"' in page
    for option in ("basic-12", "basic-36", "production-12", "production-36"):
        assert f'data-option="{option}"' in page
    assert amount_due(page) == ("900.00", "USD")
    assert "$900.00" in page
    for name in ("service_level", "term_months", "pay_currency", "payment_method", "auto_renew"):
        assert f'name="{name}"' in page
    assert 'name="auto_renew" type="checkbox" value="y"' in page  # unticked by default
    assert 'value="bank_transfer"' in page and 'value="check"' in page
    assert f'reference <bdi class="code">{link.reference}</bdi>' in page
    assert "mailto:renewals-us@portal.example?subject=" in page  # the US support contact
    assert contract.account.contacts[0].email.replace("@", "%40") in page


@pytest.fixture
def quote_at(web, make_checkout):
    """Open a new contract's link; returns ``quote_at(query) -> the quote page``."""
    _, _, token = make_checkout()
    open_checkout(web, token)
    return lambda query: web.get(f"/renewal?{query}").get_data(as_text=True)


def test_get_with_choices_re_renders_the_amounts(quote_at):
    page = quote_at("service_level=basic&term_months=36")
    assert amount_due(page) == ("2400.00", "USD")


def test_paying_in_another_currency_shows_the_fx_fee(quote_at):
    page = quote_at("pay_currency=GBP")
    # 900 USD x 0.8412 / 1.0861 = 697.06 GBP; fee 3% = 20.91; due 717.97
    assert 'data-converted="697.06"' in page
    assert 'data-fx-fee="20.91"' in page
    assert amount_due(page) == ("717.97", "GBP")
    assert "£717.97" in page
    japanese = quote_at("pay_currency=JPY&lang=ja")
    assert amount_due(japanese)[1] == "JPY" and "." not in amount_due(japanese)[0]


def test_amounts_follow_the_page_locale(quote_at):
    page = quote_at("lang=de&service_level=basic&term_months=36")
    assert "2.400,00\xa0$" in page


def test_over_cap_option_is_shown_but_not_buyable(quote_at):
    page = quote_at("service_level=production&term_months=36")
    assert 'data-option="production-36" data-within-cap="false"' in page
    assert "data-over-cap" in page
    assert "data-amount-due" not in page
    assert 'name="place"' not in page
    assert "Request a quote" in page


def _orders():
    return db.session.scalar(select(func.count()).select_from(Order))


@pytest.mark.parametrize("query", [
    "service_level=gold&term_months=12",
    "term_months=-12",
    "term_months=abc",
    "term_months=" + "9" * 5000,
    "pay_currency=XXX",
    "pay_currency=LVL",
    "service_level=" + "x" * 100000,
    "payment_method=solo&place=1",
])
def test_garbage_choices_never_fail_and_never_order(web, quote_at, query):
    response = web.get(f"/renewal?{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert amount_due(page) == ("900.00", "USD")  # falls back to the contract's own option
    assert "flash-error" in page or "payment_method" in query
    assert _orders() == 0


def test_lapsed_contract_shows_fees_for_the_lapsed_days(web, make_checkout, today):
    _, _, token = make_checkout(days_to_end=-10)
    page = open_checkout(web, token).get_data(as_text=True)
    # back-dated: 2 x 450 x 10 / 365 = 24.66; reinstatement 20% = 4.93
    assert "$24.66" in page and "$4.93" in page
    assert amount_due(page) == ("929.59", "USD")
    assert "lapsed 10 days ago" in page


REASONS = {
    "oem": dict(channel="oem"),
    "level_not_online": dict(level="business_critical"),
    "not_launched": dict(country="AQ"),
    "lapsed_too_long": dict(days_to_end=-366),
    "no_price": dict(lines=[("MON-CLD", 1)]),
    "over_cap": dict(lines=[("VS-ENT", 9)]),
    "cancelled": dict(status="cancelled"),
}


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_each_reason_code_has_its_own_page(web, make_checkout, reason, monkeypatch, today):
    if reason == "lapsed_too_long":
        # Links close with the reinstatement window, so only a link kept open longer
        # reaches this page; keep it open here.
        monkeypatch.setattr("portal.links.services.window_closes",
                            lambda contract: today + timedelta(days=1))
    if reason == "no_price":
        factories.product("MON-CLD", "Monitor Cloud")
    contract, _, token = make_checkout(**REASONS[reason])
    assert web.get(f"/r/{token}").status_code == 303
    page = web.get("/renewal").get_data(as_text=True)
    assert f'data-reason="{reason}"' in page
    assert "data-amount-due" not in page and 'name="place"' not in page
    expected = {
        "oem": "OEM partner", "level_not_online": "renewals desk",
        "not_launched": "not available in your country", "no_price": "request a quote",
        "lapsed_too_long": "no longer be renewed online",
        "over_cap": "Request a quote", "cancelled": "terminated",
    }[reason]
    assert expected in page
    if reason in ("no_price", "over_cap", "lapsed_too_long"):
        assert 'action="/renewal/change-request"' in page


def test_automatic_renewal_terms_give_the_dates_of_the_next_cycle(app, web, make_checkout):
    from babel.dates import format_date

    app.config["AUTO_RENEW_CHARGE_DAYS"] = 14
    contract, _link, token = make_checkout(days_to_end=45)
    open_checkout(web, token)
    for term, years in ((12, 1), (36, 3)):
        page = web.get(f"/renewal?service_level=basic&term_months={term}").get_data(as_text=True)
        new_end = contract.end_date.replace(year=contract.end_date.year + years)
        notice = format_date(new_end - timedelta(days=30), "long", locale="en")
        charge = format_date(new_end - timedelta(days=14), "long", locale="en")
        assert f"we email you on {notice} and charge the card on {charge}" in page, term


def test_a_lats_quote_paid_in_euros_never_mentions_a_conversion_fee(web, make_checkout):
    from tests import factories
    from tests.checkout.conftest import open_checkout

    factories.launch("LV", "2013-06-10")
    _contract, _link, token = make_checkout(list_code="LV", currency="LVL", country="LV")
    page = open_checkout(web, token).get_data(as_text=True)
    assert 'data-currency="EUR"' in page and "data-converted" in page
    assert "conversion fee" not in page.lower() and "data-fx-fee" not in page


#: What one view of the quote page reads, one statement each (portal/checkout/services.py):
#: the link with its contact, contract, account, newest quote and what the page shows of
#: them (a renewal in progress, the account's last billing details, the open card order,
#: automatic renewal, how many other contracts are due: ``read_link``), with the version
#: tokens of the exchange rates and product names. The rates of the quote date and the
#: product names were read by the view before, under the same tokens, and are not read
#: again (tests/checkout/test_reference_versions.py).
QUOTE_PAGE_QUERIES = 1


def test_the_quote_page_is_read_in_a_fixed_number_of_queries(web, make_checkout):
    """Adding a query to the page (or loading the link's contract lazily again) fails here."""
    _, _, token = make_checkout()
    open_checkout(web, token)  # issues the quote: the views after it only read
    web.get("/renewal")  # reads the rates and product names under their current tokens
    db.session.expunge_all()  # nothing already loaded, as in a fresh request in production
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().split(None, 1)[0].upper() in ("SELECT", "INSERT", "UPDATE",
                                                             "DELETE"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = web.get("/renewal")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    assert amount_due(response.get_data(as_text=True)) == ("900.00", "USD")
    assert len(statements) == QUOTE_PAGE_QUERIES, "\n".join(statements)
    assert not any(s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
                   for s in statements)


CSRF_FIELDS = re.compile(r'<input [^>]*name="csrf_token"[^>]*>')


def _page_tokens(html):
    return {re.search(r'value="([^"]*)"', field).group(1) for field in CSRF_FIELDS.findall(html)}


def test_pieces_kept_between_views_carry_each_visitors_own_csrf_token(app, web, make_checkout):
    """The option cards, the contract and the change form are rendered once and kept
    (``fragment`` in portal/web.py); a second visitor gets them from the store, with the
    over-cap card's quote request form and the change form carrying their own token."""
    _, _, token = make_checkout()
    first = open_checkout(web, token).get_data(as_text=True)
    pieces = len(app.extensions["page_fragments"])
    other = FreshGlobalsClient(app, app.response_class, use_cookies=True)
    other.environ_base["wsgi.url_scheme"] = "https"
    assert other.get(f"/r/{token}").status_code == 303
    second = other.get("/renewal").get_data(as_text=True)
    assert len(app.extensions["page_fragments"]) == pieces  # all taken from the store
    assert 'data-within-cap="false"' in second  # the over-cap card with its own form
    assert len(CSRF_FIELDS.findall(second)) == 3  # quote request, order form, change form
    first_tokens, second_tokens = _page_tokens(first), _page_tokens(second)
    assert len(first_tokens) == len(second_tokens) == 1  # all forms of a page: one token
    assert first_tokens != second_tokens
    response = other.post("/renewal/change-request", data={
        "csrf_token": second_tokens.pop(), "kind": "quote", "service_level": "production",
        "term_months": "36"})
    assert response.status_code == 200


@pytest.mark.parametrize("lang, message", [
    ("de", "Feld kann nicht länger als 32 Zeichen sein."),
    ("fr", "Le champ ne peut pas contenir plus de 32 caractères."),
    ("en", "Field cannot be longer than 32 characters."),
])
def test_the_forms_own_messages_speak_the_page_language(app, lang, message):
    """WTForms' messages come from its catalog of the page's locale (read once per locale)."""
    with app.test_request_context(f"/renewal?lang={lang}"):
        form = BillingForm(formdata=MultiDict({"tax_id": "x" * 40}))
        assert not form.validate()
        assert form.tax_id.errors == [message]


def test_the_kept_order_form_follows_the_selection(quote_at):
    """The order form's markup is kept per what it shows: the amount it carries back
    follows each selection, also when the same selection comes again."""
    for query, shown in (("", "900.00 USD"), ("service_level=basic&term_months=36",
                                              "2400.00 USD"), ("", "900.00 USD"),
                         ("pay_currency=GBP", "717.97 GBP"),
                         ("service_level=basic&term_months=36", "2400.00 USD")):
        page = quote_at(query)
        assert field_value(page, "amount_shown") == shown
        assert f'<option selected value="{shown[-3:]}">' in page
