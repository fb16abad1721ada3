"""Placing orders and the one write path for "payment succeeded" (docs/rules.md,
"Quotes and orders"). No request or flask.g here: callers pass what they know."""
import secrets
from datetime import timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from portal.audit.models import record
from portal.errors import PortalError
from portal.contracts.models import Contract, ContractLine
from portal.extensions import WriteLockNeeded, company, db, write_intent
from portal.invoices.services import issue_invoice
from portal.mail.receipts import send_payment_received
from portal.markets.methods import methods_for
from portal.money import round_amount
from portal.orders.models import OPEN_STATUSES, IllegalTransition, Order, OrderStatus, Payment
from portal.rates.services import rate_table
from portal.renewals import rules
from portal.renewals.services import quote_document, quoted_lines, settings
from portal.signals import announce, order_lapsed, order_paid, order_placed
from portal.states import one_of
from portal.timeutil import utc_now

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class OrderError(PortalError):
    """An order that cannot be placed; ``code`` is a stable reason for pages and tests."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class OrderClosed(IllegalTransition):
    """Money arrived for an order that was cancelled or lapsed: it is kept on record as a
    payment to return, and renews nothing."""


def methods_offered(country, pay_currency):
    """The payment methods of the markets table for ``country`` and ``pay_currency``,
    less the offline ones whose contracting party has no account for that currency."""
    party = company().party_for(country)
    return [m for m in methods_for(country, pay_currency)
            if m.kind == "card" or party.payee(m.code, pay_currency) is not None]


class PaymentRefused(PortalError):
    """Money that cannot be recorded for an order; the message says why."""


class PaymentMismatch(PaymentRefused):
    """Money received does not match the order (amount or currency)."""


def new_reference():
    return "RN-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


def lock_contract(contract_id):
    """Serialise order changes of one contract (a row lock on PostgreSQL)."""
    return db.session.scalar(select(Contract).where(Contract.id == contract_id).with_for_update())


def lock_order(order_id):
    """Lock one order row until the transaction ends; call it before any other write of
    the transaction, and outside a savepoint. PostgreSQL takes a row lock on the no-op
    UPDATE. SQLite takes its database write lock there; when another request holds it
    while this transaction has read, SQLite refuses at once rather than wait, so the
    read-only transaction is rolled back and the UPDATE, now the first statement, waits
    for the lock. That rollback ends the whole transaction, not just a savepoint, so
    inside one the refusal is raised instead (a request runs again as a writer)."""
    lock = update(Order).where(Order.id == order_id).values(status=Order.status)
    try:
        db.session.execute(lock)
    except (OperationalError, WriteLockNeeded) as error:
        if (db.session.get_bind().dialect.name != "sqlite" or "locked" not in str(error)
                or db.session().in_nested_transaction()):
            raise
        db.session.rollback()
        with write_intent(True):
            db.session.execute(lock)
    return db.session.get(Order, order_id, populate_existing=True)


def open_order(contract_id):
    return db.session.scalar(_newest_open(Order, contract_id))


def open_order_columns(contract):
    """SQL columns: the id and status of ``open_order`` for ``contract`` (a contract, or
    the contract of an enclosing query)."""
    return (_newest_open(Order.id, contract.id).scalar_subquery(),
            _newest_open(Order.status, contract.id).scalar_subquery())


def _newest_open(what, contract_id):
    """``what`` (the order, or one of its columns) of the contract's newest open order."""
    return (select(what)
            .where(Order.contract_id == contract_id, one_of(Order.status, OPEN_STATUSES))
            .order_by(Order.id.desc()).limit(1))


def place_order(quote, service_level, term_months, pay_currency, method_code, *, contact_id,
                today, actor, auto_renew=False):
    """Lock the chosen option and amount of ``quote`` in an order. ``auto_renew``: the
    customer opted in to renew automatically with the card (card methods only).

    Idempotent: the same choice while an order is open returns that order. A different
    choice replaces an unpaid card order (the whole combined order it belongs to); an
    offline order awaiting payment blocks it.
    """
    return place_combined_order([(quote, service_level, term_months)], pay_currency,
                                method_code, contact_id=contact_id, today=today, actor=actor,
                                auto_renew=auto_renew)[0]


def place_combined_order(choices, pay_currency, method_code, *, contact_id, today, actor,
                         auto_renew=False):
    """One order for several contracts paid with one payment ("Orders with several
    contracts" in docs/rules.md): ``choices`` is ``[(quote, service_level, term_months)]``,
    one per contract, the first being the contract whose link placed it; each contract is
    checked and priced exactly as alone, in the one ``pay_currency``. Returns the orders,
    the first one carrying the payment and the reference for all (``combined_into`` of
    the others). OrderError (with the contract's number in the message) when any of them
    cannot be ordered: then nothing is placed. The caller commits.

    Idempotent like ``place_order``: the same contracts with the same choices while the
    combined order is open return it.
    """
    if not choices:
        raise OrderError("nothing_chosen", "no contract was chosen")
    if len({quote.contract_id for quote, _level, _term in choices}) != len(choices):
        raise OrderError("invalid", "a contract was chosen twice")
    # Contracts are locked in one global order (their ids), so two combined orders that
    # share contracts cannot wait for each other.
    contracts = {contract_id: lock_contract(contract_id)
                 for contract_id in sorted(quote.contract_id for quote, _l, _t in choices)}
    rates, country, priced = None, None, []
    for quote, service_level, term_months in choices:
        contract = contracts[quote.contract_id]
        option = _orderable_option(contract, quote, service_level, term_months, today)
        rates = rates or rate_table(quote.quote_date)
        payment = rules.payment(quote.result(), option, pay_currency, rates, settings())
        priced.append((contract, quote, option, payment))
        country = country or contract.account.country
    methods = {m.code: m for m in methods_offered(country, pay_currency)}
    if method_code not in methods:
        raise OrderError("method_not_offered", "this payment method is not offered here")
    method = methods[method_code]
    auto_renew = bool(auto_renew) and method.kind == "card"

    existing = [open_order(contract.id) for contract, _q, _o, _p in priced]
    payer = existing[0].payer if existing[0] is not None else None
    wanted = [(quote.id, option.service_level, option.term_months)
              for _c, quote, option, _p in priced]
    if payer is not None and _same_order(payer, wanted, pay_currency, method_code, auto_renew):
        return payer.paid_together
    for contract, found in zip((c for c, _q, _o, _p in priced), existing):
        if found is None or found.status not in OPEN_STATUSES:
            continue  # cancelled above with an earlier contract's combined order
        if found.status == OrderStatus.AWAITING_PAYMENT:
            raise OrderError("already_renewed",
                             f"an order for contract {contract.number} awaits payment")
        found.payer.transition(OrderStatus.CANCELLED)  # with its combined order, if any

    placed = []
    for contract, quote, option, payment in priced:
        order = Order(
            reference=new_reference(),
            contract_id=contract.id,
            quote_id=quote.id,
            contact_id=contact_id,
            previous_end_date=contract.end_date,
            previous_service_level=contract.service_level,
            previous_term_months=contract.term_months,
            service_level=option.service_level,
            term_months=option.term_months,
            term_start=option.term_start,
            term_end=option.term_end,
            lapsed_days=option.lapsed_days,
            quote_currency=quote.currency,
            total=option.total,
            pay_currency=pay_currency,
            rate=payment.rate,
            fx_fee=payment.fx_fee,
            amount_due=payment.amount_due,
            method=method_code,
            status=(OrderStatus.PENDING if method.kind == "card"
                    else OrderStatus.AWAITING_PAYMENT),
            channel=contract.channel,
            auto_renew=auto_renew,
            expires_on=(today + timedelta(days=current_app.config["OFFLINE_PAYMENT_DAYS"])
                        if method.kind != "card" else None),
            combined_into=placed[0] if placed else None,
        )
        db.session.add(order)
        placed.append(order)
    db.session.flush()
    for order in placed:
        record(actor, "order.place", order.contract.number, order=order.reference,
               method=method_code, amount=f"{order.amount_due} {order.pay_currency}",
               **({"combined_order": placed[0].reference} if len(placed) > 1 else {}))
        announce(order_placed, order=order)
    return placed


def _orderable_option(contract, quote, service_level, term_months, today):
    """The option of ``quote`` the customer chose, checked as of ``today``; OrderError
    (naming the contract) when it cannot be ordered online."""
    def refused(code, message):
        return OrderError(code, f"contract {contract.number}: {message}")

    if not quote.is_valid_on(today):
        raise refused("quote_expired", "the quote is no longer valid")
    if not quote.eligible:
        raise refused(quote.reason or "not_eligible", "the contract cannot be renewed online")
    if contract.end_date.isoformat() != quote.contract_end_date():
        raise refused("quote_expired", "the contract changed since the quote was issued")
    option = offered_option(quote, service_level, term_months)
    if not option.within_cap:
        raise refused("over_cap", "this option is over the online limit")
    return option


def _same_order(payer, wanted, pay_currency, method_code, auto_renew):
    """Whether the open order ``payer`` (with its combined orders) is exactly this choice."""
    orders = payer.paid_together
    return (payer.status in OPEN_STATUSES
            and [(o.quote_id, o.service_level, o.term_months) for o in orders] == wanted
            and all(o.pay_currency == pay_currency and o.method == method_code
                    and o.auto_renew == auto_renew for o in orders))


def moved_contracts(order):
    """The contracts of an open (combined) order that moved on since it was placed
    (renewed by their own link, by staff, automatically; cancelled): paying it now would
    pay for them twice, so the order must be placed again."""
    return [o.contract for o in order.paid_together
            if o.contract.end_date != o.previous_end_date or o.contract.status == "cancelled"]


#: What the next term of a contract waits for: one vocabulary for the staff console and
#: the partner API (an order awaiting payment is not yet a renewal).
RENEWAL_STATES = ("open", "card_payment_started", "awaiting_payment", "renewed", "not_online")


def renewal_state(eligible, reason, order):
    """The contract's renewal state from its eligibility and its open order (or None).

    A card order whose payment was declined (``failed``) and not tried again holds
    nothing back: the customer may pay it with another card or place another order, so
    the state is the eligibility's (``open``, or ``not_online``), not
    ``card_payment_started``, which is a payment under way at the provider."""
    if order is not None and order.status == OrderStatus.AWAITING_PAYMENT:
        return "awaiting_payment"
    if order is not None and order.status == OrderStatus.PENDING:
        return "card_payment_started"
    if reason == "already_renewed":
        return "renewed"
    return "open" if eligible else "not_online"


def record_payment(order_id, *, provider, provider_ref, amount, currency, received_on, actor,
                   send_receipt=True):
    """Money arrived for an order: the one write path that renews a contract.

    Locks the order, is idempotent on ``(provider, provider_ref)``, refuses an amount or
    currency that differs from the order, and renews the contract exactly once. Returns
    ``(order, renewed_now)``. With ``send_receipt=False`` the caller stages the receipt
    itself (after saving the card of an automatic renewal, so the receipt tells the truth).
    """
    order = db.session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order.combined_into_id is not None:  # one payment pays a combined order: its first
        order = db.session.scalar(select(Order).where(Order.id == order.combined_into_id)
                                  .with_for_update())
    known = db.session.scalar(
        select(Payment).where(Payment.provider == provider, Payment.provider_ref == provider_ref)
    )
    if known is not None:
        return order, False
    amount = Decimal(amount)
    if order.status in CLOSED_STATUSES and provider == "offline":
        db.session.add(Payment(order_id=order.id, provider=provider, provider_ref=provider_ref,
                               kind="to_return", amount=amount, currency=currency,
                               received_on=received_on, recorded_by=actor))
        record(actor, "payment.closed_order", order.contract.number, order=order.reference,
               status=order.status, amount=f"{amount} {currency}", provider_ref=provider_ref)
        db.session.flush()
        raise OrderClosed(
            f"order {order.reference} is {order.status}: payment {provider_ref} of {amount} "
            f"{currency} is kept on the refunds page to be paid back; no contract was renewed")
    payable = order.amount_payable
    if currency != order.pay_currency or round_amount(amount, currency) != round_amount(
        payable, order.pay_currency
    ):
        record(actor, "payment.mismatch", order.contract.number, order=order.reference,
               expected=f"{payable} {order.pay_currency}", got=f"{amount} {currency}")
        raise PaymentMismatch(
            f"order {order.reference} expects {round_amount(payable, order.pay_currency)}"
            f" {order.pay_currency}, got {amount} {currency}"
        )
    if order.status == "paid":
        # A second payment for a paid order renews nothing. Money staff record (another
        # transfer) is kept to be paid back, and they are told so.
        offline = provider == "offline"
        db.session.add(Payment(order_id=order.id, provider=provider, provider_ref=provider_ref,
                               kind="to_return" if offline else "charge", amount=amount,
                               currency=currency, received_on=received_on, recorded_by=actor))
        record(actor, "payment.duplicate", order.contract.number, order=order.reference,
               provider_ref=provider_ref)
        if offline:
            db.session.flush()
            raise OrderClosed(
                f"order {order.reference} was already paid: payment {provider_ref} of "
                f"{amount} {currency} is kept on the refunds page to be paid back; nothing "
                "was renewed again")
        return order, False
    order.transition(OrderStatus.PAID)  # with the orders of its other contracts
    paid_at = utc_now()
    db.session.add(Payment(order_id=order.id, provider=provider, provider_ref=provider_ref,
                           amount=amount, currency=currency, received_on=received_on,
                           recorded_by=actor))
    for each in order.paid_together:
        each.paid_at = paid_at
        contract = lock_contract(each.contract_id)
        contract.end_date = each.term_end
        contract.service_level = each.service_level
        contract.term_months = each.term_months
        renew_lines(contract, each.quote)
        record(actor, "contract.renew", contract.number, order=each.reference,
               term_start=each.term_start.isoformat(), term_end=each.term_end.isoformat(),
               amount=f"{each.amount_due} {each.pay_currency}", method=each.method,
               **({"combined_order": order.reference} if each is not order else {}))
    db.session.flush()
    issue_invoice(order)
    if send_receipt:
        send_payment_received(order)
    for each in order.paid_together:
        announce(order_paid, order=each)
    return order, True


#: Orders that take no more money: a payment for one is returned.
CLOSED_STATUSES = ("cancelled", "expired")


def cancel_offline_order(order_id, actor, reason):
    """Cancel an order awaiting an offline payment; the caller commits. ``reason`` is
    kept with the order. Raises OrderError when the order is not awaiting payment."""
    order = lock_order(order_id)
    if order is not None and order.combined_into_id is not None:  # cancelled as a whole
        order = lock_order(order.combined_into_id)
    if order is None or order.status != "awaiting_payment":
        raise OrderError("not_cancellable", "only an order awaiting payment can be cancelled")
    return _cancel(order, actor, reason)


def _cancel(order, actor, reason):
    order.transition(OrderStatus.CANCELLED)  # with the orders of its other contracts
    for each in order.paid_together:
        each.cancelled_at = utc_now()
        each.cancelled_by = actor
        each.cancel_reason = (reason or "").strip()[:500] or None
        record(actor, "order.cancel", each.contract.number, order=each.reference,
               reason=each.cancel_reason or "")
    db.session.flush()
    return order


def switch_offline_order(order_id, method_code, requote, *, contact_id, today, actor):
    """Pay the order awaiting an offline payment with ``method_code`` instead: the same
    option and pay currency, at ``requote(contract)`` (today's quote, asked once the
    offline order no longer holds the renewal). Returns the new order; the caller commits.

    One transaction, inside a savepoint: the offline order is cancelled only together with
    placing the new one, so the contract never has two open orders, nor none when the new
    order cannot be placed (OrderError, nothing changed). The order row is locked before
    the contract, in the order ``record_payment`` takes them: a payment recorded at the
    same moment either comes first (nothing left to switch) or waits and finds the order
    cancelled (kept to be paid back).
    """
    order = lock_order(order_id)  # before the savepoint: see lock_order
    if order is not None and order.combined_into_id is not None:  # switched as a whole
        order = lock_order(order.combined_into_id)
    if order is None or order.status != "awaiting_payment" or order.payments:
        raise OrderError("nothing_to_switch", "no offline order awaits payment")
    if order.method == method_code:
        return order
    with db.session.begin_nested():
        orders = order.paid_together
        _cancel(order, actor, f"switched to {method_code}")
        placed = place_combined_order(
            [(requote(each.contract), each.service_level, each.term_months) for each in orders],
            order.pay_currency, method_code, contact_id=contact_id, today=today, actor=actor)
        for new in placed:  # the same purchase
            new.po_number, new.tax_id, new.billing_address = (
                order.po_number, order.tax_id, order.billing_address)
        record(actor, "order.switch", order.contract.number, order=order.reference,
               new_order=placed[0].reference, method=method_code)
    return placed[0]


def renew_lines(contract, quote):
    """The renewed contract carries the lines its order was quoted for (the desk may have
    changed quantities or products when it regenerated the quote)."""
    quoted = {line.product_code: line.quantity for line in quoted_lines(quote)}
    if not quoted:
        return
    for line in list(contract.lines):
        if line.product_code not in quoted:
            contract.lines.remove(line)
        else:
            line.quantity = quoted.pop(line.product_code)
    db.session.flush()  # removed lines go before new ones take their product codes
    for code, quantity in quoted.items():
        contract.lines.append(ContractLine(product_code=code, quantity=quantity))


def expire_offline_orders(today):
    """Offline orders past their payment window lapse; the customer must re-quote."""
    expired = db.session.scalars(
        select(Order).where(Order.status == "awaiting_payment", Order.expires_on < today,
                            Order.combined_into_id.is_(None))  # the others lapse with it
        .with_for_update()
    ).all()
    lapsed = []
    for order in expired:
        order.transition(OrderStatus.EXPIRED)
        for each in order.paid_together:
            record("system", "order.expire", each.contract.number, order=each.reference)
            announce(order_lapsed, order=each)
            lapsed.append(each)
    return lapsed


# --- reading the stored quote document ---


def offered_option(quote, service_level, term_months):
    """The (level, term) option of ``quote`` as a rule object; OrderError when the quote
    does not offer it."""
    option = quote.option(service_level, term_months)
    if option is None:
        raise OrderError("option_not_offered", "this renewal option is not offered")
    return option


__all__ = ["quote_document", "place_order", "place_combined_order", "moved_contracts", "record_payment", "expire_offline_orders",
           "OrderClosed", "OrderError", "PaymentMismatch", "PaymentRefused",
           "cancel_offline_order", "switch_offline_order"]
