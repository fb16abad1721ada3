"""Payment providers found by name. Each provider registers a factory that builds it from
the app's configuration (None when it is not configured); the app keeps one instance of
each. Stripe is registered as ``stripe``; money that arrives outside a provider (bank
transfer, cheque) is recorded by staff as ``OFFLINE`` and needs no provider."""
from flask import current_app

from portal.errors import ProviderError
from portal.payments.stripe_provider import StripeProvider

#: name -> factory(config) -> provider, or None when it is not configured
_FACTORIES = {}
#: name -> the request header its webhooks carry their signature in
SIGNATURE_HEADERS = {}
#: Where the app keeps the providers it built (``app.extensions``).
CACHE = "payments_provider"


def register(name, factory, signature_header):
    _FACTORIES[name] = factory
    SIGNATURE_HEADERS[name] = signature_header


def names():
    return tuple(_FACTORIES)


def provider(name):
    """The configured provider called ``name``, or None when it is not configured.
    ProviderError for a name nobody registered."""
    if name not in _FACTORIES:
        raise ProviderError(f"no payment provider is called {name!r}")
    built = current_app.extensions.setdefault(CACHE, {})
    if name not in built:
        built[name] = _FACTORIES[name](current_app.config)
    return built[name]


def configured_provider(name):
    """The provider called ``name``, or ProviderError when it is not configured (a
    payment or claim recorded with it is asked about again)."""
    found = provider(name)
    if found is None:
        raise ProviderError(f"payment provider {name} is not configured")
    return found


def card_provider():
    """The provider that takes card payments: the first configured one, or None."""
    for name in _FACTORIES:
        found = provider(name)
        if found is not None:
            return found
    return None


register(StripeProvider.name, StripeProvider.from_config, StripeProvider.signature_header)
