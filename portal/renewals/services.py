"""Quoting contracts from the database: facts in, rules applied, quotes issued and stored."""
from datetime import timedelta
from functools import cache, lru_cache

from flask import current_app
from sqlalchemy import bindparam, func, select

from portal.contracts.models import Contract
from portal.dataversion import VersionedCache

from portal.pricing.models import Product
from portal.extensions import db
from portal.markets.services import launch_date
from portal.money import amount_string
from portal.states import one_of
from portal.orders.models import Order
from portal.rates.services import rate_table
from portal.renewals import rules
from portal.renewals.models import Quote

#: A contract renewed through the portal counts as already renewed until its new term is
#: this close to ending, when the first renewal notice (60 days) invites the next renewal.
RENEWED_UNTIL_DAYS_BEFORE_END = 60


#: A contract is due when it ends within this many days (the first renewal notice), or has
#: lapsed and can still be reinstated online ("Orders with several contracts").
DUE_WITHIN_DAYS = 60


def settings():
    """The rule settings of the running app's configuration: made once per set of values
    (a quote page reads them several times)."""
    config = current_app.config
    return _settings(tuple(config[name] for name in SETTING_NAMES))


#: The configuration names ``settings`` reads, in the order of its values.
SETTING_NAMES = tuple(name for name, _read in rules.SETTINGS_CONFIG.values())


@lru_cache(maxsize=32)
def _settings(values):
    return rules.Settings.from_config(dict(zip(SETTING_NAMES, values)))


def due_window(today):
    """``(first, last)`` end dates of the contracts due on ``today``."""
    return (today - timedelta(days=settings().reinstatement_max_lapse_days),
            today + timedelta(days=DUE_WITHIN_DAYS))


def other_due_contracts(contract, today):
    """SQL conditions: the other contracts of ``contract``'s account that are due today."""
    first, last = due_window(today)
    return (Contract.account_id == contract.account_id, Contract.id != contract.id,
            Contract.end_date >= first, Contract.end_date <= last)


def others_to_renew_here(contract, today):
    """SQL conditions: ``other_due_contracts`` that this portal may renew, that no open
    order holds and whose newest quote (if any) is renewable online: what a notice or the
    quote page invites to renew together."""
    held = select(Order.id).where(Order.contract_id == Contract.id,
                                  one_of(Order.status, ("pending", "awaiting_payment", "failed")))
    # Its newest quote, when it has one, says it can be renewed online (not over the cap).
    eligible = (select(Quote.eligible).where(Quote.contract_id == Contract.id)
                .order_by(Quote.id.desc()).limit(1).scalar_subquery())
    return (*other_due_contracts(contract, today), Contract.status == "active",
            Contract.channel != "oem", ~held.exists(),
            func.coalesce(eligible, True).is_(True))


def others_to_renew_count(contract, today):
    """SQL: how many contracts ``others_to_renew_here`` holds, for ``contract`` or the
    contract of an enclosing query."""
    return select(func.count(Contract.id)).where(
        *others_to_renew_here(contract, today)).scalar_subquery()


def renewal_in_progress(contract, quote_date):
    """``already_renewed``: the next term awaits offline payment, or the current term was
    bought here and has not yet come up for renewal again (one query)."""
    return contract.id in renewals_in_progress([contract], quote_date)


def renewals_in_progress(contracts, quote_date):
    """The ids of ``contracts`` whose renewal is in progress (``renewal_in_progress``),
    read in one query."""
    ends = {contract.id: contract.end_date for contract in contracts}
    rows = db.session.execute(select(Order.contract_id, Order.status, Order.term_end).where(
        Order.contract_id.in_(ends), Order.status.in_(("awaiting_payment", "paid")))).all()
    return {contract_id for contract_id, status, term_end in rows
            if in_progress(status == "awaiting_payment",
                           term_end if status == "paid" and term_end == ends[contract_id]
                           else None, quote_date)}


def in_progress(awaiting_payment, bought_until, quote_date):
    """``renewal_in_progress`` from what ``in_progress_columns`` read: an order awaits
    offline payment, or a paid order bought the current term (ending ``bought_until``) and
    it is not yet due for renewal again."""
    return bool(awaiting_payment) or (
        bought_until is not None
        and (bought_until - quote_date).days > RENEWED_UNTIL_DAYS_BEFORE_END)


def in_progress_columns(contract):
    """SQL columns for ``in_progress``: whether an order of ``contract`` (a contract, or
    the contract of an enclosing query) awaits payment, and the end of the current term
    when a paid order bought it."""
    awaiting = select(Order.id).where(Order.contract_id == contract.id,
                                      Order.status == "awaiting_payment").exists()
    bought_until = select(func.max(Order.term_end)).where(
        Order.contract_id == contract.id, Order.status == "paid",
        Order.term_end == contract.end_date).scalar_subquery()
    return awaiting, bought_until


def contract_facts(contract, quote_date, lines=None):
    lines = lines if lines is not None else contract.lines
    return rules.ContractFacts(
        number=contract.number,
        channel=contract.channel,
        service_level=contract.service_level,
        end_date=contract.end_date,
        currency=contract.currency,
        lines=tuple(rules.Line(line.product_code, line.quantity) for line in lines),
        launch_date=launch_date(contract.account.country),
        cancelled=contract.status == "cancelled",
        renewal_in_progress=renewal_in_progress(contract, quote_date),
    )


def compute_quote(contract, quote_date, rates=None, lines=None):
    """Quote ``contract`` on ``quote_date`` without storing anything."""
    rates = rates or rate_table(quote_date)
    facts = contract_facts(contract, quote_date, lines)
    return rules.quote(facts, contract.price_list.prices(), rates, quote_date, settings()), rates


def quote_json(contract, quote_date, level=None, term=None, pay_currency=None):
    """The quote JSON of ``contract`` on ``quote_date``, as ``portal quote --json`` prints
    it; with ``pay_currency``, ``payment`` pays the (``level``, ``term``) option, by
    default the contract's own. Returns ``(result, document)``; RuleError when the
    contract cannot be priced, the option is not offered or the currency not offered."""
    result, rates = compute_quote(contract, quote_date)
    payment = None
    if pay_currency is not None:
        option = result.option(level or contract.service_level, term or contract.term_months)
        payment = rules.payment(result, option, pay_currency.upper(), rates, settings())
    elif level is not None or term is not None:
        result.option(level or contract.service_level, term or contract.term_months)
    return result, quote_document(result, payment)


def quote_document(result, payment=None):
    """The quote JSON of docs/interfaces.md."""
    currency = result.currency
    return {
        "contract": result.contract,
        "quote_date": result.quote_date.isoformat(),
        "currency": currency,
        "eligible": result.eligible,
        "reason": result.reason,
        "options": [option_document(option, currency) for option in result.options],
        "payment": payment_document(payment) if payment else None,
    }


def option_document(option, currency):
    return {
        "service_level": option.service_level,
        "term_months": option.term_months,
        "term_start": option.term_start.isoformat(),
        "term_end": option.term_end.isoformat(),
        "lapsed_days": option.lapsed_days,
        "term_fee": amount_string(option.term_fee, currency),
        "backdated_fee": amount_string(option.backdated_fee, currency),
        "reinstatement_fee": amount_string(option.reinstatement_fee, currency),
        "total": amount_string(option.total, currency),
        "usd_equivalent": amount_string(option.usd_equivalent, "USD"),
        "within_cap": option.within_cap,
    }


def payment_document(payment):
    currency = payment.currency
    return {
        "currency": currency,
        "service_level": payment.service_level,
        "term_months": payment.term_months,
        "rate": format(payment.rate, "f"),
        "converted": amount_string(payment.converted, currency),
        "fx_fee": amount_string(payment.fx_fee, currency),
        "amount_due": amount_string(payment.amount_due, currency),
    }


def record_document(result, lines, contract_end):
    """What a stored quote keeps besides the quote JSON: the prices, rates and lines used."""
    return {
        "quote": quote_document(result),
        "valid_until": result.valid_until.isoformat(),
        "contract_end_date": contract_end.isoformat(),
        "lines": [{"product_code": line.product_code, "quantity": line.quantity}
                  for line in lines],
        "prices": [
            {"product_code": product, "service_level": level, "term_months": term,
             "unit_price": format(price, "f")}
            for (product, level, term), price in sorted(result.prices_used.items())
        ],
        "rates": {
            code: {"per_eur": format(rate.per_eur, "f"), "as_of": rate.as_of.isoformat()}
            for code, rate in result.rates_used.items()
        },
        "settings": {
            key: str(current_app.config[key])
            for key in ("ONLINE_CAP_USD", "FX_FEE_RATE", "REINSTATEMENT_FEE_RATE")
        },
    }


def issue_quote(contract, quote_date, issued_by="system", lines=None):
    """Compute and store a quote; the newest quote of a contract supersedes older ones."""
    quote = build_quote(contract, quote_date, issued_by, lines)
    db.session.add(quote)
    db.session.flush()
    return quote


def build_quote(contract, quote_date, issued_by="system", lines=None):
    """Compute a quote without storing it (the caller adds it to a writing transaction).
    Without ``lines``, the lines the desk set for the current term stay in force."""
    if lines is None:
        lines = desk_lines(contract)
    result, _ = compute_quote(contract, quote_date, lines=lines)
    return Quote(
        contract_id=contract.id,
        quote_date=quote_date,
        valid_until=result.valid_until,
        currency=result.currency,
        eligible=result.eligible,
        reason=result.reason,
        document={**record_document(result, lines if lines is not None else contract.lines,
                                    contract.end_date),
                  "edited_lines": lines is not None},
        issued_by=issued_by,
    )


def latest_quote(contract):
    return db.session.scalar(
        select(Quote).where(Quote.contract_id == contract.id).order_by(Quote.id.desc()).limit(1)
    )


def latest_quotes(contracts):
    """``{contract id: its newest quote}`` of ``contracts`` (those with one), one query."""
    newest = (select(func.max(Quote.id)).where(Quote.contract_id.in_(
        [contract.id for contract in contracts])).group_by(Quote.contract_id))
    return {quote.contract_id: quote
            for quote in db.session.scalars(select(Quote).where(Quote.id.in_(newest)))}


def current_quote(contract, today, issued_by="system"):
    """The newest quote if it is still valid today, else a fresh one (never a stale amount)."""
    quote = latest_quote(contract)
    if quote is not None and quote.is_valid_on(today):
        return quote
    return issue_quote(contract, today, issued_by)


def desk_lines(contract):
    """The lines of the newest quote when the desk edited them for the contract's current
    end date (a re-quote for a later day keeps them), else None: the contract's own."""
    quote = latest_quote(contract)
    if (quote is None or not quote.document.get("edited_lines")
            or quote.document.get("contract_end_date") != contract.end_date.isoformat()):
        return None
    return quoted_lines(quote)


def quoted_lines(quote):
    """The lines (product code, quantity) a stored quote was computed for: the contract's,
    or the ones the renewals desk set when it regenerated the quote."""
    return [rules.Line(line["product_code"], int(line["quantity"]))
            for line in quote.document.get("lines", [])]


#: Product names read under a version token of the products (``portal.dataversion``),
#: by the set of codes asked for: a contract's page asks for the same codes on every view.
PRODUCT_NAMES = VersionedCache(size=1024)


def quote_products(quote, version=None):
    """``[(product name, code, quantity)]`` of a stored quote, for pages, emails, the PDF.
    ``version``: as for ``products_of_quotes``."""
    return products_of_quotes([quote], version)[quote.id]


@cache
def product_names():
    """``(code, name)`` of the products ``codes``: built once (building a statement costs
    more than running it)."""
    return select(Product.code, Product.name).where(
        Product.code.in_(bindparam("codes", expanding=True)))


def products_of_quotes(quotes, version=None):
    """``{quote id: [(product name, code, quantity)]}`` for several quotes, the names read
    in one query. ``version``: the product names' version token read in the caller's
    statement; names read under the same token before are used again."""
    lines = {quote.id: quoted_lines(quote) for quote in quotes}
    codes = frozenset(line.product_code for each in lines.values() for line in each)
    names = PRODUCT_NAMES.get(version, codes, lambda: dict(db.session.execute(
        product_names(), {"codes": list(codes)}).all())) if codes else {}
    return {quote_id: [(names.get(line.product_code, line.product_code), line.product_code,
                        line.quantity) for line in each]
            for quote_id, each in lines.items()}
