"""Renewing several contracts of one account in one order ("Orders with several contracts"
in docs/rules.md): which contracts a renewal link may add, what each one costs in the one
pay currency, and placing the combined order. No request or flask.g here."""
from dataclasses import dataclass, field
from functools import cache
from decimal import Decimal

from sqlalchemy import select

from portal.contracts.models import Contract
from portal.extensions import db
from portal.checkout.services import chosen_currency, default_option, fresh_quotes
from portal.money import amount_string
from portal.orders.models import Order
from portal.orders.services import OrderError, methods_offered, place_combined_order
from portal.rates.services import rate_table
from portal.renewals import rules
from portal.renewals.services import (
    other_due_contracts,
    others_to_renew_count,
    products_of_quotes,
    settings,
)

def other_due_count(link, today, facts=None):
    """How many other contracts of the link's account are due and may be renewed here,
    with no open order (one query, none with the link's ``LinkFacts``): what the quote
    page mentions, with a link to the combined order."""
    if not link.contact.is_renewal_contact:  # may renew the account's other contracts
        return 0
    if facts is not None:
        return facts.others_due
    return db.session.scalar(select(others_to_renew_count(link.contract, today)))


def due_contracts(link, today):
    """The link's own contract first, then the account's other due contracts by end date."""
    if not link.contact.is_renewal_contact:  # may renew the account's other contracts
        return [link.contract]
    others = db.session.scalars(select(Contract).where(
        *other_due_contracts(link.contract, today))
                                .order_by(Contract.end_date, Contract.number)).all()
    return [link.contract, *others]


@dataclass
class Row:
    """One contract on the combined page: its quote, the option shown, and whether it is
    in the order."""

    contract: Contract
    quote: object
    options: list
    option: object = None
    payment: object = None
    chosen: bool = False
    #: Why it cannot be added (a reason code of the rules), or None.
    reason: str | None = None
    #: The option asked for was not offered (the default is shown instead).
    unoffered: bool = False

    @property
    def addable(self):
        return self.reason is None

    @property
    def choice(self):
        """The form value of the option shown: ``level|months``."""
        return choice_value(self.option) if self.option is not None else ""


def choice_value(option):
    return f"{option.service_level}|{option.term_months}"


@dataclass
class CombinedPage:
    link: object
    rows: list
    pay_currencies: list
    #: ``{quote id: [(product name, code, quantity)]}`` of the rows' quotes.
    products: dict = field(default_factory=dict)
    pay_currency: str | None = None
    methods: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    @property
    def chosen(self):
        return [row for row in self.rows if row.chosen]

    @property
    def total(self):
        return sum((row.payment.amount_due for row in self.chosen), Decimal(0))

    @property
    def fx_fee(self):
        """The currency conversion fees of the chosen contracts, each rounded on its own
        ("Orders with several contracts"): what the order's total includes for them."""
        return sum((row.payment.fx_fee for row in self.chosen), Decimal(0))

    @property
    def total_string(self):
        return amount_string(self.total, self.pay_currency) if self.pay_currency else ""

    @property
    def amount_shown(self):
        """What the form carries back: the total and the contracts it was shown for."""
        numbers = ",".join(row.contract.number for row in self.chosen)
        return f"{self.total_string} {self.pay_currency} {numbers}"


def combined_page(link, today, chosen=None, choices=None, pay_currency=None, strict=True):
    """The combined page, each contract with the quote its own page shows. ``chosen``: ids of the contracts in the
    order (None: the link's own contract only; ``"all"``: every one that can be added);
    ``choices``: ``{contract id: "level|months"}``. Unknown, unoffered or unaddable
    choices fall back to the defaults and are reported in ``errors``; without ``strict``
    (an address from an earlier visit) a contract that can no longer be added is only
    shown as it is now, with its reason."""
    choices = choices or {}
    rates_on = cache(rate_table)  # one table per quote date for the whole page
    rows = []
    contracts = due_contracts(link, today)
    quotes = fresh_quotes(contracts, today)
    for contract in contracts:
        quote = quotes[contract.id]
        options = quote.options()
        row = Row(contract=contract, quote=quote, options=options)
        row.option = default_option(options, contract, over_cap=False)
        wanted = choices.get(contract.id)
        if wanted:
            match = [o for o in options if choice_value(o) == wanted and o.within_cap]
            if match:
                row.option = match[0]
            else:
                row.unoffered = True
        if not quote.eligible:
            row.reason = quote.reason or "not_eligible"
        elif row.option is None:
            row.reason = "over_cap"
        rows.append(row)
    page = CombinedPage(link=link, rows=rows, pay_currencies=[],
                        products=products_of_quotes([row.quote for row in rows]))
    if any(row.unoffered for row in rows):
        page.errors.append("option_not_offered")
    if chosen is None:
        chosen = {link.contract_id}
    for row in rows:
        wanted = chosen == "all" or row.contract.id in chosen
        row.chosen = wanted and row.addable
        if wanted and not row.addable and chosen != "all" and strict:
            page.errors.append(row.reason)
    page.pay_currencies = _common_currencies(page, rates_on)
    if not page.pay_currencies:
        return page
    page.pay_currency = chosen_currency(page.pay_currencies, pay_currency, page.errors)
    for row in page.rows:
        if row.addable:
            row.payment = rules.payment(row.quote.result(), row.option, page.pay_currency,
                                        rates_on(row.quote.quote_date), settings())
    page.methods = methods_offered(link.contract.account.country, page.pay_currency)
    return page


def _common_currencies(page, rates_on):
    """The pay currencies every addable contract offers, in the first one's order."""
    offered = [rules.pay_currencies(row.quote.currency, rates_on(row.quote.quote_date),
                                    settings()) for row in page.rows if row.addable]
    if not offered:
        return []
    common = set.intersection(*(set(codes) for codes in offered))
    return [code for code in offered[0] if code in common]


def place(link, page, method_code, today):
    """Place the page's combined order; returns ``(payer, placed_now)``. OrderError when
    nothing is chosen or any contract cannot be ordered (then nothing is placed)."""
    chosen = page.chosen
    if not chosen or page.pay_currency is None:
        raise OrderError("nothing_chosen", "no contract was chosen")
    before = _open_order_ids(chosen)
    try:
        placed = place_combined_order(
            [(row.quote, row.option.service_level, row.option.term_months) for row in chosen],
            page.pay_currency, method_code, contact_id=link.contact_id, today=today,
            actor=f"customer:{link.contact_id}")
    except rules.RuleError as error:
        raise OrderError("currency_not_offered", str(error)) from None
    return placed[0], placed[0].id not in before


def _open_order_ids(rows):
    return set(db.session.scalars(select(Order.id).where(
        Order.contract_id.in_([row.contract.id for row in rows]))).all())


__all__ = ["other_due_count", "due_contracts", "combined_page", "place", "CombinedPage",
           "Row", "choice_value"]
