"""The page that renews several contracts of an account in one order ("Orders with
several contracts" in docs/rules.md), on the checkout's blueprint. Thin views: the logic
lives in ``combined``."""
from flask import g, redirect, render_template, request, session, url_for

from portal.checkout import billing, combined, emails, routes
from portal.checkout.forms import CombinedOrderForm
from portal.checkout.instructions import is_offline
from portal.checkout.labels import error_message, method_label, reason_label
from portal.checkout.routes import CARD_PAYMENT_PATH, bp
from portal.extensions import commit_writes, db
from portal.orders.services import OrderError
from portal.payments import attempts
from portal.timeutil import utc_today

#: At most this many contracts are read from one combined order request.
MAX_CONTRACTS = 500


def _combined_request(values):
    """``(chosen contract ids, {id: "level|months"}, junk)`` from the request values; a
    value that is no contract id or option is ignored and counted in ``junk``."""
    chosen, choices, junk = set(), {}, 0
    for value in values.getlist("contract")[:MAX_CONTRACTS]:
        if value.isdigit() and len(value) < 12:
            chosen.add(int(value))
        else:
            junk += 1
    for key in list(values.keys())[:MAX_CONTRACTS * 2]:
        number = key.removeprefix("option-")
        if key.startswith("option-") and number.isdigit() and len(number) < 12:
            choices[int(number)] = values.get(key, "")[:80]
    return chosen, choices, junk


def _combined_form(page, formdata=None, draft=None):
    """``draft``: what the visitor chose before updating the amounts (``take_draft``)."""
    form = CombinedOrderForm(formdata=formdata, data={
        "pay_currency": page.pay_currency, "amount_shown": page.amount_shown,
        "payment_method": page.methods[0].code if len(page.methods) == 1 else None,
        **billing.defaults(page.link.contract), **(draft or {})})
    form.set_choices([(code, code) for code in page.pay_currencies],
                     [(m.code, method_label(m.code)) for m in page.methods])
    return form


def _render_combined(page, form=None, errors=(), status=200):
    errors = [error_message(code) for code in dict.fromkeys((*page.errors, *errors))]
    return render_template("checkout/contracts.html", page=page, errors=errors,
                           form=form or _combined_form(page), reason_label=reason_label,
                           choice_value=combined.choice_value), status


def _combined_page(today, values, default_all=False, strict=True):
    """``strict``: a form posted now; else an address (Back after paying, a bookmark), whose
    contracts that are no longer due or addable are shown as they are, not as errors."""
    chosen, choices, junk = _combined_request(values)
    page = combined.combined_page(g.link, today,
                                  chosen="all" if default_all and not chosen else chosen,
                                  choices=choices, pay_currency=values.get("pay_currency"),
                                  strict=strict)
    if junk or (strict and chosen - {row.contract.id for row in page.rows}):
        page.errors.append("invalid")  # not a contract this page offers
    return page


@bp.get("/renewal/contracts")
@routes.link_required
def contracts():
    """The account's contracts that are due, to renew together: every one that can be
    renewed online is in the order at first; ``?contract=<id>&option-<id>=level|months
    &pay_currency=`` shows another choice."""
    page = _combined_page(utc_today(), request.args, default_all=True, strict=False)
    draft = routes.take_draft()
    draft.pop("auto_renew", None)  # chosen per contract on its own page
    response = _render_combined(page, _combined_form(page, draft=draft) if draft else None)
    commit_writes()  # keep freshly issued quotes: the order is placed against them
    return response


@bp.post("/renewal/contracts")
@routes.form_limited
@routes.link_required
def place_combined_order():
    """Place one order for the contracts ticked, each with its option, in one currency,
    paid with one payment; a changed total is shown again, not charged."""
    posted = request.form
    today = utc_today()
    page = _combined_page(today, posted)
    form = _combined_form(page, formdata=posted)  # the method and billing details stay
    if "place" not in posted:  # "Update amounts": shown by a page a reload does not re-post
        db.session.commit()
        if page.errors:
            return _render_combined(page, form, status=400)
        if not page.chosen:  # the page without contracts (its address would show them all)
            return _render_combined(page, form)
        routes.keep_draft(posted)
        return redirect(routes.combined_url(
            [row.contract.id for row in page.chosen],
            {row.contract.id: combined.choice_value(row.option)
             for row in page.rows if row.option is not None}, page.pay_currency), code=303)
    if not page.chosen:
        db.session.commit()
        return _render_combined(page, form, errors=["nothing_chosen"], status=400)
    if not form.validate() or page.errors:
        db.session.commit()
        return _render_combined(page, form, errors=[] if page.errors else ["invalid"],
                                status=400)
    if form.amount_shown.data != page.amount_shown:
        db.session.commit()
        return _render_combined(page, form, errors=["amount_changed"], status=409)
    tax_id = form.tax_id.data and billing.valid_tax_id(form.tax_id.data,
                                                       page.link.contract.account.country)
    if form.tax_id.data and tax_id is None:
        db.session.commit()
        return _render_combined(page, form, errors=["tax_id_invalid"], status=400)
    method = form.payment_method.data
    try:
        payer, placed_now = combined.place(g.link, page, method, today)
    except OrderError as error:
        db.session.rollback()
        return _render_combined(_combined_page(today, posted), errors=[error.code],
                                status=409)
    for order in payer.paid_together:
        billing.apply(order, {"po_number": form.po_number.data, "tax_id": tax_id,
                              "billing_address": form.billing_address.data})
    session["order_id"] = payer.id
    if not is_offline(method):
        state = attempts.start_card_payment(payer)
        if state is None:  # the card provider is unavailable
            db.session.rollback()
            return _render_combined(_combined_page(today, posted),
                                    errors=["card_unavailable"], status=503)
        db.session.commit()
        return redirect(request.script_root + CARD_PAYMENT_PATH, code=303)
    if placed_now:
        emails.send_order_confirmation(payer, g.link)
    db.session.commit()
    return redirect(url_for("checkout.confirmation"), code=303)
