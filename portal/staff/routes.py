"""The staff console under /staff/: thin views over ``portal.staff.services``."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address
from flask_babel import force_locale, gettext as _
from sqlalchemy import select

from portal.checkout.models import CHANGE_STATUSES, QuoteChangeRequest
from portal.audit.models import record
from portal.autorenew.optin import off_reason_counts, recent_off_comments
from portal.extensions import db
from portal.i18n import EMAIL_LOCALES
from portal.invoices.services import contract_document
from portal.mail.models import OutboxMessage
from portal.markets.models import MarketLaunch
from portal.orders.models import Refund
from portal.orders.offline import payments_to_return, record_offline_payment, return_payment
from portal.orders.services import PaymentRefused
from portal.partners import webhooks as partner_webhooks
from portal.payments.cards import provider
from portal.money import amount_string
from portal.selfservice.routes import pdf_response
from portal.staff import emails, services, throttle
from portal.staff.accounts import authenticate, normalise_email, now
from portal.staff.auth import current_staff, end_session, staff_required, start_session
from portal.staff.forms import (
    ActionForm,
    AnswerForm,
    CancelOrderForm,
    MarketLaunchForm,
    OfflinePaymentForm,
    RefundDoneForm,
    RefundForm,
    RegenerateQuoteForm,
    ReturnPaymentForm,
    SignInForm,
    StaffRoleForm,
    StaffUserForm,
)
from portal.staff.models import StaffUser
from portal.timeutil import utc_today
from portal.web import error_page_hook, rate_limited

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.errorhandler(403)
def not_allowed(_error):
    """The console's own page for a signed-in user whose role does not reach a page."""
    return render_template("staff/not_allowed.html"), 403


def staff_not_found(status, _message_key):
    """A wrong address under /staff/ (or a contract that does not exist) answers the
    console's own not-found page, in English like the console, not the customers' page."""
    if status != 404:
        return None
    with force_locale("en"):  # no view matched: the blueprint's context is not applied
        return render_template("staff/not_found.html", **console_context())


@bp.record_once
def _register_error_page_hook(state):
    error_page_hook(state.app, bp.url_prefix, staff_not_found)
SIGN_IN_LIMIT = "10 per minute"


def _actor():
    return current_staff().email


def _safe_next(target):
    """Only a path inside the console, never another site."""
    if target and target.startswith("/staff/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("staff.search")


def _contract_or_404(number):
    contract = services.find_contract(number)
    if contract is None:
        abort(404)
    return contract


def _contract_url(contract):
    return url_for("staff.contract", number=contract.number)


def _to_contract(contract):
    return redirect(_contract_url(contract), code=303)


# --- signing in and out ---


@bp.route("/sign-in", methods=["GET", "POST"])
@rate_limited(SIGN_IN_LIMIT, methods=["POST"])
def sign_in():
    form = SignInForm()
    if form.validate_on_submit():
        email, client = normalise_email(form.email.data), get_remote_address()
        user = None
        if not throttle.held_back(email, client):
            user = authenticate(email, form.password.data)
        if user is not None:
            record(user.email, "staff.sign_in", user.email)
        db.session.commit()  # failed attempts count even when sign-in fails
        if user is not None:
            throttle.clear_failures(email, client)
            start_session(user)
            return redirect(_safe_next(request.args.get("next")), code=303)
        throttle.count_failure(email, client)
        # i18n: one message for an unknown email, a wrong password and a held-back client.
        flash(_("Sign-in failed. Check your email and password; after 5 failed attempts "
                "from this computer, wait 15 minutes before trying again."), "error")
        return render_template("staff/sign_in.html", form=form), 401
    return render_template("staff/sign_in.html", form=form), 400 if form.is_submitted() else 200


@bp.post("/sign-out")
def sign_out():
    user = current_staff()
    if ActionForm().validate_on_submit() and user is not None:
        record(user.email, "staff.sign_out", user.email)
        end_session(user)  # every copy of this session's cookie stops working
        db.session.commit()
    return redirect(url_for("staff.sign_in"), code=303)


# --- search and the contract page ---


@bp.get("/")
@staff_required()
def search():
    query = request.args.get("q", "")[:200]
    results = services.search_contracts(query) if query.strip() else None
    return render_template("staff/search.html", query=query, results=results)


@bp.get("/contracts/<number>")
@staff_required()
def contract(number):
    item = _contract_or_404(number)
    data = services.overview(item)
    quantities = {line.product_code: line.quantity for line in item.lines}
    awaiting_or_paid = [o for o in data.orders if o.status in ("awaiting_payment", "paid")]
    payment_form = OfflinePaymentForm(
        order=awaiting_or_paid[0].payer.reference if awaiting_or_paid else "",
        currency=awaiting_or_paid[0].pay_currency if awaiting_or_paid else item.currency,
        received_on=utc_today(),
    )
    return render_template(
        "staff/contract.html", contract=item, data=data, quantities=quantities,
        renewal_state=services.contract_renewal_state(item, utc_today()),
        regenerate_form=RegenerateQuoteForm(), payment_form=payment_form,
        cancel_form=CancelOrderForm(formdata=None),
        action_form=ActionForm(), today=utc_today(),
    )


@bp.get("/contracts/<number>/documents/<document_number>.pdf")
@staff_required()
def document(number, document_number):
    """An invoice or credit note of the contract; ``?lang=`` one of the email locales."""
    item = _contract_or_404(number)
    found = contract_document(item.id, document_number[:80])
    if found is None:
        abort(404)
    locale = request.args.get("lang", "en")
    return pdf_response(found, locale if locale in EMAIL_LOCALES else "en")


def _perform(action, success, target, keep_on_refusal=False):
    """Run one staff action: commit and flash ``success(result)``, or on a refusal undo it
    and flash why. ``keep_on_refusal`` commits what the refusal itself recorded."""
    try:
        result = action()
    except (services.ConsoleError, PaymentRefused) as error:
        if keep_on_refusal:
            db.session.commit()
        else:
            db.session.rollback()
        flash(_("Not done: %(error)s", error=str(error)), "error")
    else:
        db.session.commit()
        flash(success(result), "success")
    return redirect(target, code=303)


def _form_problems(form):
    return "; ".join(f"{form[name].label.text}: {messages[0]}"
                     for name, messages in form.errors.items() if name in form)


def _submitted_or_400(form):
    if not form.validate_on_submit():
        abort(400)


@bp.post("/contracts/<number>/quote")
@staff_required()
def regenerate_quote(number):
    item = _contract_or_404(number)
    form = RegenerateQuoteForm()
    _submitted_or_400(form)

    def regenerate():
        quantities = services.parse_quantities(item, request.form)
        if quantities == {line.product_code: line.quantity for line in item.lines}:
            quantities = None  # the contract's own lines
        quote = services.regenerate_quote(item, utc_today(), _actor(), quantities)
        contact = item.primary_contact if form.notify.data else None
        if contact is not None:
            link, token = services.issue_staff_link(item, contact, _actor())
            emails.send_regenerated_quote(quote, link, token, _actor())
        return contact

    def issued(contact):
        if contact is None:
            return _("New quote issued; no email was sent.")
        return _("New quote issued and emailed to %(email)s with a fresh link.",
                 email=contact.email)

    return _perform(regenerate, issued, _contract_url(item))


@bp.post("/contracts/<number>/payment")
@staff_required()
def record_payment(number):
    item = _contract_or_404(number)
    form = OfflinePaymentForm()
    if not form.validate_on_submit():
        flash(_("Not done: %(error)s", error=_form_problems(form) or _("invalid form")), "error")
        return _to_contract(item)

    def recorded(result):
        order, renewed = result
        if renewed:
            return _("Payment recorded; the contract now runs until %(date)s.",
                     date=item.end_date.isoformat())
        return _("This payment was already recorded for order %(order)s; nothing changed.",
                 order=order.reference)

    # A refused payment keeps its audit entry: a mismatch alerts the desk.
    return _perform(lambda: record_offline_payment(
        form.order.data, form.amount.data, form.currency.data, form.received_on.data,
        form.reference.data, actor=_actor(), today=utc_today(), contract=item),
        recorded, _contract_url(item), keep_on_refusal=True)


@bp.post("/contracts/<number>/orders/<reference>/cancel")
@staff_required()
def cancel_order(number, reference):
    """Cancel an order awaiting an offline payment; the reason is required and kept."""
    item = _contract_or_404(number)
    form = CancelOrderForm()
    if not form.validate_on_submit():
        flash(_("Not done: %(error)s", error=_form_problems(form) or _("invalid form")), "error")
        return _to_contract(item)
    return _perform(lambda: services.cancel_order(item, reference[:32], form.reason.data,
                                                  _actor()),
                    lambda order: _("Order %(order)s cancelled.", order=order.reference),
                    _contract_url(item))


def _link_or_404(number, reference):
    item = _contract_or_404(number)
    link = services.find_link(item, reference)
    if link is None:
        abort(404)
    _submitted_or_400(ActionForm())
    return item, link


@bp.post("/contracts/<number>/links/<reference>/revoke")
@staff_required()
def revoke_link(number, reference):
    item, link = _link_or_404(number, reference)
    return _perform(lambda: services.revoke_link(link, _actor()),
                    lambda _result: _("Link %(reference)s revoked.", reference=link.reference),
                    _contract_url(item))


@bp.post("/contracts/<number>/links/<reference>/resend")
@staff_required()
def resend_link(number, reference):
    """A fresh link for the same contact, emailed with the quote in force."""
    item, old = _link_or_404(number, reference)

    def resend():
        quote = services.quote_in_force(item, utc_today(), _actor())
        link, token = services.issue_staff_link(item, old.contact, _actor(), purpose="resend")
        emails.send_regenerated_quote(quote, link, token, _actor())

    return _perform(resend, lambda _result: _("A fresh link was emailed to %(email)s.",
                                              email=old.contact.email), _contract_url(item))


# --- admin: staff users and market data ---


@bp.route("/admin/staff", methods=["GET", "POST"])
@staff_required("admin")
def staff_users():
    form = StaffUserForm()
    if form.validate_on_submit():
        return _perform(lambda: services.create_staff(form.email.data, form.password.data,
                                                      form.role.data, _actor()),
                        lambda user: _("Staff user %(email)s added.", email=user.email),
                        url_for("staff.staff_users"))
    status = 400 if form.is_submitted() else 200
    users = db.session.scalars(select(StaffUser).order_by(StaffUser.email)).all()
    return render_template("staff/staff_users.html", form=form, users=users,
                           role_form=StaffRoleForm), status


@bp.post("/admin/staff/<int(max=2147483647):user_id>")
@staff_required("admin")
def update_staff_user(user_id):
    user = db.get_or_404(StaffUser, user_id)
    form = StaffRoleForm()
    _submitted_or_400(form)
    return _perform(lambda: services.update_staff(user, form.role.data, form.active.data,
                                                  _actor()),
                    lambda _result: _("Staff user %(email)s updated.", email=user.email),
                    url_for("staff.staff_users"))


@bp.route("/admin/markets", methods=["GET", "POST"])
@staff_required("admin")
def markets():
    form = MarketLaunchForm()
    if form.validate_on_submit():
        return _perform(lambda: services.save_market_launch(
            form.country.data, form.launch_date.data, (form.market_group.data or "").strip(), _actor()),
            lambda row: _("Launch date of %(country)s saved.", country=row.country),
            url_for("staff.markets"))
    status = 400 if form.is_submitted() else 200
    launches = db.session.scalars(select(MarketLaunch).order_by(MarketLaunch.country)).all()
    return render_template("staff/markets.html", form=form, launches=launches), status


# --- quote change requests from customers ---


@bp.get("/requests")
@staff_required()
def requests():
    status = request.args.get("status", "open")
    if status not in CHANGE_STATUSES:
        status = "open"
    items = services.change_requests(status)
    return render_template("staff/requests.html", items=items, status=status,
                           statuses=CHANGE_STATUSES, form_class=AnswerForm)


@bp.post("/requests/<int(max=2147483647):request_id>/answer")
@staff_required()
def answer_request(request_id):
    item = db.get_or_404(QuoteChangeRequest, request_id)
    form = AnswerForm()
    if not form.validate_on_submit():
        flash(_("Not done: %(error)s", error=_form_problems(form) or _("invalid form")), "error")
        return redirect(url_for("staff.requests"), code=303)

    def answer():
        services.answer_change_request(item, form.answer.data.strip(), _actor())
        if item.contact is not None:
            emails.send_request_answer(item, _actor())

    return _perform(answer, lambda _result: _("Answer sent for contract %(number)s.",
                                              number=item.contract.number),
                    url_for("staff.requests"))


# --- automatic renewal turned off ---


@bp.get("/auto-renewal/reasons")
@staff_required()
def auto_renew_reasons():
    """Why customers turned automatic renewal off: counts per reason, latest comments."""
    return render_template("staff/auto_renew_reasons.html", counts=off_reason_counts(),
                           comments=recent_off_comments())


# --- refunds ---


@bp.get("/refunds")
@staff_required()
def refunds():
    return render_template("staff/refunds.html", refunds=services.open_refunds(),
                           done_form=RefundDoneForm, to_return=payments_to_return(),
                           return_form=ReturnPaymentForm)


@bp.get("/contracts/<number>/refund")
@staff_required()
def refund(number):
    item = _contract_or_404(number)
    order, decision, shown = services.refund_offer(item, utc_today())
    return render_template("staff/refund.html", contract=item, order=order, decision=decision,
                           form=RefundForm(formdata=None, amount_shown=shown))


@bp.post("/contracts/<number>/refund")
@staff_required()
def issue_refund(number):
    item = _contract_or_404(number)
    form = RefundForm()
    if not form.validate_on_submit():
        flash(_("Not done: %(error)s", error=_form_problems(form) or _("invalid form")), "error")
        return redirect(url_for("staff.refund", number=item.number), code=303)
    return _perform(
        lambda: services.issue_refund(item, utc_today(), form.amount_shown.data, _actor(),
                                      provider()),
        lambda refund: _("Refund of %(amount)s %(currency)s issued; the contract now ends on "
                         "%(date)s.", amount=amount_string(refund.amount, refund.currency),
                         currency=refund.currency, date=refund.restored_end_date.isoformat()),
        url_for("staff.refund", number=item.number))


@bp.post("/refunds/<int(max=2147483647):refund_id>/done")
@staff_required()
def complete_refund(refund_id):
    item = db.get_or_404(Refund, refund_id)
    form = RefundDoneForm()
    if not form.validate_on_submit():
        flash(_("Not done: %(error)s", error=_form_problems(form) or _("invalid form")), "error")
        return redirect(url_for("staff.refunds"), code=303)
    return _perform(lambda: services.complete_refund(item, form.reference.data, _actor()),
                    lambda _result: _("Refund marked as paid back."), url_for("staff.refunds"))


@bp.post("/payments/<int(max=2147483647):payment_id>/returned")
@staff_required()
def return_closed_order_payment(payment_id):
    """Money that came for a cancelled or lapsed order was paid back, with a reason."""
    form = ReturnPaymentForm()
    if not form.validate_on_submit():
        flash(_("Not done: %(error)s", error=_form_problems(form) or _("invalid form")), "error")
        return redirect(url_for("staff.refunds"), code=303)
    return _perform(lambda: return_payment(payment_id, form.reference.data, form.reason.data,
                                           actor=_actor(), today=utc_today()),
                    lambda returned: _("Payment %(payment)s marked as paid back.",
                                       payment=returned.payment.provider_ref),
                    url_for("staff.refunds"))


# --- the outbox ---


@bp.get("/outbox")
@staff_required()
def outbox():
    view = request.args.get("view", "failed")
    if view not in services.OUTBOX_VIEWS:
        view = "failed"
    return render_template("staff/outbox.html", messages=services.outbox_messages(view),
                           view=view, views=list(services.OUTBOX_VIEWS), action_form=ActionForm())


@bp.post("/outbox/<int(max=2147483647):message_id>/retry")
@staff_required()
def retry_email(message_id):
    message = db.get_or_404(OutboxMessage, message_id)
    _submitted_or_400(ActionForm())
    return _perform(lambda: services.retry_message(message, _actor(), now()),
                    lambda _result: _("The email to %(email)s will be sent again with the next "
                                      "delivery run.", email=message.to),
                    url_for("staff.outbox"))


# --- partner webhooks ---


@bp.get("/webhooks")
@staff_required()
def webhooks():
    return render_template("staff/webhooks.html", endpoints=partner_webhooks.endpoint_overview(),
                           attempts=partner_webhooks.recent_attempts())


@bp.context_processor
def console_context():
    return {"current_staff": current_staff, "amount_string": amount_string}
