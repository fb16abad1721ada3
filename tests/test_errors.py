"""The portal's errors form one family under PortalError."""
import importlib
import inspect
import pkgutil

import portal
from portal.errors import PortalError, ProviderError
from portal.payments import provider as card
from portal.rates import providers as rates


def _portal_modules():
    for info in pkgutil.walk_packages(portal.__path__, "portal."):
        # Process entry points build or check an app as they are imported.
        if ".migrations" in info.name or info.name.endswith(("wsgi", "gunicorn_conf", "worker")):
            continue
        yield importlib.import_module(info.name)


def test_every_exception_the_portal_defines_is_a_portal_error():
    defined = {
        cls for module in _portal_modules()
        for _name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__.startswith("portal.")
    }
    assert len(defined) > 20  # the walk found the packages
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in defined
                     if not issubclass(cls, PortalError))
    assert outside == []


def test_card_and_rate_providers_share_one_provider_error():
    assert card.ProviderError is rates.ProviderError is ProviderError
    assert issubclass(card.PaymentNotFound, ProviderError)
