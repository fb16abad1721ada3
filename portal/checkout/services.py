"""Checkout logic: the link a visitor holds, what their quote page shows, their orders,
change requests and fresh links. No request or flask.g here: views pass what they know."""
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote as url_quote

from flask_babel import get_locale, gettext
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import aliased, contains_eager, joinedload

from portal.audit.models import record
from portal.autorenew.services import cycle_dates
from portal.autorenew.optin import is_on_column
from portal.checkout import billing
from portal.checkout.models import QuoteChangeRequest
from portal.contracts.models import Account, Contact, Contract
from portal.dataversion import token_column
from portal.extensions import company, db
from portal.mail.receipts import send_change_request_received
from portal.links.models import RenewalLink
from portal.links.services import find_link, is_usable, issue_link, window_closes
from portal.money import amount_string
from portal.orders.models import Order, OrderStatus
from portal.orders.services import (
    OrderError,
    methods_offered,
    open_order,
    open_order_columns,
    place_order,
    switch_offline_order,
)
from portal.rates.services import rate_table
from portal.renewals import rules
from portal.renewals.models import Quote
from portal.renewals.services import (
    in_progress,
    in_progress_columns,
    issue_quote,
    latest_quotes,
    others_to_renew_count,
    renewals_in_progress,
    settings,
)

LINK_WITH_CONTRACT = (joinedload(RenewalLink.contact),
                      joinedload(RenewalLink.contract).joinedload(Contract.account))
#: Orders a customer is shown after placing one: waiting for money, or paid.
SHOWN_STATUSES = ("awaiting_payment", "pending", "failed", "paid")
#: A card order that was started and not finished.
CARD_OPEN = ("pending", "failed")


# --- links ---


def usable_link(link_id, today):
    """The link stored in a visitor's session, if it still opens the checkout."""
    if not isinstance(link_id, int):
        return None
    # One query for what every checkout page reads: the link, its contact (the page's
    # language), its contract and the contract's account (country, name).
    link = db.session.get(RenewalLink, link_id, options=LINK_WITH_CONTRACT)
    return link if link is not None and is_usable(link, today) else None


@dataclass(frozen=True)
class LinkFacts:
    """What the quote page shows about the link's contract besides the link itself, read
    with the link in one statement (``read_link``). True while nothing is written: pages
    that only read use it, forms read afresh."""

    #: The contract's newest quote, or None.
    newest_quote: object
    awaiting_payment: bool
    bought_until: object
    #: ``combined.other_due_count`` before the contact's own check.
    others_due: int
    billing: dict
    open_order_id: int | None
    open_order_status: str | None
    auto_renew_on: bool
    #: The version tokens of the exchange rates and product names (``portal.dataversion``)
    #: as this statement saw them: what was read under them may be used again.
    rates_version: str | None = None
    products_version: str | None = None

    def renewal_in_progress(self, quote_date):
        return in_progress(self.awaiting_payment, self.bought_until, quote_date)


#: The link's contract, its newest quote and their facts in ``link_statement``. Short
#: names keep its text within ``LINK_STATEMENT_MAX_BYTES``.
LINKED = aliased(Contract, name="lc")
NEWEST = aliased(Quote, name="nq")
#: psycopg converts a statement's placeholders once and keeps the result for statements
#: up to this long (``psycopg._queries.MAX_CACHED_STATEMENT_LENGTH``); a longer one is
#: converted again on every view.
LINK_STATEMENT_MAX_BYTES = 4096


@lru_cache(maxsize=4)
def link_statement(today, lapse_days):
    """The link ``:link_id`` with its contact, contract, account and ``LinkFacts`` in one
    statement, built once per day (its due window; ``lapse_days`` is part of it): building
    it costs several times more than running it."""
    newest_id = select(func.max(Quote.id)).where(Quote.contract_id == LINKED.id)
    return (
        select(RenewalLink, NEWEST, *in_progress_columns(LINKED),
               others_to_renew_count(LINKED, today), *billing.defaults_columns(LINKED),
               *open_order_columns(LINKED), is_on_column(LINKED),
               token_column("rates"), token_column("products"))
        .join(LINKED, RenewalLink.contract_id == LINKED.id)
        .join(Account, LINKED.account_id == Account.id)
        .join(Contact, RenewalLink.contact_id == Contact.id)
        .outerjoin(NEWEST, NEWEST.id == newest_id.scalar_subquery())
        .options(contains_eager(RenewalLink.contract.of_type(LINKED))
                 .contains_eager(LINKED.account),
                 contains_eager(RenewalLink.contact))
        .where(RenewalLink.id == bindparam("link_id"))
    )


def read_link(link_id, today):
    """``(link, LinkFacts)`` for the link stored in a visitor's session when it still
    opens the checkout, else ``(None, None)``: one statement."""
    if not isinstance(link_id, int):
        return None, None
    statement = link_statement(today, settings().reinstatement_max_lapse_days)
    row = db.session.execute(statement, {"link_id": link_id}).first()
    if row is None or not is_usable(row[0], today):
        return None, None
    (link, quote, awaiting, bought_until, others_due, billing_id, tax_id, billing_address,
     open_id, open_status, auto_renew_on, rates_version, products_version) = row
    return link, LinkFacts(
        newest_quote=quote, awaiting_payment=bool(awaiting), bought_until=bought_until,
        others_due=others_due, billing=billing.defaults_of(billing_id, tax_id, billing_address),
        open_order_id=open_id, open_order_status=open_status, auto_renew_on=bool(auto_renew_on),
        rates_version=rates_version, products_version=products_version)


def open_token(token, today):
    """``(link, usable)`` for a token from a renewal email; ``(None, False)`` if unknown."""
    link = find_link(token)
    return link, link is not None and is_usable(link, today)


def resend_link(stale_link_id, email, today):
    """Issue a fresh link when ``email`` is a contact of the stale link's contract and the
    contract can still be renewed online; returns ``(link, token)`` or None. Callers answer
    the same way either way, so nobody learns which addresses are on record."""
    if not isinstance(stale_link_id, int):
        return None
    stale = db.session.get(RenewalLink, stale_link_id)
    if stale is None or today > window_closes(stale.contract):
        return None
    wanted = (email or "").strip().lower()
    contact = next((c for c in stale.contract.account.contacts if c.email.lower() == wanted),
                   None)
    if contact is None:
        record("customer", "link.resend_refused", stale.contract.number, reference=stale.reference)
        return None
    link, token = issue_link(stale.contract, contact, purpose="resend")
    record(f"customer:{contact.id}", "link.issue", stale.contract.number,
           reference=link.reference, replaces=stale.reference, contact=contact.email)
    return link, token


def window_closed(link, today):
    """The link is good but its contract's reinstatement window has closed."""
    return link.revoked_at is None and today > window_closes(link.contract)


def help_mailto(link):
    """An "email us" link carrying the contract number, link reference and address used."""
    contract = link.contract
    return _mailto(str(get_locale()), company().support_for(contract.account.country).email,
                   contract.number, link.reference, link.contact.email)


@lru_cache(maxsize=4096)
def _mailto(locale, support_email, number, reference, email):
    """Built once per process for the same values (every checkout page's footer has one);
    ``locale`` is the page's, in which ``gettext`` translates."""
    # In the page's language: the customer writes the rest of the message.
    subject = gettext("Contract %(number)s, reference %(reference)s", number=number,
                      reference=reference)
    body = f"{subject}\n{email}\n\n"
    return f"mailto:{support_email}?subject={url_quote(subject)}&body={url_quote(body)}"


# --- the quote page ---


def fresh_quote(contract, today, facts=None):
    """The quote to show today: the newest valid one unless the contract has moved on
    since (renewed, an order placed or lapsed, cancelled); never a stale amount.
    ``facts``: the link's ``LinkFacts``, when read this request and nothing written since."""
    if facts is None:
        return fresh_quotes([contract], today)[contract.id]
    return _fresh(contract, facts.newest_quote, facts.renewal_in_progress(today), today)


def fresh_quotes(contracts, today):
    """``{contract id: fresh_quote(contract, today)}`` for many contracts: the newest
    quotes and the orders that matter read in two queries, a quote issued where the newest
    one is missing, expired or stale."""
    latest = latest_quotes(contracts)
    in_progress = renewals_in_progress(contracts, today)
    return {contract.id: _fresh(contract, latest.get(contract.id), contract.id in in_progress,
                                today)
            for contract in contracts}


def _fresh(contract, newest, in_progress, today):
    """``newest`` when it is valid today and not stale, else a quote issued now."""
    if newest is None or not newest.is_valid_on(today) or _stale(contract, newest, in_progress):
        return issue_quote(contract, today, issued_by="checkout")
    return newest


def _stale(contract, quote, in_progress):
    """Whether ``quote`` no longer says what the contract is today (renewed, an order
    placed or lapsed, cancelled)."""
    cancelled = contract.status == "cancelled"
    return (
        quote.document.get("contract_end_date") != contract.end_date.isoformat()
        or (quote.eligible and (in_progress or cancelled))
        or (quote.reason == "already_renewed" and not in_progress)
        or (quote.reason == "cancelled" and not cancelled)
    )


@dataclass
class QuotePage:
    """Everything the quote page shows for one selection of level, term and currency."""

    link: RenewalLink
    quote: object
    options: list
    levels: list
    terms: list
    pay_currencies: list
    service_level: str | None = None
    term_months: int | None = None
    pay_currency: str | None = None
    option: object = None
    payment: object = None
    methods: list = field(default_factory=list)
    #: Codes of what was wrong with the requested selection (shown as messages).
    errors: list = field(default_factory=list)

    @property
    def contract(self):
        return self.link.contract

    @property
    def auto_renew_dates(self):
        """When automatic renewal would notify and charge for the term after this one."""
        return cycle_dates(self.option.term_end) if self.option is not None else None

    @property
    def buyable(self):
        return self.quote.eligible and self.payment is not None

    @property
    def amount_due_string(self):
        return amount_string(self.payment.amount_due, self.payment.currency) if self.payment else ""

    @property
    def amount_shown(self):
        """What the order form carries back: the amount due the customer saw."""
        return f"{self.amount_due_string} {self.payment.currency}" if self.payment else ""


def default_option(options, contract, over_cap=True):
    """The option shown first: the contract's own level and term, else the first one
    within the online cap, else (``over_cap``) the first one at all, else None."""
    own = [o for o in options if (o.service_level, o.term_months)
           == (contract.service_level, contract.term_months) and o.within_cap]
    within = [o for o in options if o.within_cap]
    return (own or within or (options if over_cap else []) or [None])[0]


def chosen_currency(offered, asked, errors):
    """``asked`` (in any case) when it is offered, else the first currency offered and
    ``currency_not_offered`` in ``errors``."""
    if asked:
        if str(asked).upper() in offered:
            return str(asked).upper()
        errors.append("currency_not_offered")
    return offered[0]


def _term_number(text):
    try:
        return int(str(text))
    except ValueError:
        return None


def quote_page(link, today, service_level=None, term_months=None, pay_currency=None,
               facts=None):
    """The quote page for ``link``; unknown or unoffered choices fall back to the defaults
    and are reported in ``errors``. ``facts``: as for ``fresh_quote``."""
    contract = link.contract
    quote = fresh_quote(contract, today, facts)
    options = quote.options()
    rates = rate_table(quote.quote_date, facts.rates_version if facts is not None else None)
    page = QuotePage(
        link=link, quote=quote, options=options,
        levels=list(dict.fromkeys(o.service_level for o in options)),
        terms=sorted({o.term_months for o in options}),
        pay_currencies=rules.pay_currencies(quote.currency, rates, settings()),
    )
    if not options:
        return page
    default = default_option(options, contract)
    page.service_level, page.term_months = default.service_level, default.term_months
    if service_level or term_months:
        wanted = (service_level or page.service_level,
                  _term_number(term_months) if term_months else page.term_months)
        match = [o for o in options if (o.service_level, o.term_months) == wanted]
        if match:
            page.service_level, page.term_months = wanted
        else:
            page.errors.append("option_not_offered")
    page.option = next(o for o in options if (o.service_level, o.term_months)
                       == (page.service_level, page.term_months))
    page.pay_currency = chosen_currency(page.pay_currencies, pay_currency, page.errors)
    if page.option.within_cap and quote.eligible:
        page.payment = rules.payment(quote.result(), page.option, page.pay_currency,
                                     rates, settings())
        page.methods = methods_offered(contract.account.country, page.pay_currency)
    elif not page.option.within_cap and (service_level or term_months):
        page.errors.append("over_cap")
    return page


# --- orders ---


def place(link, page, method_code, today, auto_renew=False):
    """Place the order for the page's selection; raises OrderError when it cannot be.
    Returns ``(order, placed_now)``; a repeated submission returns the same order."""
    if page.payment is None:
        raise OrderError("option_not_offered", "the selection has no amount due")
    before = {o.id for o in _orders(link.contract)}
    try:
        order = place_order(
            page.quote, page.service_level, page.term_months, page.pay_currency, method_code,
            contact_id=link.contact_id, today=today, actor=f"customer:{link.contact_id}",
            auto_renew=auto_renew,
        )
    except rules.RuleError as error:
        raise OrderError("currency_not_offered", str(error)) from None
    return order, order.id not in before


def switch_method(link, today, method_code=None):
    """Pay the contract's offline order that awaits payment with ``method_code`` (None: the
    first card offered) instead: the same option and currency at today's quote, in one
    transaction (``switch_offline_order``). Returns the new order; raises OrderError when
    there is no such offline order or the method is not offered. The caller starts a card
    payment or emails the new instructions, and commits."""
    contract = link.contract
    offline = open_order(contract.id)
    if offline is None or offline.status != OrderStatus.AWAITING_PAYMENT or offline.payments:
        raise OrderError("nothing_to_switch", "no offline order awaits payment")
    offered = methods_offered(contract.account.country, offline.pay_currency)
    if method_code is None:
        method_code = next((m.code for m in offered if m.kind == "card"), None)
    if method_code not in {m.code for m in offered}:
        raise OrderError("method_not_offered", "this payment method is not offered here")
    try:
        return switch_offline_order(offline.id, method_code,
                                    lambda contract: fresh_quote(contract, today),
                                    contact_id=link.contact_id, today=today,
                                    actor=f"customer:{link.contact_id}")
    except rules.RuleError as error:
        raise OrderError("currency_not_offered", str(error)) from None


def offline_alternatives(order):
    """The other offline methods an order awaiting payment could be paid with."""
    offered = methods_offered(order.contract.account.country, order.pay_currency)
    return [m.code for m in offered if m.kind != "card" and m.code != order.method]


def open_card_order(contract, facts=None):
    """The contract's card order that was started and not finished, if any. ``facts``: as
    for ``fresh_quote`` (then the order is read only when there is one)."""
    if facts is None:
        order = open_order(contract.id)
    elif facts.open_order_status in CARD_OPEN:
        order = db.session.get(Order, facts.open_order_id)
    else:
        return None
    return order.payer if order is not None and order.status in CARD_OPEN else None


def _orders(contract):
    return db.session.scalars(
        select(Order).where(Order.contract_id == contract.id).order_by(Order.id.desc())
    ).all()


def shown_order(contract):
    """The order a customer sees on the confirmation and already-renewed pages: the open
    one, else the paid order that bought the current term; for a contract in a combined
    order, the order that carries its payment (and lists every contract)."""
    for order in _orders(contract):
        if order.status in SHOWN_STATUSES and order.status != "paid":
            return order.payer
        if order.status == "paid" and order.term_end == contract.end_date:
            return order.payer
    return None


def link_order(link, remembered_id=None):
    """The order a link's visitor sees: the newer of its contract's (``shown_order``) and
    the combined order this visitor placed for other contracts of the same account
    (``remembered_id``, from their session) while that one is open or paid. So a combined
    order placed after the link's own contract was renewed is the one confirmed."""
    order = shown_order(link.contract)
    if not isinstance(remembered_id, int) or (order is not None and order.id >= remembered_id):
        return order
    remembered = db.session.get(Order, remembered_id)
    if (remembered is None or remembered.combined_into_id is not None
            or remembered.contract.account_id != link.contract.account_id
            or remembered.status not in SHOWN_STATUSES):
        return order
    return remembered


# --- change requests ---


def request_change(link, kind, message, service_level=None, term_months=None):
    """Store a change request for staff; an identical open request is not stored twice."""
    text = (message or "").strip()
    if kind == "quote" and service_level:
        text = f"[{service_level[:64]}, {str(term_months or '')[:8]} months] {text}".strip()
    existing = db.session.scalar(
        select(QuoteChangeRequest).where(
            QuoteChangeRequest.contract_id == link.contract_id,
            QuoteChangeRequest.contact_id == link.contact_id,
            QuoteChangeRequest.kind == kind, QuoteChangeRequest.message == text,
            QuoteChangeRequest.status == "open",
        ).limit(1)
    )
    if existing is not None:
        return existing
    change = QuoteChangeRequest(contract_id=link.contract_id, contact_id=link.contact_id,
                                link_reference=link.reference, kind=kind, message=text)
    db.session.add(change)
    db.session.flush()
    record(f"customer:{link.contact_id}", "quote.change_request", link.contract.number,
           kind=kind, request=change.id, reference=link.reference)
    send_change_request_received(change)
    return change
