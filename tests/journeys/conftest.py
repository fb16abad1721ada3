"""The customer journeys in headless Chromium (Debian's package): one portal per worker,
served on loopback against the local Stripe emulator, whose Stripe.js the pages load and
which delivers its signed webhooks to the portal. Each journey reads the database and the
outbox afterwards through the app itself."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.pricing.models import PriceList
from portal.extensions import db
from portal.links.services import issue_link
from portal.markets.services import seed_launch_dates
from portal.payments.emulator import LOOPBACK, free_port
from portal.timeutil import utc_today
from tests import factories
from tests.browser import browser, needs_chromium, page, serving  # noqa: F401  (fixtures)
from tests.conftest import make_app
from tests.payments.conftest import stripe_emulator  # noqa: F401  (shared fixture)

pytestmark = needs_chromium

PRICES = {
    ("VS-ENT", "basic", 12): "450.00", ("VS-ENT", "basic", 36): "1200.00",
    ("VS-ENT", "production", 12): "600.00", ("VS-ENT", "production", 36): "1600.00",
}
#: Price lists by code: currency, and the prices scaled for it.
LISTS = {"US": ("USD", 1), "EMEA-EUR": ("EUR", 1), "JP": ("JPY", 150)}
CARDS = {"ok": "4242424242424242", "declined": "4000000000000341", "3ds": "4000002760003184"}
RATES = {"USD": "1.0861", "GBP": "0.8412", "JPY": "162.35", "RUB": "98.50", "CNY": "7.70",
         "BRL": "5.40"}


@pytest.fixture(scope="session")
def journey_app(tmp_path_factory, stripe_emulator):  # noqa: F811
    """The portal on 127.0.0.1 with card payments through the emulator."""
    port = free_port()
    folder = tmp_path_factory.mktemp("journeys")
    app = make_app(f"sqlite:///{folder / 'portal.db'}", folder, TESTING=False,
                   PORTAL_BASE_URL=f"http://{LOOPBACK}:{port}", RATELIMIT_ENABLED=False,
                   **stripe_emulator.config())  # every journey comes from 127.0.0.1
    with app.app_context():
        db.create_all()
        seed_launch_dates()
        today = utc_today()
        for country in ("US", "DE", "NL", "RU", "CN", "JP", "GB", "FR", "BR"):
            factories.launch(country, "2013-03-19")
        for currency, per_eur in RATES.items():
            for back in range(0, 3):
                factories.rate(currency, per_eur, today - timedelta(days=back))
        db.session.commit()
    with serving(app, port):
        stripe_emulator.register_webhook(f"http://{LOOPBACK}:{port}/stripe/webhook",
                                         name=f"journeys-{port}")
        yield app


def _price_list(list_code):
    plist = db.session.scalar(select(PriceList).where(PriceList.code == list_code))
    if plist is None:
        currency, scale = LISTS[list_code]
        plist = factories.price_list(list_code, currency, {
            key: str(int(float(price)) * scale) + ".00" for key, price in PRICES.items()})
    return plist


def _contracts(app, wanted, list_code):
    """Contracts of one new account, one per ``wanted`` dict of contract options (with
    ``days_to_end``); returns the first one's renewal link for the account's primary
    contact and every contract's number."""
    with app.app_context():
        plist = _price_list(list_code)
        account, made = None, []
        for options in wanted:
            options = dict(options)
            days_to_end = options.pop("days_to_end", 40)
            options.setdefault("lines", [("VS-ENT", 2)])
            made.append(factories.contract(
                plist, end_date=utc_today() + timedelta(days=days_to_end), account=account,
                **options))
            account = made[0].account
        _link, token = issue_link(made[0], account.contacts[0], purpose="test")
        db.session.commit()
        return (f"{app.config['PORTAL_BASE_URL']}/r/{token}",
                [contract.number for contract in made])


@pytest.fixture
def renewal_link(journey_app):
    """``renewal_link(days_to_end=40, country="US", list_code="US", **contract options)
    -> (url, contract number)`` for a fresh contract and its primary contact."""

    def make(days_to_end=40, list_code="US", **options):
        url, numbers = _contracts(journey_app, [dict(options, days_to_end=days_to_end)],
                                  list_code)
        return url, numbers[0]

    return make


@pytest.fixture
def account_links(journey_app):
    """``account_links(*contracts, list_code="US") -> (url, [contract numbers])``: a new
    account with one contract per dict of options (``days_to_end``, ``lines``, ``level``,
    ...); the link is the first contract's, for the account's primary contact."""

    def make(*contracts, list_code="US"):
        return _contracts(journey_app, contracts, list_code)

    return make


def in_app(app, work):
    """Run ``work()`` in an app context with a fresh session; returns its result."""
    with app.app_context():
        try:
            return work()
        finally:
            db.session.remove()


def contract_state(app, number):
    """What the database and the outbox hold for a contract after a journey: its end date,
    its orders ``[(status, method, amount due)]``, the money charged and refunded and the
    keys (or kinds) of its staged emails."""
    from portal.contracts.models import Contract
    from portal.mail.models import OutboxMessage
    from portal.orders.models import Order, Payment

    def read():
        contract = db.session.scalar(select(Contract).where(Contract.number == number))
        orders = db.session.scalars(select(Order).where(Order.contract_id == contract.id)
                                    .order_by(Order.id)).all()
        payments = db.session.scalars(select(Payment).join(Order).where(
            Order.contract_id == contract.id)).all()
        emails = db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.contract_id == contract.id).order_by(OutboxMessage.id)).all()
        return {
            "end_date": contract.end_date,
            "lines": [(line.product_code, line.quantity) for line in contract.lines],
            "orders": [(o.status, o.method, o.amount_due) for o in orders],
            "payments": [(p.amount, p.currency) for p in payments if p.kind == "charge"],
            "refunds": [(p.amount, p.currency) for p in payments if p.kind == "refund"],
            "emails": [(m.key or m.kind or "").split(":")[0] for m in emails],
            "email_text": {(m.key or m.kind or "").split(":")[0]: _text(m.mime) for m in emails},
        }

    return in_app(app, read)


def _text(mime):
    from email import message_from_bytes
    from email import policy

    message = message_from_bytes(mime, policy=policy.default)
    return message["Subject"] + "\n" + message.get_body(("plain",)).get_content()


def choose(page, url, method, *, lang=None, query=""):
    """Open the renewal link, pick ``method`` and place the order."""
    page.goto(url)
    page.wait_for_url("**/renewal*")
    if lang or query:
        page.goto(page.url.split("?")[0] + "?" + "&".join(
            part for part in (f"lang={lang}" if lang else "", query) if part))
    page.check(f"input[name=payment_method][value={method}]")


def place(page, card=True):
    page.click("button[name=place]")
    page.wait_for_url("**/renewal/pay" if card else "**/renewal/confirmation")


def enter_card(page, kind, pay="#pay-button"):
    """Type a test card into the emulator's card element and press ``pay``."""
    fields = {"number": CARDS[kind], "exp_month": "12", "exp_year": "34", "cvc": "123",
              "postal_code": "10001"}
    for field, value in fields.items():
        page.fill(f"#card-element input[placeholder={field}]", value)
    page.click(pay)
