"""Card payment pages and the Stripe webhook. Thin views: the logic is in ``attempts``,
``cards`` and ``webhooks``."""
import logging
import re
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import refresh

from portal.checkout.instructions import is_offline
from portal.checkout.services import help_mailto, link_order, usable_link
from portal.errors import PortalError
from portal.extensions import db
from portal.money import amount_string
from portal.payments import attempts, cards, registry, webhooks
from portal.payments.provider import ACTION, SUCCEEDED, ProviderError, SignatureInvalid
from portal.timeutil import utc_today
from portal.web import csrf, rate_limited, writes

bp = Blueprint("payments", __name__)
log = logging.getLogger(__name__)

PAY_LIMIT = "30 per minute;300 per hour"
REAL_STRIPE_JS = "https://js.stripe.com/v3/"
#: A provider id of a card (never card data): ``pm_...`` or the emulator's ``card_...``.
CARD_REF = re.compile(r"^(pm|card)_[A-Za-z0-9]{1,100}$")
#: The emulator's Stripe.js token a card was made from (``tok_...``).
CARD_TOKEN = re.compile(r"^tok_[A-Za-z0-9]{1,100}$")


def stripe_js_url(config):
    base = config.get("STRIPE_API_BASE")
    return f"{base.rstrip('/')}/js.stripe.com/v3/" if base else REAL_STRIPE_JS


@bp.record_once
def allow_emulator_origin(state):
    """With a local emulator, the CSP allows its origin for Stripe.js and its API."""
    config = state.app.config
    if config.get("STRIPE_API_BASE"):
        parts = urlsplit(config["STRIPE_API_BASE"])
        origin = f"{parts.scheme}://{parts.netloc}"
        config.setdefault("STRIPE_JS_ORIGIN", origin)
        config.setdefault("STRIPE_API_ORIGIN", origin)


@bp.app_context_processor
def card_checkout():
    """What a page needs to take a card with Stripe.js, or None without card payments."""
    config = current_app.config
    if not config.get("STRIPE_SECRET_KEY"):
        return {"card_checkout": None}
    return {"card_checkout": {
        "publishable_key": config.get("STRIPE_PUBLISHABLE_KEY", ""),
        "stripe_js": stripe_js_url(config), "emulated": bool(config.get("STRIPE_API_BASE")),
    }}


@bp.before_request
def load_link():
    if request.endpoint == "payments.webhook":
        return
    g.link = usable_link(session.get("link_id"), utc_today())
    g.contact_language = g.link.contact.language if g.link is not None else None
    refresh()


@bp.context_processor
def help_link():
    link = g.get("link")
    return {"help_mailto": help_mailto(link) if link is not None else None,
            "amount_string": amount_string}


def card_order_required(view):
    """The visitor's link and its card order; anything else goes back to the checkout."""

    @wraps(view)
    def wrapper():
        if g.link is None:
            return render_template("checkout/no_session.html"), 403
        order = link_order(g.link, session.get("order_id"))
        if order is None or is_offline(order.method):
            return redirect(url_for("checkout.renewal"), code=303)
        if order.status == "paid":
            return redirect(url_for("checkout.confirmation"), code=303)
        if order.status not in cards.UNSETTLED:
            return redirect(url_for("checkout.renewal"), code=303)
        return view(order)

    return wrapper


def _unavailable():
    return render_template("payments/unavailable.html"), 503


@bp.get("/renewal/pay")
@rate_limited(PAY_LIMIT)
@card_order_required
@writes  # opens or reuses the order's payment attempt
def pay(order):
    """The card form. Opening it again reuses the order's payment; after a decline it
    opens a new attempt."""
    declined = order.status == "failed"
    state = attempts.start_card_payment(order)
    db.session.commit()
    if state is None:
        return _unavailable()
    if state.state == SUCCEEDED:
        return redirect(url_for("payments.pay_return"), code=303)
    return render_template(
        "payments/pay.html", order=order, client_secret=state.client_secret,
        needs_action=state.state == ACTION, declined=declined,
    )


@bp.post("/renewal/pay/card")
@rate_limited(PAY_LIMIT)
@card_order_required
def pay_card(order):
    """Confirm with a card the browser registered at the emulator. Only with the local
    emulator, whose Stripe.js cannot attach a card to a PaymentIntent by itself."""
    card_ref = request.form.get("card", "")
    card_token = request.form.get("token") or None
    if (not current_app.config.get("STRIPE_API_BASE") or not CARD_REF.match(card_ref)
            or (card_token is not None and not CARD_TOKEN.match(card_token))):
        return jsonify(error="bad_request"), 400
    try:
        state = cards.pay_with_card(order, card_ref, card_token)
    except ProviderError:
        db.session.rollback()
        return jsonify(error="unavailable"), 503
    db.session.commit()
    if state is None:
        return jsonify(next=url_for("payments.pay_return"))
    return jsonify(status=state.state, next=url_for("payments.pay_return"))


@bp.get("/renewal/pay/return")
@rate_limited(PAY_LIMIT)
@card_order_required
@writes  # settles what the provider says, asking it once
def pay_return(order):
    """Where the browser lands after paying: the outcome is read from the provider."""
    try:
        state = cards.refresh_payment(order)
    except ProviderError:
        db.session.rollback()
        return _unavailable()
    db.session.commit()
    if order.status == "paid":
        return redirect(url_for("checkout.confirmation"), code=303)
    if order.status == "failed":
        return render_template("payments/declined.html", order=order), 402
    if state is not None and state.state == SUCCEEDED:  # paid, but not as the order says
        return render_template("payments/review.html", order=order), 409
    return redirect(url_for("payments.pay"), code=303)  # not paid yet: the card form


@bp.post("/<provider_name>/webhook")
@csrf.exempt
def webhook(provider_name):
    """A provider's event (Stripe's at ``/stripe/webhook``)."""
    if provider_name not in registry.names():
        abort(404)
    payload = request.get_data(cache=False)
    try:
        outcome = webhooks.handle_webhook(
            payload, request.headers.get(registry.SIGNATURE_HEADERS[provider_name]),
            provider_name)
    except webhooks.WebhookRefused:
        log.warning("webhook refused: card payments or the signing secret are not set")
        return jsonify(error="webhooks_not_configured"), 503
    except SignatureInvalid as error:
        db.session.rollback()
        log.warning("webhook with a bad signature: %s", error)
        return jsonify(error="bad_signature"), 400
    except ProviderError:
        db.session.rollback()
        log.exception("webhook: the provider could not be reached")
        return jsonify(error="provider_unavailable"), 502  # the provider will retry
    except PortalError:
        # A genuine event the portal could not act on (a rule or an order refused it):
        # nothing is kept, not even the event id, so the provider's retry is processed.
        db.session.rollback()
        log.exception("webhook event not processed")
        return jsonify(error="not_processed"), 422
    db.session.commit()
    return jsonify(outcome=outcome)
