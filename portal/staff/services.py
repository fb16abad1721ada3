"""What the renewals desk does, as plain functions: no request or session in here.

Each function takes the acting staff email and records what it did in the audit log;
the caller commits.
"""
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from portal.audit.models import AuditEntry, record
from portal.pricing.models import PriceEntry, Product
from portal.checkout.models import ChangeRequestStatus, QuoteChangeRequest
from portal.contracts.models import Account, Contact, Contract, Partner
from portal.errors import PortalError
from portal.extensions import db
from portal.links.models import RenewalLink
from portal.links.services import issue_link, revoke
from portal.mail.models import OutboxMessage, OutboxStatus
from portal.markets.models import MarketLaunch
from portal.notices.models import NoticeRecord
from portal.orders import refunds
from portal.orders.emails import send_order_cancelled
from portal.orders.models import Order, Refund
from portal.orders.services import (
    OrderError,
    cancel_offline_order,
    open_order,
    renewal_state,
)
from portal.payments.provider import CardDeclined, ProviderError
from portal.renewals import rules
from portal.renewals.models import Quote
from portal.renewals.services import compute_quote, current_quote, issue_quote, quoted_lines
from portal.staff.accounts import StaffError, add_staff

SEARCH_LIMIT = 50
MAX_QUANTITY = 1_000_000


class ConsoleError(PortalError):
    """An action the console refuses; the message is shown to the staff user."""


def unpriceable(error):
    return ConsoleError(_("the quote cannot be computed today: %(error)s", error=str(error)))


# --- search ---


def search_contracts(query, limit=SEARCH_LIMIT):
    """Contracts whose number, account name, contact email or partner code contains
    ``query`` (case-insensitive), by number."""
    text = (query or "").replace("\x00", "").strip().lower()
    if not text:
        return []
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

    def like(column):
        return func.lower(column).like(pattern, escape="\\")

    by_contact = select(Contact.account_id).where(like(Contact.email))
    statement = (
        select(Contract)
        .join(Account, Contract.account_id == Account.id)
        .outerjoin(Partner, Contract.partner_id == Partner.id)
        .where(or_(like(Contract.number), like(Account.name), like(Partner.code),
                   Contract.account_id.in_(by_contact)))
        .order_by(Contract.number)
        .limit(limit)
    )
    return list(db.session.scalars(statement))


def find_contract(number):
    if len(number) > 64 or "\x00" in number:  # no such number can exist
        return None
    return db.session.scalar(select(Contract).where(Contract.number == number))


# --- the contract page ---


@dataclass
class ContractOverview:
    contract: Contract
    quotes: list
    orders: list
    links: list
    notices: list
    emails: list
    audit: list
    products: list  # (code, name) of every product the price list prices


def overview(contract):
    quotes = list(db.session.scalars(
        select(Quote).where(Quote.contract_id == contract.id).order_by(Quote.id.desc())))
    orders = list(db.session.scalars(
        select(Order).where(Order.contract_id == contract.id).order_by(Order.id.desc())))
    links = list(db.session.scalars(
        select(RenewalLink).where(RenewalLink.contract_id == contract.id)
        .order_by(RenewalLink.id.desc())))
    notices = list(db.session.scalars(
        select(NoticeRecord).where(NoticeRecord.contract_id == contract.id)
        .order_by(NoticeRecord.id.desc())))
    emails = list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.contract_id == contract.id)
        .order_by(OutboxMessage.id.desc()).limit(200)))
    audit = list(db.session.scalars(
        select(AuditEntry).where(AuditEntry.target == contract.number)
        .order_by(AuditEntry.id.desc()).limit(200)))
    return ContractOverview(contract, quotes, orders, links, notices, emails, audit, price_list_products(contract))


def price_list_products(contract):
    return list(db.session.execute(
        select(Product.code, Product.name).join(PriceEntry, PriceEntry.product_code == Product.code)
        .where(PriceEntry.price_list_id == contract.price_list_id)
        .distinct().order_by(Product.code)))


def contract_renewal_state(contract, today):
    """The renewal state the partner API shows too (``RENEWAL_STATES``)."""
    try:
        result, _rates = compute_quote(contract, today)
    except rules.RuleError:  # cannot be priced today
        return renewal_state(False, None, open_order(contract.id))
    return renewal_state(result.eligible, result.reason, open_order(contract.id))


# --- regenerating a quote ---


def parse_quantities(contract, form):
    """``{product code: quantity}`` from ``qty-<code>`` fields; 0 or empty drops a product.

    Only products of the contract's price list can be quoted.
    """
    quantities = {}
    for code, _name in price_list_products(contract):
        raw = (form.get(f"qty-{code}") or "").strip()
        if not raw:
            continue
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_QUANTITY:
            raise ConsoleError(_("%(code)s: enter a whole number of units (0 to drop the product)",
                                 code=code))
        if int(raw) > 0:
            quantities[code] = int(raw)
    if not quantities:
        raise ConsoleError(_("a quote needs at least one product"))
    return quantities


def regenerate_quote(contract, today, actor, quantities=None):
    """Issue a new quote from today's price list and rates, optionally with edited lines.

    The new quote supersedes the older ones (the newest quote is the one in force).
    """
    lines = None
    if quantities is not None:
        lines = [rules.Line(code, quantity) for code, quantity in sorted(quantities.items())]
    try:
        quote = issue_quote(contract, today, issued_by=actor, lines=lines)
    except rules.RuleError as error:
        raise unpriceable(error) from None
    record(actor, "quote.regenerate", contract.number, quote=quote.id,
           eligible=quote.eligible, reason=quote.reason,
           lines={line.product_code: line.quantity for line in quoted_lines(quote)})
    return quote


def quote_in_force(contract, today, actor):
    """The newest quote if still valid, else a fresh one (what a resent link shows)."""
    try:
        return current_quote(contract, today, issued_by=actor)
    except rules.RuleError as error:
        raise unpriceable(error) from None


def issue_staff_link(contract, contact, actor, purpose="staff"):
    link, token = issue_link(contract, contact, purpose=purpose)
    record(actor, "link.issue", contract.number, contact=contact.email,
           reference=link.reference, purpose=purpose)
    return link, token


def cancel_order(contract, order_reference, reason, actor):
    """Cancel an order of ``contract`` that awaits an offline payment, with a reason."""
    order = db.session.scalar(select(Order).where(
        Order.reference == order_reference, Order.contract_id == contract.id))
    if order is None:
        raise ConsoleError(_("no order %(order)s for this contract", order=order_reference))
    try:
        cancelled = cancel_offline_order(order.id, actor, reason)
    except OrderError:
        raise ConsoleError(_("order %(order)s is %(status)s: only an order awaiting payment "
                             "can be cancelled", order=order.reference,
                             status=order.status)) from None
    send_order_cancelled(cancelled)  # the customer learns why, and that nothing is due
    return cancelled




# --- refunds ---


def refund_offer(contract, today):
    """``(order, decision, shown)`` of a refund requested today; ``shown`` is the amount
    string the confirm form carries ("" when nothing is refundable)."""
    order, decision = refunds.refund_offer(contract, today)
    return order, decision, refunds.shown_amount(order, decision)


def issue_refund(contract, today, shown, actor, card_provider):
    """Refund the contract's current renewal by the same rules as the customer's page."""
    order, decision, now_shown = refund_offer(contract, today)
    if not now_shown:
        raise ConsoleError(_("no refund is due: %(reason)s",
                             reason=decision.rule if decision else "nothing_to_refund"))
    if shown != now_shown:
        raise ConsoleError(_("the refund amount is now %(amount)s; check it and confirm again",
                             amount=now_shown))
    try:
        refund, _now = refunds.refund_renewal(contract.id, today, actor,
                                              expected_amount=decision.amount,
                                              card_provider=card_provider)
    except refunds.RefundRefused as error:
        raise ConsoleError(_("no refund is due: %(reason)s", reason=error.code)) from None
    except (ProviderError, CardDeclined) as error:
        raise ConsoleError(_("the card provider refused: %(error)s", error=str(error))) from None
    return refund


def open_refunds():
    """Refunds, offline ones waiting for staff first."""
    return db.session.scalars(select(Refund).order_by(
        (Refund.status == "staff_task").desc(), Refund.id.desc()).limit(200)).all()


def complete_refund(refund, reference, actor):
    if not refunds.complete_offline_refund(refund, actor, reference.strip()):
        raise ConsoleError(_("this refund is not waiting for staff"))
    return refund


# --- renewal links ---


def find_link(contract, reference):
    if len(reference) > 16 or "\x00" in reference:
        return None
    return db.session.scalar(select(RenewalLink).where(
        RenewalLink.reference == reference, RenewalLink.contract_id == contract.id))


def revoke_link(link, actor):
    if link.revoked_at is not None:
        raise ConsoleError(_("link %(reference)s was already revoked", reference=link.reference))
    revoke(link)
    record(actor, "link.revoke", link.contract.number, reference=link.reference)


# --- quote change requests ---


def change_requests(status):
    return list(db.session.scalars(
        select(QuoteChangeRequest).where(QuoteChangeRequest.status == status)
        .order_by(QuoteChangeRequest.id.desc() if status == "answered"
                  else QuoteChangeRequest.id).limit(200)))


def answer_change_request(item, answer, actor):
    if item.status == "answered":
        raise ConsoleError(_("request %(id)s was already answered", id=item.id))
    item.answer = answer
    item.transition(ChangeRequestStatus.ANSWERED)
    record(actor, "change_request.answer", item.contract.number, request=item.id,
           kind=item.kind)


# --- the outbox ---

OUTBOX_VIEWS = {"failed": ("failed",), "pending": ("staged", "retry"), "sent": ("sent",)}


def outbox_messages(view, limit=200):
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status.in_(OUTBOX_VIEWS[view]))
        .order_by(OutboxMessage.id.desc()).limit(limit)))


def retry_message(message, actor, at):
    """Put a failed email back in the queue: the next ``portal outbox drain`` sends it."""
    if message.status != "failed":
        raise ConsoleError(_("message %(id)s is %(status)s, not failed", id=message.id,
                             status=message.status))
    message.transition(OutboxStatus.RETRY)
    message.attempts = 0
    message.next_attempt_at = at
    record(actor, "mail.retry", message.message_id, to=message.to, kind=message.kind)


# --- admin: staff users and market data ---


def create_staff(email, password, role, actor):
    try:
        user = add_staff(email, password, role)
    except StaffError as error:
        raise ConsoleError(str(error)) from None
    record(actor, "staff.add", user.email, role=role)
    return user


def update_staff(user, role, active, actor):
    if user.email == actor and (role != user.role or not active):
        raise ConsoleError(_("you cannot change your own role or deactivate yourself"))
    changes = {}
    if role != user.role:
        changes["role"] = [user.role, role]
        user.role = role
    if active != user.active:
        changes["active"] = [user.active, active]
        user.active = active
    if changes:
        record(actor, "staff.update", user.email, **changes)
    return changes


def save_market_launch(country, launch_date, market_group, actor):
    country = country.upper()
    row = db.session.get(MarketLaunch, country)
    if row is None:
        row = MarketLaunch(country=country, launch_date=launch_date,
                           market_group=market_group or "")
        db.session.add(row)
        record(actor, "market.add", country, launch_date=launch_date.isoformat(),
               market_group=row.market_group)
    else:
        before = row.launch_date
        row.launch_date = launch_date
        if market_group:
            row.market_group = market_group
        record(actor, "market.update", country, launch_date=[before.isoformat(),
                                                             launch_date.isoformat()])
    return row

