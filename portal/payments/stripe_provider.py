"""Stripe through the official SDK. The only place that knows Stripe's minor units.

``STRIPE_API_BASE`` points the SDK at a local emulator (localstripe) instead of Stripe.
"""
import json

import stripe

from portal import logs, money
from portal.markets.methods import all_methods
from portal.money import PAYMENT_CURRENCIES
from portal.payments.provider import (
    ACTION,
    CANCELED,
    FAILED,
    SUCCEEDED,
    WAITING,
    CardDeclined,
    PaymentProvider,
    PaymentNotFound,
    PaymentState,
    ProviderError,
    ProviderRefused,
    SignatureInvalid,
    WebhookEvent,
)

#: Stripe's zero-decimal currencies (its "Supported currencies" page): amounts in whole
#: units. Every other currency, HUF and TWD included, goes in hundredths, although the
#: portal prices HUF in whole forints.
STRIPE_ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
    "VUV", "XAF", "XOF", "XPF",
})


def stripe_digits(currency):
    """Decimals of ``currency`` in Stripe's ``amount`` fields."""
    return 0 if currency.upper() in STRIPE_ZERO_DECIMAL else 2


def to_stripe_amount(amount, currency):
    """``amount`` as the integer Stripe takes: JPY 402 -> 402, HUF 402 -> 40200."""
    return money.to_minor_units(amount, currency, stripe_digits(currency))


def from_stripe_amount(units, currency):
    return money.from_minor_units(units, currency, stripe_digits(currency))


#: Stripe's PaymentIntent status -> the portal's provider state.
STATES = {
    "succeeded": SUCCEEDED,
    "requires_action": ACTION,
    "processing": WAITING,
    "requires_confirmation": WAITING,
    "requires_capture": WAITING,
    "canceled": CANCELED,
}
#: Statuses in which a card may be attached and the intent confirmed.
CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
#: Statuses in which an intent can still be cancelled.
CANCELLABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


class StripeProvider(PaymentProvider):
    name = "stripe"
    signature_header = "Stripe-Signature"

    def __init__(self, secret_key, webhook_secret=None, api_base=None, *, timeouts=(3, 8),
                 retries=1):
        """``timeouts``: (connect, read) seconds of one HTTP call; ``retries``: how many
        times a call that failed on the network is repeated (the SDK sends an idempotency
        key with each POST, so a repeat never charges twice)."""
        if not secret_key:
            raise ProviderError("STRIPE_SECRET_KEY is not set")
        addresses = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(
            secret_key, base_addresses=addresses, max_network_retries=retries,
            http_client=stripe.RequestsClient(timeout=tuple(timeouts)))
        self.webhook_secret = webhook_secret
        self.emulated = bool(api_base)

    @classmethod
    def from_config(cls, config):
        """Built from ``STRIPE_*`` and the provider deadlines; None without a secret key."""
        if not config.get("STRIPE_SECRET_KEY"):
            return None
        return cls(config["STRIPE_SECRET_KEY"], config.get("STRIPE_WEBHOOK_SECRET"),
                   config.get("STRIPE_API_BASE"),
                   timeouts=(config["PROVIDER_CONNECT_TIMEOUT_SECONDS"],
                             config["PROVIDER_READ_TIMEOUT_SECONDS"]),
                   retries=config["PROVIDER_MAX_RETRIES"])
    @property
    def intents(self):
        return self.client.v1.payment_intents

    def supports(self, method_code, currency):
        """Card methods of the markets table, in any payment currency."""
        cards = {m.code for m in all_methods() if m.kind == "card"}
        return method_code in cards and currency in PAYMENT_CURRENCIES

    def start(self, request):
        with logs.about(order=request.order_reference, contract=request.contract_number):
            params = {
                "amount": to_stripe_amount(request.amount, request.currency),
                "currency": request.currency.lower(),
                "payment_method_types": ["card"],
                "metadata": {"order": request.order_reference,
                             "contract": request.contract_number},
            }
            if request.keep_card:  # kept for automatic renewal: a customer holds the card
                params["customer"] = self._customer(request)
                if not self.emulated:  # localstripe refuses setup_future_usage
                    params["setup_future_usage"] = "off_session"
            intent = self._call(self.intents.create, params=params,
                                options={"idempotency_key": request.idempotency_key})
            return self._state(intent)

    def _customer(self, request):
        customer = self._call(
            self.client.v1.customers.create,
            params={"metadata": {"contract": request.contract_number}},
            options={"idempotency_key": f"renewal-order-{request.order_reference}-customer"})
        return customer.id

    def keep_card(self, customer_ref, card_ref, *, idempotency_key=None):
        card = self._call(self.client.v1.payment_methods.retrieve, card_ref).to_dict()
        if card.get("customer") != customer_ref:  # with setup_future_usage Stripe attached it
            self._call(self.client.v1.payment_methods.attach, card_ref,
                       params={"customer": customer_ref},
                       options={"idempotency_key": idempotency_key} if idempotency_key
                       else {})

    def save_card_token(self, provider_ref, card_token):
        """Save the card of a Stripe.js token (``tok_...``) with the customer of the
        payment ``provider_ref``, as a customer source: the local emulator's Stripe.js
        makes tokens, and a tokenised card can only be saved through its token. Moves no
        money; raises CardDeclined when the card cannot be saved."""
        customer = _id(self._call(self.intents.retrieve, provider_ref).to_dict().get("customer"))
        if customer is None:
            raise ProviderError("the payment has no customer to keep the card with")
        self._call(self.client.v1.customers.payment_sources.create, customer,
                   params={"source": card_token})

    def charge_saved_card(self, request, customer_ref, card_ref):
        params = {
            "amount": to_stripe_amount(request.amount, request.currency),
            "currency": request.currency.lower(),
            "payment_method_types": ["card"],
            "customer": customer_ref,
            "payment_method": card_ref,
            "off_session": True,
            "confirm": True,
            "metadata": {"order": request.order_reference,
                         "contract": request.contract_number, "automatic_renewal": "1"},
        }
        try:
            with logs.provider_call(self.name, "PaymentIntentService.create",
                                    order=request.order_reference,
                                    contract=request.contract_number):
                intent = self.intents.create(
                    params=params, options={"idempotency_key": request.idempotency_key})
        except stripe.CardError as error:  # declined, or authentication_required
            intent_id = ((error.json_body or {}).get("error") or {}).get("payment_intent", {})
            intent_id = intent_id.get("id") if isinstance(intent_id, dict) else None
            if intent_id:
                return self._state(self._call(self.intents.retrieve, intent_id),
                                   error_code=error.code)
            return PaymentState(provider_ref="", state=FAILED, amount=request.amount,
                                currency=request.currency,
                                order_reference=request.order_reference,
                                error_code=error.code or "card_declined")
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        state = self._state(intent)
        if state.state == ACTION:  # the customer is not there to authenticate: not charged
            self.cancel(state.provider_ref)
            return PaymentState(provider_ref=state.provider_ref, state=FAILED,
                                amount=state.amount, currency=state.currency,
                                order_reference=state.order_reference,
                                error_code="authentication_required")
        return state

    def cancel(self, provider_ref):
        intent = self._call(self.intents.retrieve, provider_ref)
        if intent.status in CANCELLABLE:
            intent = self._call(self.intents.cancel, provider_ref)
        return self._state(intent)

    def confirm(self, provider_ref, card_ref=None):
        intent = self._call(self.intents.retrieve, provider_ref)
        if card_ref is None or intent.status not in CONFIRMABLE:
            return self._state(intent)
        self._call(self.intents.update, provider_ref, params={"payment_method": card_ref})
        try:
            with logs.provider_call(self.name, "PaymentIntentService.confirm",
                                    payment=provider_ref):
                intent = self.intents.confirm(provider_ref)
        except stripe.CardError:
            intent = self._call(self.intents.retrieve, provider_ref)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self._state(intent)

    def refund(self, provider_ref, amount=None, currency=None, *, idempotency_key):
        params = {"payment_intent": provider_ref}
        if amount is not None:
            params["amount"] = to_stripe_amount(amount, currency)
        refund = self._call(self.client.v1.refunds.create, params=params,
                            options={"idempotency_key": idempotency_key})
        return refund.id

    def handle_webhook(self, payload, signature):
        if not self.webhook_secret:
            raise ProviderError("STRIPE_WEBHOOK_SECRET is not set")
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature, self.webhook_secret,
                stripe.Webhook.DEFAULT_TOLERANCE)
            event = json.loads(payload)
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise SignatureInvalid(f"not a genuine Stripe event: {error}") from None
        if not isinstance(event, dict):  # signed, but not an event: an array, a number
            raise SignatureInvalid("an event must be a JSON object")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        obj = data.get("object") if isinstance(data.get("object"), dict) else {}
        ref = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
        event_id, event_type = event.get("id"), event.get("type")
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            raise SignatureInvalid("an event without an id or a type")
        return WebhookEvent(event_id=event_id[:128], type=event_type[:64],
                            provider_ref=ref if isinstance(ref, str) else None)

    # --- helpers ---

    def _call(self, method, *args, **kwargs):
        try:
            with logs.provider_call(self.name, _call_name(method),
                                    payment=args[0] if args and isinstance(args[0], str)
                                    else None):
                return method(*args, **kwargs)
        except stripe.CardError as error:
            raise CardDeclined(error.code or "card_declined") from error
        except stripe.StripeError as error:
            raise _provider_error(error) from error

    @staticmethod
    def _state(intent, error_code=None):
        intent = intent.to_dict()
        currency = str(intent["currency"]).upper()
        error = intent.get("last_payment_error") or None
        if isinstance(error, str):  # some emulators send it serialised
            error = json.loads(error)
        state = STATES.get(intent["status"])
        if state is None:  # requires_payment_method: a new intent, or a declined card
            state = FAILED if error or error_code else WAITING
        metadata = intent.get("metadata") or {}
        return PaymentState(
            provider_ref=intent["id"], state=state,
            amount=from_stripe_amount(intent["amount"], currency), currency=currency,
            client_secret=intent.get("client_secret"),
            order_reference=metadata.get("order"),
            error_code=(error or {}).get("code") or error_code,
            customer_ref=_id(intent.get("customer")),
            card_ref=_id(intent.get("payment_method")),
        )


def _provider_error(error):
    """The portal's error for a Stripe error: a refusal Stripe answered (a bad request, a
    key it does not accept) is permanent; anything else (no answer in time, a connection
    that failed, Stripe's own fault, an idempotent request still in flight) leaves what
    Stripe did unknown."""
    if isinstance(error, stripe.InvalidRequestError) and error.http_status == 404:
        return PaymentNotFound(str(error))
    if isinstance(error, (stripe.InvalidRequestError, stripe.AuthenticationError,
                          stripe.PermissionError, stripe.IdempotencyError)) and (
            error.http_status != 409):
        return ProviderRefused(str(error))
    return ProviderError(str(error))


def _call_name(method):
    """``PaymentIntentService.create``: the SDK method's class and name."""
    return getattr(method, "__qualname__", None) or getattr(method, "__name__", "call")


def _id(value):
    """An expandable Stripe field: an id, or the object with its id, or nothing."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None
