"""Automatic renewal ("Automatic renewal" in docs/rules.md). No request or flask.g here.

The cycle (``run_cycle``) is safe to run hourly, twice at once, or to kill halfway:

- the pre-charge notice 30 days before the end date E is staged under a unique outbox key;
- the off-session charge at ``AUTO_RENEW_CHARGE_DAYS`` (14), then 7 and 1 days before E, is
  one :class:`AutoRenewAttempt` per (contract, E, milestone). The row is claimed in its
  own committed transaction before the provider is called, so a second run skips it; a
  claimed attempt left unfinished (a run killed mid-way, the provider down) is taken up
  again by a later run after ``STALE_CLAIM`` with the SAME idempotency key and the same
  order, so the provider never charges twice;
- success goes through the one write path for payments (``settle`` -> ``record_payment``),
  which renews exactly once from E + 1 and stages the confirmation with the order details;
  a decline or a card that needs authentication stages a pay-by-hand email with a fresh
  renewal link. After the last milestone the contract follows the manual path.
"""
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError

from portal.audit.models import record
from portal.autorenew.milestones import charge_milestones
from portal.autorenew.models import AutoRenewAttempt, AutoRenewal
from portal.autorenew.optin import auto_renewal, stage_contract_email
from portal.contracts.models import Contract
from portal.extensions import db
from portal.links.services import issue_link, link_url
from portal.mail.models import OutboxMessage
from portal.notices.services import RunReport, notify
from portal.orders.models import Order
from portal.orders.services import (
    OrderError,
    lock_order,
    open_order,
    place_order,
)
from portal.orders.models import AttemptState, OrderStatus, PaymentAttempt
from portal.payments.cards import settle
from portal.payments.claims import follow_up
from portal.payments.provider import (
    FAILED,
    SUCCEEDED,
    PaymentRequest,
    ProviderError,
)
from portal.rates.services import rate_table
from portal.renewals import rules
from portal.renewals.services import current_quote, settings
from portal.timeutil import utc_now

log = logging.getLogger(__name__)

#: The pre-charge notice goes out this many days before E.
NOTICE_DAYS = 30
#: A claimed attempt older than this is taken up again (its run died or the provider was
#: down); a run in progress finishes one charge in seconds.
STALE_CLAIM = timedelta(minutes=10)


def cycle_dates(end_date):
    """For a term ending on ``end_date``: the day of its pre-charge notice and of its
    first charge attempt."""
    return (end_date - timedelta(days=NOTICE_DAYS),
            end_date - timedelta(days=charge_milestones()[0]))


def attempt_key(number, end_date, milestone):
    """The provider idempotency key of one charge attempt (contract number, end date,
    milestone): a retry reuses it."""
    return f"autorenew-{number}-{end_date.isoformat()}-{milestone}"


# --- the cycle ---


@dataclass
class CycleReport:
    notices: list = field(default_factory=list)  # contract numbers
    charged: list = field(default_factory=list)  # (contract number, milestone, order)
    failed: list = field(default_factory=list)  # (contract number, milestone, code)
    skipped: list = field(default_factory=list)  # (contract number, milestone, reason)
    errors: list = field(default_factory=list)  # (contract number, message)


def due_renewals(today):
    """``[(contract id, end date)]`` with automatic renewal on and something due within
    ``NOTICE_DAYS`` of ``today``."""
    return [tuple(row) for row in db.session.execute(
        select(Contract.id, Contract.end_date).join(AutoRenewal)
        .where(AutoRenewal.enabled.is_(True), Contract.status == "active",
               Contract.end_date >= today,
               Contract.end_date <= today + timedelta(days=NOTICE_DAYS))
        .order_by(Contract.id)
    )]


def run_cycle(today, provider):
    """Stage the pre-charge notices and make the charges due on ``today``."""
    report = CycleReport()
    work = due_renewals(today)
    db.session.commit()
    for contract_id, end_date in work:
        renew_contract(contract_id, end_date, today, provider, report)
    return report


def renew_contract(contract_id, end_date, today, provider, report):
    """The step due on ``today`` for one contract and its term ending on ``end_date``:
    the pre-charge notice, or the charge attempt of the milestone due (each at most once
    per (contract, end date, milestone))."""
    contract = db.session.get(Contract, contract_id)
    if contract is None or contract.end_date != end_date:  # renewed since it was found due
        db.session.rollback()
        return
    number = contract.number
    days = (end_date - today).days
    due = [m for m in charge_milestones() if m >= days]
    try:
        if due:
            charge(contract_id, number, end_date, min(due), today, provider, report)
        else:
            pre_charge_notice(contract_id, today, report)
    except rules.RuleError as error:  # this contract cannot be priced: the others can
        db.session.rollback()
        report.errors.append((number, str(error)))
    except Exception:
        db.session.rollback()
        raise


def pre_charge_notice(contract_id, today, report):
    """The notice 30 days before E (or the first run after): charge date, amount at
    today's list price, and the link that turns automatic renewal off. Once per E."""
    contract = db.session.get(Contract, contract_id)
    key = f"autorenew-notice:{contract.id}:{contract.end_date.isoformat()}"
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)):
        db.session.rollback()
        return
    renewal = auto_renewal(contract)
    contact = renewal.contact or contract.primary_contact
    if contact is None:
        return
    payment = _list_price(contract, renewal, today)
    if payment is None:
        # Not renewable online today (over the cap, not eligible): no charge is coming, so
        # the customer gets the manual 30-day notice, which says why and what to do.
        number = contract.number
        db.session.rollback()
        notice = RunReport()
        notify(contract_id, NOTICE_DAYS, today, notice)
        if notice.sent:
            report.notices.append(number)
        return
    link, token = issue_link(contract, contact, purpose="autorenew")
    try:
        with db.session.begin_nested():
            stage_contract_email(
                contact, contract, "autorenew_notice", key, payment=payment,
                charge_date=cycle_dates(contract.end_date)[1],
                url=link_url(token) + "?to=auto-renew", reference=link.reference)
    except IntegrityError:  # a concurrent run staged it
        db.session.rollback()
        return
    db.session.commit()
    report.notices.append(contract.number)


def _list_price(contract, renewal, today):
    """The payment for the contract's own level and term at today's prices, or None."""
    quote = current_quote(contract, today, issued_by="autorenew")
    if not quote.eligible:
        return None
    option = quote.option(contract.service_level, contract.term_months)
    if option is None or not option.within_cap:
        return None
    return rules.payment(quote.result(), option,
                         _available_currency(renewal, quote), rate_table(quote.quote_date),
                         settings())


def _pay_currency(renewal, quote):
    order = db.session.get(Order, renewal.opted_in_order_id) if renewal.opted_in_order_id else None
    return order.pay_currency if order is not None else quote.currency


def _claim(contract_id, number, end_date, milestone, today):
    """The attempt to work on, committed; None when another run has it or it is done.
    The INSERT is its transaction's first statement, so on SQLite a concurrent run waits
    for the write lock instead of failing, then meets the unique constraint."""
    db.session.rollback()
    attempt = AutoRenewAttempt(contract_id=contract_id, end_date=end_date, milestone=milestone,
                               idempotency_key=attempt_key(number, end_date, milestone),
                               status="claimed", run_date=today)
    db.session.add(attempt)
    try:
        db.session.commit()
        return attempt
    except IntegrityError:
        db.session.rollback()
    attempt = db.session.scalar(select(AutoRenewAttempt).where(
        AutoRenewAttempt.contract_id == contract_id, AutoRenewAttempt.end_date == end_date,
        AutoRenewAttempt.milestone == milestone))
    if (attempt is None or attempt.status != "claimed"
            or attempt.created_at > utc_now() - STALE_CLAIM):  # both UTC, the app's clock
        db.session.rollback()
        return None
    # Taken up again: first claim it anew (a concurrent run doing the same waits here).
    claimed = db.session.execute(
        AutoRenewAttempt.__table__.update()
        .where(and_(AutoRenewAttempt.id == attempt.id, AutoRenewAttempt.status == "claimed",
                    AutoRenewAttempt.created_at == attempt.created_at))
        .values(created_at=utc_now())
    ).rowcount
    db.session.commit()
    return db.session.get(AutoRenewAttempt, attempt.id, populate_existing=True) if claimed else None


def charge(contract_id, number, end_date, milestone, today, provider, report):
    """One charge attempt for (contract, E, milestone). MOVES money."""
    attempt = _claim(contract_id, number, end_date, milestone, today)
    if attempt is None:
        return
    contract = db.session.get(Contract, contract_id)
    renewal = auto_renewal(contract)
    if renewal is None or contract.end_date != end_date:  # turned off, or renewed meanwhile
        return _finish(attempt, "skipped", "not_due", report.skipped, number)
    if db.session.scalar(select(AutoRenewAttempt.id).where(
            AutoRenewAttempt.contract_id == contract_id, AutoRenewAttempt.end_date == end_date,
            AutoRenewAttempt.status == "succeeded")):
        # Charged once for this end date already (and refunded since): never again.
        _finish(attempt, "skipped", "already_charged", report.skipped, number)
        return db.session.commit()
    order = attempt.order if attempt.order is not None and attempt.order.is_open else None
    customer_order = open_order(contract_id)
    if customer_order is not None and db.session.scalar(
            select(AutoRenewAttempt.id).where(AutoRenewAttempt.order_id == customer_order.id)):
        customer_order = None  # an earlier attempt's own order, which this one may reuse
    if order is None and customer_order is not None:
        # The customer is paying by hand right now (a card form open, an offline order):
        # charging that order as well would take the money twice.
        _finish(attempt, "skipped", "customer_paying", report.skipped, number)
        return db.session.commit()
    if order is None:
        quote = current_quote(contract, today, issued_by="autorenew")
        try:
            order = place_order(quote, contract.service_level, contract.term_months,
                                _available_currency(renewal, quote),
                                renewal.method, contact_id=renewal.contact_id, today=today,
                                actor="autorenew")
        except (OrderError, rules.RuleError) as error:
            code = getattr(error, "code", "not_eligible")
            _finish(attempt, "skipped", code, report.skipped, number)
            if code != "already_renewed":  # an offline order awaits payment: nothing to ask
                _pay_by_hand(contract, renewal, attempt)
            db.session.commit()
            return
        attempt.order_id = order.id
        attempt.amount, attempt.currency = order.amount_due, order.pay_currency
        db.session.commit()  # the order exists before any money moves
    if provider is None:
        report.errors.append((number, "card payments are not configured"))
        return
    request, customer_ref, card_ref = _claim_payment(order, attempt, renewal, provider)
    order_id, attempt_id, payment_key = order.id, attempt.id, request.idempotency_key
    db.session.commit()  # no transaction is open while the provider charges the card
    try:
        state = provider.charge_saved_card(request, customer_ref, card_ref)
    except ProviderError as error:  # left claimed: a later run retries with the same key
        db.session.rollback()
        _payment_unknown(payment_key, error)
        report.errors.append((number, str(error)))
        return
    order = lock_order(order_id)
    attempt = db.session.get(AutoRenewAttempt, attempt_id)
    attempt.provider_ref = state.provider_ref or None
    payment = db.session.scalar(select(PaymentAttempt)
                                .where(PaymentAttempt.idempotency_key == payment_key))
    payment.provider_ref = state.provider_ref or None
    if state.state == SUCCEEDED:
        outcome = settle(order, state, actor="autorenew", provider_name=provider.name)
        if outcome in ("renewed", "already_paid"):
            _finish(attempt, "succeeded", outcome, report.charged, number, order.reference)
        else:  # paid but not as the order says: the desk reviews it (audited by settle)
            _finish(attempt, "failed", outcome, report.failed, number)
        db.session.commit()
        follow_up()  # money for an order replaced meanwhile goes back, with no lock held
        return
    if state.state != FAILED:  # still processing: the provider's event settles it
        if payment.state != AttemptState.OPEN:
            payment.transition(AttemptState.OPEN)
        db.session.commit()
        report.skipped.append((number, milestone, f"provider_{state.state}"))
        return
    if payment.state != AttemptState.FAILED:
        payment.transition(AttemptState.FAILED, error=state.error_code or "declined")
    if order.status == OrderStatus.PENDING:
        order.transition(OrderStatus.FAILED)
    record("autorenew", "autorenew.declined", number, order=order.reference,
           milestone=milestone, code=state.error_code or "", provider_ref=state.provider_ref)
    _finish(attempt, "failed", state.error_code or "declined", report.failed, number)
    _pay_by_hand(contract, renewal, attempt)
    db.session.commit()


def _claim_payment(order, attempt, renewal, provider):
    """The order's payment attempt for this charge, ``starting`` (a charge taken up again
    reuses its attempt and key); returns what the provider is called with, as plain
    values."""
    payment = db.session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.idempotency_key == attempt.idempotency_key))
    if payment is None:
        payment = PaymentAttempt(order=order, provider=provider.name, off_session=True,
                                 idempotency_key=attempt.idempotency_key,
                                 amount=order.amount_due, currency=order.pay_currency,
                                 state=AttemptState.STARTING)
        db.session.add(payment)
    elif payment.state == AttemptState.UNKNOWN:
        payment.transition(AttemptState.STARTING)
    db.session.flush()
    request = PaymentRequest(
        order_reference=order.reference, contract_number=order.contract.number,
        amount=payment.amount, currency=payment.currency,
        idempotency_key=payment.idempotency_key)
    return request, renewal.customer_ref, renewal.card_ref


def _payment_unknown(payment_key, error):
    """The charge's answer never came: its attempt is unknown until the cycle asks again."""
    payment = db.session.scalar(select(PaymentAttempt)
                                .where(PaymentAttempt.idempotency_key == payment_key))
    if payment is not None and payment.state == AttemptState.STARTING:
        payment.transition(AttemptState.UNKNOWN, error=error)
        db.session.commit()


def _available_currency(renewal, quote):
    """The opt-in order's currency while it is offered, else the quote currency."""
    wanted = _pay_currency(renewal, quote)
    offered = rules.pay_currencies(quote.currency, rate_table(quote.quote_date), settings())
    return wanted if wanted in offered else quote.currency


def _finish(attempt, status, outcome, bucket, number, detail=None):
    attempt.status = status
    attempt.outcome = outcome[:64]
    attempt.finished_at = utc_now()
    bucket.append((number, attempt.milestone, detail or outcome))
    db.session.flush()


def _pay_by_hand(contract, renewal, attempt):
    """The charge did not go through: a fresh link to pay by hand, once per attempt."""
    contact = renewal.contact or contract.primary_contact
    if contact is None:
        return
    link, token = issue_link(contract, contact, purpose="autorenew")
    later = [m for m in charge_milestones() if m < attempt.milestone]
    retry_on = contract.end_date - timedelta(days=later[0]) if later else None
    stage_contract_email(
        contact, contract, "autorenew_failed",
        f"autorenew-failed:{contract.id}:{attempt.end_date.isoformat()}:{attempt.milestone}",
        url=link_url(token), reference=link.reference, retry_on=retry_on,
        reason=attempt.outcome)


__all__ = ["run_cycle", "due_renewals", "renew_contract", "charge", "pre_charge_notice",
           "charge_milestones"]
