"""Refund and automatic-renewal pages of the renewal link's session. Thin views: the
logic is in ``portal.orders.refunds`` and ``portal.autorenew.optin``."""
from flask import Blueprint, abort, g, redirect, render_template, url_for
from flask_babel import get_locale

from portal.checkout import routes as checkout
from portal.extensions import db
from portal.money import amount_string
from portal.autorenew.optin import is_on, opt_in_failed, turn_off
from portal.i18n import EMAIL_LOCALES
from portal.invoices.services import contract_document, document_pdf, documents_of_contract
from portal.orders.refunds import (
    RefundRefused,
    refund_offer,
    refund_page,
    refund_renewal,
    shown_amount,
)
from portal.payments.cards import provider
from portal.payments.provider import CardDeclined, ProviderError
from portal.selfservice.forms import AutoRenewOffForm, ConfirmForm
from portal.selfservice.labels import refund_message
from portal.timeutil import utc_today

bp = Blueprint("selfservice", __name__)
bp.before_request(checkout.load_link)
bp.context_processor(checkout.help_link)


@bp.app_context_processor
def auto_renew_state():
    """``auto_renew_on(contract)`` for every page and email that shows a contract, and
    ``billing_documents(contract)``: its invoices and credit notes."""
    return {"auto_renew_on": is_on, "auto_renew_failed": opt_in_failed,
            "billing_documents": lambda c: documents_of_contract(c.id)}


def pdf_response(document, locale):
    """The invoice or credit note as a PDF download named as in the emails."""
    from flask import Response

    return Response(document_pdf(document, locale), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{document.filename}"',
        "Cache-Control": "private, no-store"})


@bp.get("/renewal/documents/<number>.pdf")
@checkout.form_limited
@checkout.link_required
def document(number):
    """One of the link's contract's invoices or credit notes, in the page language when
    it is an email language (else English)."""
    found = contract_document(g.link.contract.id, number[:80])
    if found is None:
        abort(404)
    locale = str(get_locale())
    return pdf_response(found, locale if locale in EMAIL_LOCALES else "en")


def _render_refund(error=None, status=200):
    contract = g.link.contract
    page = refund_page(contract, utc_today())
    order, decision = page.order, page.decision
    reason = "nothing_to_refund" if decision is None else (
        None if decision.refundable else decision.rule)
    return render_template(
        "selfservice/refund.html", contract=contract, order=order, decision=decision,
        form=ConfirmForm(formdata=None, amount_shown=shown_amount(order, decision)),
        charged_on=page.charged_on, refund=page.current_refund,
        earlier_refunds=page.earlier_refunds,
        reason=refund_message(reason) if reason else None,
        error=refund_message(error) if error else None, amount_string=amount_string,
    ), status


def _refunded_already(contract):
    """A second click or another tab: the refund asked for is the contract's state now."""
    return refund_page(contract, utc_today()).current_refund is not None


@bp.get("/renewal/refund")
@checkout.link_required
def refund():
    """What a refund would give back today; nothing changes until the customer confirms."""
    return _render_refund()


@bp.post("/renewal/refund")
@checkout.form_limited
@checkout.link_required
def confirm_refund():
    form = ConfirmForm()
    contract = g.link.contract
    if not form.validate_on_submit():
        return _render_refund(error="amount_changed", status=400)
    order, decision = refund_offer(contract, utc_today())
    if decision is None or not decision.refundable or (
            form.amount_shown.data != shown_amount(order, decision)):
        if _refunded_already(contract):
            return redirect(url_for("selfservice.refund"), code=303)
        # A refusal is said by the page itself; a refundable amount differs from the one shown.
        return _render_refund(error="amount_changed" if decision is not None
                              and decision.refundable else None, status=409)
    try:
        refund_renewal(contract.id, utc_today(), f"customer:{g.link.contact_id}",
                       expected_amount=decision.amount, card_provider=_card_provider())
    except RefundRefused as error:
        db.session.rollback()
        if _refunded_already(g.link.contract):
            return redirect(url_for("selfservice.refund"), code=303)
        return _render_refund(error=error.code, status=409)
    except (ProviderError, CardDeclined):
        db.session.rollback()
        return _render_refund(error="card_unavailable", status=503)
    db.session.commit()
    return redirect(url_for("selfservice.refund"), code=303)


def _card_provider():
    return provider()


# --- automatic renewal ---


@bp.get("/renewal/auto-renew")
@checkout.link_required
def auto_renew():
    """Whether automatic renewal is on, with a button that turns it off (the email's
    link opens this page: a mail scanner opening it changes nothing)."""
    return render_template("selfservice/auto_renew.html", contract=g.link.contract,
                           form=AutoRenewOffForm(formdata=None), turned_off=False)


@bp.post("/renewal/auto-renew")
@checkout.form_limited
@checkout.link_required
def turn_auto_renew_off():
    form = AutoRenewOffForm()
    if not form.validate_on_submit():
        return render_template("selfservice/auto_renew.html", contract=g.link.contract,
                               form=form, turned_off=False), 400
    turn_off(g.link.contract, f"customer:{g.link.contact_id}", reason=form.reason.data,
             comment=form.comment.data)
    db.session.commit()
    return render_template("selfservice/auto_renew.html", contract=g.link.contract,
                           form=None, turned_off=True)
