"""Contract status as partners see it (docs/interfaces.md, "Partner API"). No request here."""
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.contracts.models import Contract
from portal.errors import PortalError
from portal.extensions import db
from portal.money import CURRENCIES, amount_string
from portal.audit.models import record
from portal.autorenew.optin import is_on
from portal.checkout.emails import send_fresh_link
from portal.links.services import issue_link, window_closes
from portal.orders.services import open_order, renewal_state
from portal.partners.models import PartnerLinkRequest
from portal.rates.services import rate_table
from portal.renewals import rules
from portal.renewals.services import compute_quote, contract_facts, quote_json, settings

STATUSES = ("active", "expiring", "expired", "cancelled")
#: A contract is ``expiring`` when its end date is 0 to 60 days away.
EXPIRING_DAYS = 60
#: Reported when the rules cannot judge the online cap for lack of an exchange rate.
RATE_UNAVAILABLE = "rate_unavailable"


class _CapNotJudged:
    """Stands in for the priced options when no rate is available: the cap check passes,
    so the remaining checks of the eligibility table still give their reason."""

    within_cap = True


def contract_status(contract, today):
    if contract.status == "cancelled":
        return "cancelled"
    days_left = (contract.end_date - today).days
    if days_left < 0:
        return "expired"
    return "expiring" if days_left <= EXPIRING_DAYS else "active"


def status_filter(status, today):
    """The SQL condition matching ``contract_status(...) == status``."""
    live = Contract.status != "cancelled"
    horizon = today + timedelta(days=EXPIRING_DAYS)
    return {
        "cancelled": Contract.status == "cancelled",
        "expired": live & (Contract.end_date < today),
        "expiring": live & (Contract.end_date >= today) & (Contract.end_date <= horizon),
        "active": live & (Contract.end_date > horizon),
    }[status]


def eligibility(contract, today, rates=None):
    """``(eligible, reason)`` on ``today`` by the rules of docs/rules.md.

    Judging the cap needs the quote currency's rate to USD. When that rate is missing
    the quote cannot be priced, so the contract cannot be renewed online today: the
    answer is ineligible, with the first reason of the eligibility table that does not
    depend on rates, else ``rate_unavailable``.
    """
    try:
        result, _rates = compute_quote(contract, today, rates=rates)
        return result.eligible, result.reason
    except rules.RuleError:
        facts = contract_facts(contract, today)
        reason = rules.ineligibility_reason(facts, [_CapNotJudged()], today, settings(),
                                            contract.price_list.prices())
        return False, reason or RATE_UNAVAILABLE


def order_document(order):
    if order is None:
        return None
    return {
        "status": order.status,
        "method": order.method,
        "amount_due": amount_string(order.amount_due, order.pay_currency),
        "currency": order.pay_currency,
        "placed_at": order.placed_at.replace(microsecond=0).isoformat() + "Z",
        "combined_order": combined_document(order),
    }


def combined_document(order):
    """The combined order an order is part of (one payment for several contracts of the
    account), or None: its reference, contracts and the one amount due."""
    if not order.is_combined:
        return None
    payer = order.payer
    return {"reference": payer.reference,
            "contracts": [each.contract.number for each in payer.paid_together],
            "amount_due": amount_string(payer.amount_payable, payer.pay_currency)}


def contract_document(contract, today, rates=None):
    """The contract as the API shows it; ``rates`` (the day's rate table) may be shared by
    the contracts of one page."""
    eligible, reason = eligibility(contract, today, rates)
    order = open_order(contract.id)
    return {
        "number": contract.number,
        "account": {"name": contract.account.name, "country": contract.account.country},
        "status": contract_status(contract, today),
        "service_level": contract.service_level,
        "term_months": contract.term_months,
        "end_date": contract.end_date.isoformat(),
        "auto_renew": is_on(contract),
        "renewal": {
            "eligible": eligible,
            "reason": reason,
            "state": renewal_state(eligible, reason, order),
            "open_order": order_document(order),
        },
    }


def partner_contract(partner, number):
    """The partner's own contract ``number``; another partner's is None, like a missing one."""
    return db.session.scalar(select(Contract).where(
        Contract.number == number, Contract.partner_id == partner.id))


def partner_contracts(partner, today, status=None, page=1, per_page=50):
    """``(contracts, total)`` of one page, ordered by number (unique, so pages are stable)."""
    condition = Contract.partner_id == partner.id
    if status is not None:
        condition = condition & status_filter(status, today)
    total = db.session.scalar(select(func.count(Contract.id)).where(condition))
    contracts = db.session.scalars(
        select(Contract).where(condition).order_by(Contract.number)
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    return contracts, total


class PartnerRequestRefused(PortalError):
    """A partner request the API answers with an error: ``status``, ``code``, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code = status, code


def partner_quote(contract, today, pay_currency=None):
    """Today's quote JSON, as ``portal quote --json``; ``pay_currency`` must be one the
    checkout offers for the quote (the quote currency, or a fresh rate's; EUR for a LVL or
    LTL quote). A code that is not one of the portal's currencies is a 400; one of them
    that is not offered for this quote today (a stale rate, LVL or LTL, which are never
    paid in) is a 409 ``currency_not_offered``."""
    try:
        result, document = quote_json(contract, today)
    except rules.RuleError as error:
        raise PartnerRequestRefused(409, "not_quotable", str(error)) from None
    if pay_currency is None:
        return document
    offered = rules.pay_currencies(result.currency, rate_table(today), settings())
    if pay_currency not in CURRENCIES:
        raise PartnerRequestRefused(400, "bad_request",
                                    "pay_currency must be one of the portal's currencies, an "
                                    "ISO 4217 code in capitals such as USD or EUR")
    if pay_currency not in offered:  # known, but not a payment currency of this quote today
        raise PartnerRequestRefused(409, "currency_not_offered", "pay_currency must be one "
                                    "of " + ", ".join(offered) + " for this quote today")
    try:
        return quote_json(contract, today, pay_currency=pay_currency)[1]
    except rules.RuleError as error:
        raise PartnerRequestRefused(409, "not_quotable", str(error)) from None


def email_renewal_link(partner, contract, today):
    """Email a fresh renewal link to each renewal contact of ``contract``, at most once a
    day per contract; the links never leave the portal but by that email. Returns the
    number of recipients; the caller commits."""
    if contract.status == "cancelled" or contract.channel == "oem":
        raise PartnerRequestRefused(409, "not_renewable", "the contract cannot be renewed")
    if today > window_closes(contract):
        raise PartnerRequestRefused(409, "not_renewable",
                                    "the contract ended too long ago to be renewed online")
    recipients = contract.renewal_contacts
    if not recipients:
        raise PartnerRequestRefused(409, "no_contacts", "the contract has no contact on record")
    try:
        with db.session.begin_nested():
            db.session.add(PartnerLinkRequest(contract_id=contract.id, partner_id=partner.id,
                                              day=today, recipients=len(recipients)))
    except IntegrityError:
        raise PartnerRequestRefused(429, "too_many", "the renewal link of this contract "
                                    "was emailed today already; ask again tomorrow") from None
    for contact in recipients:
        send_fresh_link(*issue_link(contract, contact, purpose="partner"), partner=partner)
    record(f"partner:{partner.code}", "link.partner_request", contract.number,
           recipients=len(recipients))
    return len(recipients)
