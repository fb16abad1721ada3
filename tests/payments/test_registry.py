"""Payment providers are found by name: Stripe as ``stripe``, any other registered
provider by its own name, and no service names a provider itself."""
from pathlib import Path

import pytest

from portal.errors import ProviderError
from portal.payments import registry
from portal.payments.stripe_provider import StripeProvider

PORTAL = Path(__file__).resolve().parents[2] / "portal"
#: The services of every feature, and the card payment modules that took over the payment
#: services: none of them may name a provider.
SERVICES = sorted(PORTAL.glob("*/services.py")) + [
    PORTAL / "payments" / f"{name}.py"
    for name in ("attempts", "cards", "claims", "reconciliation", "webhooks")]


def test_stripe_is_registered_by_name_and_built_from_the_configuration(card_app):
    with card_app.app_context():
        stripe_provider = registry.provider("stripe")
        assert isinstance(stripe_provider, StripeProvider) and stripe_provider.name == "stripe"
        assert registry.provider("stripe") is stripe_provider  # built once per app
        assert registry.card_provider() is stripe_provider


def test_an_unconfigured_provider_is_none_and_an_unknown_one_an_error(app):
    with app.app_context():
        assert registry.provider("stripe") is None  # no STRIPE_SECRET_KEY
        assert registry.card_provider() is None
        with pytest.raises(ProviderError, match="no payment provider is called 'nopay'"):
            registry.provider("nopay")


def test_another_provider_is_found_by_its_name(app, monkeypatch):
    class OtherProvider:
        name = "testpay"

    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(registry, "SIGNATURE_HEADERS", dict(registry.SIGNATURE_HEADERS))
    registry.register("testpay", lambda config: OtherProvider(), "X-Signature")
    app.extensions.pop(registry.CACHE, None)
    try:
        with app.app_context():
            assert registry.names() == ("stripe", "testpay")
            assert isinstance(registry.provider("testpay"), OtherProvider)
            assert registry.card_provider().name == "testpay"  # stripe is not configured
    finally:
        app.extensions.pop(registry.CACHE, None)


@pytest.mark.parametrize("module", SERVICES, ids=str)
def test_no_service_names_a_provider(module):
    assert '"stripe"' not in module.read_text() and "'stripe'" not in module.read_text()
