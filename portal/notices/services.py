"""Renewal notices ("Renewal notices" in docs/rules.md).

A notice goes out 60, 30 and 15 days before the end date E. A run that missed days sends
only the latest milestone due and not yet sent; nothing after E, nothing once renewed,
nothing for OEM or cancelled contracts.

Each contract is handled in two steps: the quote, the PDF and the emails are made while
only reading, then one short transaction stores the unique (contract, end date,
milestone) record, the frozen quote, one renewal link and one staged email per recipient,
together or not at all. A concurrent run inserting the same record hits the unique
constraint, so it skips the contract.
"""
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.autorenew.milestones import manual_path_condition
from portal.contracts.models import Account, Contract, ContractLine
from portal.extensions import company, db, write_intent
from portal.checkout.labels import level_label
from portal.i18n import email_locale
from portal.links.services import link_url, new_link
from portal.mail.addresses import deliverable
from portal.mail.outbox import compose, stage_email
from portal.notices.models import NoticeRecord
from portal.pdf import render_pdf
from portal.renewals.rules import RuleError
from portal.renewals.services import build_quote, others_to_renew_here, quote_products
from portal.signals import announce, renewal_day

#: (milestone, fewest days left, most days left): the milestone due at each distance from E.
#: The negative milestones are the lapsed reminders, 1 and 30 days after E; the last one
#: stays due until the reinstatement window (REINSTATEMENT_MAX_LAPSE_DAYS) closes.
WINDOWS = ((-30, None, -30), (-1, -29, -1), (15, 0, 15), (30, 16, 30), (60, 31, 60))
MILESTONES = tuple(window[0] for window in WINDOWS)
#: Milestones after E: sent only while the contract can be reinstated online.
LAPSED_MILESTONES = (-1, -30)
#: Milestones a contract renewing automatically does not get while automatic renewal is
#: on (it gets the pre-charge notice instead); the 60-day notice still goes out.
AUTO_RENEW_SKIPS = (30, 15)

REASON_TEXTS = {
    "over_cap": _l("The amount is above what can be paid online. Ask us for a quote and "
                   "we will arrange the renewal with you."),
    "level_not_online": _l("Your service level is not renewed online. Ask us for a quote and "
                           "we will arrange the renewal with you."),
    "not_launched": _l("Online renewal is not yet available in your country. Ask us for a "
                       "quote and we will arrange the renewal with you."),
    "no_price": _l("Some of your products have no online price. Ask us for a quote and we "
                   "will arrange the renewal with you."),
    "lapsed_too_long": _l("Your contract ended too long ago to be renewed online. Ask us for "
                          "a quote."),
}
#: Reasons that mean no notice at all (renewed, awaiting payment, cancelled, OEM).
NO_NOTICE = {"already_renewed", "cancelled", "oem"}


@dataclass
class RunReport:
    sent: list = field(default_factory=list)  # (contract number, milestone, recipients)
    skipped: dict = field(default_factory=dict)  # contract number -> reason
    errors: dict = field(default_factory=dict)  # contract number -> message

    @property
    def emails(self):
        return sum(count for _, _, count in self.sent)


def due_contracts(today):
    """``[(contract id, end date, milestone)]`` due on ``today``, read through the
    end-date index.

    Only contracts ending within 60 days are read, and of those only the ones whose due
    milestone (or a later one) has no record yet.
    """
    due = []
    for milestone, fewest, most in WINDOWS:
        if fewest is None:
            fewest = -int(current_app.config["REINSTATEMENT_MAX_LAPSE_DAYS"])
        noticed = exists().where(
            NoticeRecord.contract_id == Contract.id,
            NoticeRecord.end_date == Contract.end_date,
            NoticeRecord.milestone <= milestone,
        )
        conditions = [
            Contract.end_date >= today + timedelta(days=fewest),
            Contract.end_date <= today + timedelta(days=most),
            Contract.status == "active",
            Contract.channel != "oem",
            ~noticed,
        ]
        if milestone in AUTO_RENEW_SKIPS:
            conditions.append(manual_path_condition())
        rows = db.session.execute(
            select(Contract.id, Contract.end_date).where(*conditions).order_by(Contract.id)
        )
        due.extend((contract_id, end_date, milestone) for contract_id, end_date in rows)
    return due


def send_notices(today):
    """Stage the notices due on ``today``; returns a RunReport."""
    report = RunReport()
    announce(renewal_day, today=today)
    work = due_contracts(today)
    db.session.commit()
    for contract_id, end_date, milestone in work:
        try:
            notify(contract_id, milestone, today, report, end_date=end_date)
        except Exception:
            db.session.rollback()
            raise
    return report


def _load(contract_id):
    return db.session.scalar(
        select(Contract).where(Contract.id == contract_id).options(
            selectinload(Contract.lines).selectinload(ContractLine.product),
            selectinload(Contract.account).selectinload(Account.contacts),
            selectinload(Contract.price_list),
        )
    )


@dataclass
class NoticeDraft:
    """One contract's notice, computed and rendered, not yet stored."""

    contract_id: int
    number: str
    end_date: date
    quote: object
    links: list
    emails: list  # (contact id, address, locale, composed message)


def notify(contract_id, milestone, today, report, end_date=None):
    """One contract's notice; returns the ids of the staged emails. The quote, the PDFs
    and the emails are made in a reading transaction (no lock held while WeasyPrint
    works); then one short writing transaction stores the record, the quote, the links
    and the staged emails, or nothing.

    With ``end_date``, the notice is for that term only: a contract renewed (or deleted)
    since the notice was found due gets none.
    """
    with write_intent(False):
        try:
            draft = prepare_notice(contract_id, milestone, today, report, end_date)
        finally:
            db.session.rollback()  # ends the read; nothing was written
    if draft is None:
        return []
    with write_intent(True):
        return store_notice(draft, milestone, today, report)


def prepare_notice(contract_id, milestone, today, report, end_date=None):
    """The :class:`NoticeDraft` of a contract's due notice, or None (recorded in
    ``report``) when there is nothing to send."""
    contract = _load(contract_id)
    if contract is None or (end_date is not None and contract.end_date != end_date):
        report.skipped[contract.number if contract else str(contract_id)] = "not_due"
        return None
    number, end_date = contract.number, contract.end_date
    if _noticed(contract_id, end_date, milestone):
        report.skipped[number] = "duplicate"  # another run noticed this contract first
        return None
    try:
        quote = build_quote(contract, today)
    except RuleError as error:
        report.errors[number] = str(error)
        current_app.logger.warning("notice for %s not sent: %s", number, error)
        return None
    recipients = contract.renewal_contacts
    if milestone in LAPSED_MILESTONES and not quote.eligible:
        db.session.rollback()  # no reminder once it cannot be reinstated online
        report.skipped[number] = quote.reason or "not_eligible"
        return
    if quote.reason in NO_NOTICE or not recipients:
        report.skipped[number] = quote.reason or "no_recipients"
        return None
    draft = NoticeDraft(contract_id=contract.id, number=number, end_date=end_date,
                        quote=quote, links=[], emails=[])
    pdfs = {}
    # The account's other contracts due now (every recipient is a renewal contact).
    other_due = db.session.scalars(
        select(Contract).where(*others_to_renew_here(contract, quote.quote_date))
        .order_by(Contract.end_date, Contract.number)).all()
    for contact in recipients:
        if not deliverable(contact.email):
            report.errors[number] = f"contact {contact.id}: not an email address"
            return None
        locale = email_locale(contact.language, contract.account.country)
        link, token = new_link(contract, contact, purpose="notice")
        context = notice_context(contract, quote, milestone, contact, link, link_url(token),
                                 other_due)
        if locale not in pdfs:
            pdfs[locale] = quote_pdf(context, locale)
        draft.links.append(link)
        draft.emails.append((contact.id, contact.email, locale, compose(
            contact.email, "notice", context, locale,
            attachments=[(f"quote-{number}.pdf", pdfs[locale], "application/pdf")])))
    return draft


def _noticed(contract_id, end_date, milestone):
    return db.session.scalar(select(exists().where(
        NoticeRecord.contract_id == contract_id, NoticeRecord.end_date == end_date,
        NoticeRecord.milestone <= milestone)))


def store_notice(draft, milestone, today, report):
    """Store a prepared notice in one short transaction; a contract that changed since
    (renewed, cancelled) or that another run noticed meanwhile is skipped."""
    still = db.session.execute(select(Contract.end_date, Contract.status).where(
        Contract.id == draft.contract_id)).one_or_none()
    if still is None or tuple(still) != (draft.end_date, "active"):
        db.session.rollback()
        report.skipped[draft.number] = "changed"
        return []
    notice = NoticeRecord(contract_id=draft.contract_id, end_date=draft.end_date,
                          milestone=milestone, run_date=today, recipients=len(draft.emails))
    db.session.add(notice)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()  # another run noticed this contract first
        report.skipped[draft.number] = "duplicate"
        return []
    db.session.add(draft.quote)
    db.session.add_all(draft.links)
    db.session.flush()
    notice.quote_id = draft.quote.id
    staged = [stage_email(address, "notice", locale=locale, contract_id=draft.contract_id,
                          message=message, key=f"notice:{draft.contract_id}:"
                          f"{draft.end_date.isoformat()}:{milestone}:{contact_id}").id
              for contact_id, address, locale, message in draft.emails]
    db.session.commit()
    report.sent.append((draft.number, milestone, len(draft.emails)))
    return staged


def _options(quote):
    return [
        {
            "service_level": option.service_level,
            "level_name": level_label(option.service_level),
            "term_months": option.term_months,
            "term_start": option.term_start,
            "term_end": option.term_end,
            "total": option.total,
            "backdated_fee": option.backdated_fee,
            "reinstatement_fee": option.reinstatement_fee,
            "lapsed_days": option.lapsed_days,
            "within_cap": option.within_cap,
        }
        for option in quote.options()
    ]


def notice_context(contract, quote, milestone, contact, link, url, other_due=()):
    """What a notice says; ``other_due``: the account's other contracts to mention, with
    one link to renew them together."""
    options = _options(quote)
    current = next((o for o in options if o["service_level"] == contract.service_level
                    and o["term_months"] == contract.term_months), None)
    return {
        "contract": contract,
        "contact": contact,
        "milestone": milestone,
        "end_date": contract.end_date,
        "days_left": (contract.end_date - quote.quote_date).days,
        "lapsed": milestone in LAPSED_MILESTONES,
        "reinstate_until": contract.end_date + timedelta(
            days=int(current_app.config["REINSTATEMENT_MAX_LAPSE_DAYS"])),
        "products": quote_products(quote),
        "level_name": level_label(contract.service_level),
        "currency": quote.currency,
        "quote": quote,
        "current": current,
        "others": [o for o in options if o is not current],
        "eligible": quote.eligible,
        "reason_text": REASON_TEXTS.get(quote.reason) if not quote.eligible else None,
        "url": url,
        "other_due": other_due,
        "combined_url": url + "?to=contracts",
        "reference": link.reference,
        "email": contact.email,
        "desk_email": company().support_for(contract.account.country).email,
    }


def quote_pdf(context, locale):
    """The quote as a PDF, rendered from ``templates/notices/quote_pdf.html``."""
    return render_pdf("notices/quote_pdf.html", locale, **context)
