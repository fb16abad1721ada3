"""The payment provider interface. Stripe is one implementation (``stripe_provider``).

Each hook says whether it may move money, so a caller knows which ones need a lock,
an idempotency key and an audit line. Amounts cross this interface as ``Decimal`` with
an ISO currency code; only an implementation converts them to its own units.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal

from portal.errors import PortalError, ProviderError

#: Provider states reduced to what the portal acts on.
SUCCEEDED = "succeeded"
FAILED = "failed"  # declined or authentication failed: the customer may try again
ACTION = "requires_action"  # 3-D Secure in the customer's browser
WAITING = "waiting"  # no card yet, or the provider is still processing
CANCELED = "canceled"


class ProviderRefused(ProviderError):
    """The provider answered and refused the request (a bad request, a key it does not
    accept): nothing was done there, and asking again the same way will not help."""


class PaymentNotFound(ProviderRefused):
    """The provider has no such payment (a permanent answer: asking again will not help)."""


class CardDeclined(PortalError):
    """The provider declined the card (the customer can use another one)."""


class SignatureInvalid(PortalError):
    """A webhook whose signature the provider cannot verify, or that is not an event it
    sends; raised only by a provider's ``handle_webhook``."""


@dataclass(frozen=True)
class PaymentRequest:
    """What a provider needs to open or charge one payment attempt, as plain values read
    before the call: a provider is called with no database transaction open."""

    order_reference: str
    contract_number: str
    amount: Decimal
    currency: str
    #: Sent with every call that creates something at the provider: the same attempt
    #: asked twice (a timeout, a crash, a double click) gets the same payment back.
    idempotency_key: str
    #: The customer opted in to automatic renewal: the card is to be kept.
    keep_card: bool = False


@dataclass(frozen=True)
class PaymentState:
    """What the provider says about one payment, read from the provider itself."""

    provider_ref: str
    state: str
    amount: Decimal
    currency: str
    client_secret: str | None = None
    order_reference: str | None = None
    error_code: str | None = None
    #: The provider's customer and card (payment method) ids, never card data.
    customer_ref: str | None = None
    card_ref: str | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """A verified provider event: its id (for deduplication), type and payment id."""

    event_id: str
    type: str
    provider_ref: str | None


class PaymentProvider(ABC):
    name = "provider"
    #: The secret a webhook's signature is checked with; None: webhooks are refused.
    webhook_secret = None

    @abstractmethod
    def supports(self, method_code, currency):
        """Whether this provider takes ``method_code`` in ``currency``. Moves no money."""

    @abstractmethod
    def start(self, request):
        """Open a payment for a :class:`PaymentRequest` and return its
        :class:`PaymentState`. Moves no money by itself; idempotent on the request's
        ``idempotency_key``, so asking again returns the same payment."""

    @abstractmethod
    def cancel(self, provider_ref):
        """Cancel a payment that has not been paid, so it can never be charged; returns its
        :class:`PaymentState` afterwards (SUCCEEDED when it was paid meanwhile). Moves no
        money."""

    @abstractmethod
    def confirm(self, provider_ref, card_ref=None):
        """Re-read the payment from the provider; with ``card_ref``, first attach that card
        and confirm. With a card this MAY move money (it charges the card)."""

    def keep_card(self, customer_ref, card_ref, *, idempotency_key=None):
        """Save a card that just paid with the provider's customer for later off-session
        charges; asking again (the same ``idempotency_key``) changes nothing more. Moves
        no money; raises CardDeclined when the card cannot be kept."""
        raise ProviderRefused(f"{self.name} cannot keep cards")

    def save_card_token(self, provider_ref, card_token):
        """Save the card behind a browser-made token with the customer of the payment
        ``provider_ref``, before that payment is confirmed. Moves no money."""
        raise ProviderError(f"{self.name} cannot save cards from tokens")

    def charge_saved_card(self, request, customer_ref, card_ref):
        """Charge a saved card off-session (the customer is not there) for a
        :class:`PaymentRequest`. MOVES money. A decline or a card that needs the customer
        (3-D Secure) comes back as a FAILED state with its ``error_code``; a retry with the
        same ``idempotency_key`` never charges twice."""
        raise ProviderError(f"{self.name} cannot charge saved cards")

    @abstractmethod
    def refund(self, provider_ref, amount=None, currency=None, *, idempotency_key):
        """Return money for a payment (all of it when ``amount`` is None). MOVES money."""

    @abstractmethod
    def handle_webhook(self, payload, signature):
        """Verify an event's signature on the raw ``payload`` and return a
        :class:`WebhookEvent`. Moves no money; raises SignatureInvalid when it is not
        genuine."""
