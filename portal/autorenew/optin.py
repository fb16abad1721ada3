"""Opting in and out of automatic renewal: the card an opted-in payment kept, whether it
is on, turning it off (and why, for the desk's counts), and the signals that do either.
The charging cycle is ``portal.autorenew.services``."""
from sqlalchemy import and_, func, or_, select

from portal.audit.models import record
from portal.autorenew.models import AutoRenewal
from portal.extensions import db
from portal.i18n import email_locale
from portal.mail.outbox import stage_email
from portal.signals import announce, auto_renew_changed, card_kept, order_refunded
from portal.timeutil import utc_now


def auto_renewal(contract):
    """The contract's automatic renewal when it is on, else None."""
    return db.session.scalar(select(AutoRenewal).where(*_turned_on(contract)))


def is_on(contract):
    return auto_renewal(contract) is not None


def opt_in_failed(order):
    """``order`` asked for automatic renewal and its card was never kept for it (as
    opposed to kept and turned off since, which the customer did themselves)."""
    kept = select(AutoRenewal.id).where(or_(AutoRenewal.opted_in_order_id == order.id,
                                            and_(*_turned_on(order.contract))))
    return bool(order.auto_renew) and db.session.scalar(kept.limit(1)) is None


def is_on_column(contract):
    """SQL: ``is_on`` for ``contract`` (a contract, or the contract of an enclosing query)."""
    return select(AutoRenewal.id).where(*_turned_on(contract)).exists()


def _turned_on(contract):
    return AutoRenewal.contract_id == contract.id, AutoRenewal.enabled.is_(True)


def keep_card(order, provider_name, customer_ref, card_ref):
    """The provider kept the card of an opted-in order's payment: turn automatic renewal
    on with it. Called once the provider answered, in the short transaction that records
    its answer (payments/claims.py, ``finish_claim``); a card the provider would not
    keep never gets here, so automatic renewal stays off."""
    renewal = db.session.scalar(select(AutoRenewal)
                                .where(AutoRenewal.contract_id == order.contract_id))
    if (renewal is not None and not renewal.enabled and renewal.turned_off_at is not None
            and order.paid_at is not None and renewal.turned_off_at > order.paid_at):
        # Turned off after this payment, while the provider's answer was awaited: the
        # customer's later word wins; the card stays unused.
        record("system", "autorenew.not_turned_on", order.contract.number,
               order=order.reference, reason="turned off meanwhile")
        return None
    if renewal is None:
        renewal = AutoRenewal(contract_id=order.contract_id)
        db.session.add(renewal)
    renewal.enabled = True
    renewal.contact_id = order.contact_id
    renewal.provider = provider_name
    renewal.customer_ref = customer_ref
    renewal.card_ref = card_ref
    renewal.method = order.method
    renewal.opted_in_order_id = order.id
    renewal.opted_in_at = utc_now()
    renewal.turned_off_at = renewal.turned_off_by = None
    record(f"customer:{order.contact_id}" if order.contact_id else "system", "autorenew.on",
           order.contract.number, order=order.reference)
    db.session.flush()
    announce(auto_renew_changed, contract=order.contract, enabled=True)
    return renewal


#: Why a customer turns automatic renewal off: the choices offered (all optional).
OFF_REASONS = ("too_expensive", "no_longer_needed", "other_vendor", "renew_by_hand",
               "purchasing_rules", "other")


def off_reason_counts():
    """``[(reason or None, count)]`` over contracts whose automatic renewal is off, most
    frequent first; None counts those who gave no reason."""
    rows = db.session.execute(
        select(AutoRenewal.off_reason, func.count()).where(AutoRenewal.enabled.is_(False))
        .group_by(AutoRenewal.off_reason)).all()
    return sorted(rows, key=lambda row: (-row[1], row[0] or "~"))


def recent_off_comments(limit=50):
    """The latest free-text reasons, newest first."""
    return db.session.scalars(
        select(AutoRenewal).where(AutoRenewal.enabled.is_(False),
                                  AutoRenewal.off_comment.is_not(None))
        .order_by(AutoRenewal.turned_off_at.desc()).limit(limit)).all()


def turn_off(contract, actor, reason=None, comment=None):
    """Turn automatic renewal off at once: no later charge. Returns True when it was on;
    the caller commits. A charge already made stays (the refund rules apply to it).
    ``reason`` (a code of OFF_REASONS) and ``comment``: what the customer told us, if
    anything; an unknown code is kept as "other"."""
    renewal = db.session.scalar(select(AutoRenewal).where(AutoRenewal.contract_id == contract.id)
                                .with_for_update())
    if renewal is None or not renewal.enabled:
        return False
    renewal.enabled = False
    renewal.turned_off_at = utc_now()
    renewal.turned_off_by = actor
    if reason:
        renewal.off_reason = reason if reason in OFF_REASONS else "other"
    renewal.off_comment = (comment or "").strip()[:500] or None
    record(actor, "autorenew.off", contract.number, reason=renewal.off_reason or "")
    db.session.flush()
    announce(auto_renew_changed, contract=contract, enabled=False)
    contact = renewal.contact or contract.primary_contact
    if contact is not None:
        stage_contract_email(contact, contract, "autorenew_off",
                             f"autorenew-off:{contract.id}:{renewal.turned_off_at.isoformat()}")
    return True


def on_order_refunded(_app, *, contract, actor, **_details):
    """The customer took the renewal back: charging the card again for the same end date
    would undo the refund, so automatic renewal stops here (they can opt in again)."""
    turn_off(contract, actor)


def on_card_kept(_app, *, order, provider_name, customer_ref, card_ref, **_details):
    keep_card(order, provider_name, customer_ref, card_ref)


def connect():
    """Subscribe to the business signals (once per process; blinker ignores repeats)."""
    order_refunded.connect(on_order_refunded)
    card_kept.connect(on_card_kept)


def stage_contract_email(contact, contract, template, key, **context):
    """Stage the email ``template`` about ``contract`` to ``contact`` in their language,
    once under ``key``."""
    return stage_email(contact.email, template, template,
                       {"contract": contract, "contact": contact, **context},
                       email_locale(contact.language, contract.account.country),
                       contract=contract, key=key)
