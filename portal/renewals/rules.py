"""The renewal rules of docs/rules.md as pure functions.

No Flask, no database: callers hand in plain values (contract facts, a price lookup, the
rates in force on the quote date) and get plain values back, so every rule can be read
and tested here. Section names in comments refer to docs/rules.md.
"""
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from portal.errors import PortalError
from portal.money import (
    EURO_LEGACY,
    PAYMENT_CURRENCIES,
    divide,
    multiply,
    round_amount,
)

#: Service levels sold online, lowest first ("Words": basic < production).
ONLINE_LEVELS = ("basic", "production")
TERMS = (12, 36)
CHANNELS = ("direct", "partner", "oem")

#: Eligibility reason codes, in the order of the table in "Eligibility for online renewal".
REASONS = (
    "oem",
    "level_not_online",
    "not_launched",
    "lapsed_too_long",
    "no_price",
    "over_cap",
    "already_renewed",
    "cancelled",
)
DAYS_PER_YEAR = Decimal(365)


class RuleError(PortalError):
    """A request the rules cannot answer (stale or missing rate, option not offered...)."""


@dataclass(frozen=True)
class Settings:
    """The rule settings of docs/rules.md ("Settings") with their documented defaults."""

    online_cap_usd: Decimal = Decimal("3000.00")
    fx_fee_rate: Decimal = Decimal("0.03")
    reinstatement_fee_rate: Decimal = Decimal("0.20")
    fx_max_age_days: int = 7
    reinstatement_max_lapse_days: int = 365
    quote_validity_days: int = 30

    @classmethod
    def from_config(cls, config):
        return cls(**{field: read(config[name])
                      for field, (name, read) in SETTINGS_CONFIG.items()})


#: Each setting's configuration name and how its value is read.
SETTINGS_CONFIG = {
    "online_cap_usd": ("ONLINE_CAP_USD", Decimal),
    "fx_fee_rate": ("FX_FEE_RATE", Decimal),
    "reinstatement_fee_rate": ("REINSTATEMENT_FEE_RATE", Decimal),
    "fx_max_age_days": ("FX_MAX_AGE_DAYS", int),
    "reinstatement_max_lapse_days": ("REINSTATEMENT_MAX_LAPSE_DAYS", int),
    "quote_validity_days": ("QUOTE_VALIDITY_DAYS", int),
}


@dataclass(frozen=True)
class Line:
    product_code: str
    quantity: int


@dataclass(frozen=True)
class ContractFacts:
    """What the rules need to know about one contract."""

    number: str
    channel: str
    service_level: str
    end_date: date
    currency: str
    lines: tuple
    launch_date: date | None = None
    cancelled: bool = False
    renewal_in_progress: bool = False  # the term after E is paid or awaits offline payment


@dataclass(frozen=True)
class Rate:
    currency: str
    per_eur: Decimal
    as_of: date


class RateTable:
    """The rates in force on one quote date: for each currency the latest dated on or before it.

    EUR is 1 by definition; LVL and LTL have their fixed euro rates.
    """

    def __init__(self, quote_date, rates=()):
        self.quote_date = quote_date
        self._fresh = {}
        self._rates = {"EUR": Rate("EUR", Decimal(1), quote_date)}
        for code, per_eur in EURO_LEGACY.items():
            self._rates[code] = Rate(code, per_eur, quote_date)
        for rate in rates:
            if rate.currency == "EUR" or rate.currency in EURO_LEGACY:
                continue  # fixed by definition
            if rate.as_of > quote_date:
                continue
            known = self._rates.get(rate.currency)
            if known is None or rate.as_of > known.as_of:
                self._rates[rate.currency] = rate

    def get(self, currency):
        try:
            return self._rates[currency]
        except KeyError:
            raise RuleError(
                f"no exchange rate for {currency} on or before {self.quote_date.isoformat()}"
            ) from None

    def is_fresh(self, currency, max_age_days):
        return currency in self.fresh_currencies(max_age_days)

    def fresh_currencies(self, max_age_days):
        """The currencies whose rate is at most ``max_age_days`` old on the quote date,
        worked out once per table (a table never changes once made)."""
        fresh = self._fresh.get(max_age_days)
        if fresh is None:
            fresh = self._fresh[max_age_days] = frozenset(
                currency for currency, rate in self._rates.items()
                if (self.quote_date - rate.as_of).days <= max_age_days)
        return fresh

    def rate(self, source, target):
        """``rate(A->B) = r[B] / r[A]``, 28 digits, unrounded."""
        if source == target:
            return Decimal(1)
        return divide(self.get(target).per_eur, self.get(source).per_eur)

    def used(self, *currencies):
        """The rates behind a conversion, for the quote's record (none for A->A)."""
        currencies = dict.fromkeys(currencies)
        if len(currencies) == 1:
            return {}
        return {c: self.get(c) for c in currencies}


@dataclass(frozen=True)
class Option:
    service_level: str
    term_months: int
    term_start: date
    term_end: date
    lapsed_days: int
    term_fee: Decimal
    backdated_fee: Decimal
    reinstatement_fee: Decimal
    total: Decimal
    usd_equivalent: Decimal
    within_cap: bool


@dataclass(frozen=True)
class QuoteResult:
    contract: str
    quote_date: date
    currency: str
    eligible: bool
    reason: str | None
    options: tuple
    valid_until: date
    #: ``{(product, level, term): unit price}`` of every price the options used.
    prices_used: dict = field(default_factory=dict)
    #: ``{currency: Rate}`` of every rate the options used.
    rates_used: dict = field(default_factory=dict)

    def option(self, service_level, term_months):
        for option in self.options:
            if option.service_level == service_level and option.term_months == term_months:
                return option
        raise RuleError(f"no renewal option {service_level} / {term_months} months")


@dataclass(frozen=True)
class Payment:
    currency: str
    service_level: str
    term_months: int
    rate: Decimal
    converted: Decimal
    fx_fee: Decimal
    amount_due: Decimal


# --- dates ("Renewal options") ---


def add_months(start, months):
    """The date ``months`` after ``start``; a day the target month lacks rolls to the 1st after.

    So the anniversary of 29 February in a common year is 1 March, and a term that starts
    on 29 February ends on 28 February.
    """
    year, month = divmod(start.year * 12 + start.month - 1 + months, 12)  # month 0..11
    try:
        return start.replace(year=year, month=month + 1)
    except ValueError:  # the target month lacks the day: the 1st of the month after
        year, month = divmod(year * 12 + month + 1, 12)
        return date(year, month + 1, 1)


def term_dates(end_date, quote_date, term_months):
    """``(term_start, term_end, lapsed_days)`` of a renewal quoted on ``quote_date``."""
    term_start = max(end_date, quote_date) + timedelta(days=1)
    term_end = add_months(term_start, term_months) - timedelta(days=1)
    lapsed_days = (term_start - end_date).days - 1
    return term_start, term_end, lapsed_days


def quote_valid_until(end_date, quote_date, validity_days=30):
    """Active: until ``min(D + 30, E)``; lapsed: on D only ("Quotes and orders")."""
    if quote_date > end_date:
        return quote_date
    return min(quote_date + timedelta(days=validity_days), end_date)


# --- fees ---


def term_fee(lines, prices, level, term_months, currency):
    return round_amount(
        sum((line.quantity * prices[(line.product_code, level, term_months)] for line in lines),
            Decimal(0)),
        currency,
    )


def backdated_fee(lines, prices, level, lapsed_days, currency):
    """Per line ``round(quantity x 12-month unit price x N / 365)``, then summed."""
    if lapsed_days <= 0:
        return round_amount(0, currency)
    total = Decimal(0)
    for line in lines:
        yearly = line.quantity * prices[(line.product_code, level, 12)]
        total += round_amount(divide(multiply(yearly, lapsed_days), DAYS_PER_YEAR), currency)
    return total


def reinstatement_fee(backdated, rate, currency):
    return round_amount(multiply(backdated, rate), currency)


def usd_equivalent(total, currency, rates):
    return round_amount(multiply(total, rates.rate(currency, "USD")), "USD")


# --- options and eligibility ---


def _priced(lines, prices, level, term_months):
    return all((line.product_code, level, term_months) in prices for line in lines)


def offered_pairs(contract, prices):
    """(level, term) pairs offered: the contract's level and each higher level, for the
    terms the price list prices for every line at that level."""
    if contract.service_level not in ONLINE_LEVELS:
        return []
    levels = ONLINE_LEVELS[ONLINE_LEVELS.index(contract.service_level):]
    return [
        (level, term)
        for level in levels
        for term in TERMS
        if _priced(contract.lines, prices, level, term)
    ]


def lacks_current_price(contract, prices):
    """``no_price``: a line has no price at the current level for 12 months."""
    return not _priced(contract.lines, prices, contract.service_level, 12)


def build_options(contract, prices, rates, quote_date, settings):
    """Every offered option priced on ``quote_date``, ordered by level then term."""
    if contract.service_level not in ONLINE_LEVELS or lacks_current_price(contract, prices):
        return []
    currency = contract.currency
    options = []
    for level, term in offered_pairs(contract, prices):
        start, end, lapsed = term_dates(contract.end_date, quote_date, term)
        fee = term_fee(contract.lines, prices, level, term, currency)
        backdated = backdated_fee(
            contract.lines, prices, contract.service_level, lapsed, currency
        )
        reinstatement = reinstatement_fee(backdated, settings.reinstatement_fee_rate, currency)
        total = fee + backdated + reinstatement
        usd = usd_equivalent(total, currency, rates)
        options.append(
            Option(
                service_level=level,
                term_months=term,
                term_start=start,
                term_end=end,
                lapsed_days=lapsed,
                term_fee=fee,
                backdated_fee=backdated,
                reinstatement_fee=reinstatement,
                total=total,
                usd_equivalent=usd,
                within_cap=usd <= settings.online_cap_usd,
            )
        )
    return options


def ineligibility_reason(contract, options, quote_date, settings, prices):
    """The first reason code that applies, in the order of the eligibility table, or None."""
    checks = (
        ("oem", lambda: contract.channel == "oem"),
        ("level_not_online", lambda: contract.service_level not in ONLINE_LEVELS),
        (
            "not_launched",
            lambda: contract.launch_date is None or contract.launch_date > quote_date,
        ),
        (
            "lapsed_too_long",
            lambda: (quote_date - contract.end_date).days
            > settings.reinstatement_max_lapse_days,
        ),
        ("no_price", lambda: lacks_current_price(contract, prices)),
        ("over_cap", lambda: not any(option.within_cap for option in options)),
        ("already_renewed", lambda: contract.renewal_in_progress),
        ("cancelled", lambda: contract.cancelled),
    )
    for code, applies in checks:
        if applies():
            return code
    return None


def quote(contract, prices, rates, quote_date, settings=Settings()):
    """Quote ``contract`` on ``quote_date``: options, eligibility, validity, what was used."""
    options = build_options(contract, prices, rates, quote_date, settings)
    reason = ineligibility_reason(contract, options, quote_date, settings, prices)
    used_prices = {}
    for option in options:
        for line in contract.lines:
            keys = [(line.product_code, option.service_level, option.term_months)]
            if option.lapsed_days:
                keys.append((line.product_code, contract.service_level, 12))
            used_prices.update((key, prices[key]) for key in keys)
    return QuoteResult(
        contract=contract.number,
        quote_date=quote_date,
        currency=contract.currency,
        eligible=reason is None,
        reason=reason,
        options=tuple(options),
        valid_until=quote_valid_until(
            contract.end_date, quote_date, settings.quote_validity_days
        ),
        prices_used=used_prices,
        rates_used=rates.used(contract.currency, "USD") if options else {},
    )


# --- paying in another currency ---


def pay_currencies(quote_currency, rates, settings=Settings()):
    """Currencies a quote may be paid in: the quote currency (EUR for LVL/LTL quotes) and
    every payment currency whose rate, like the quote currency's, is fresh."""
    if quote_currency in EURO_LEGACY:
        return ["EUR"]
    fresh = rates.fresh_currencies(settings.fx_max_age_days)
    if quote_currency not in fresh:
        return [quote_currency]
    return [quote_currency, *(currency for currency in PAYMENT_CURRENCIES
                              if currency != quote_currency and currency in fresh)]


def payment(quote_result, option, pay_currency, rates, settings=Settings()):
    """Amount due for ``option`` paid in ``pay_currency`` ("Paying in another currency")."""
    quote_currency = quote_result.currency
    if pay_currency not in pay_currencies(quote_currency, rates, settings):
        if quote_currency in EURO_LEGACY:
            raise RuleError(f"{quote_currency} quotes are paid in EUR")
        if pay_currency not in PAYMENT_CURRENCIES:
            raise RuleError(f"{pay_currency} is not a payment currency")
        raise RuleError(
            f"no current exchange rate for paying a {quote_currency} quote in {pay_currency}"
            f" (rates older than {settings.fx_max_age_days} days are not used)"
        )
    if pay_currency == quote_currency:
        zero = round_amount(0, pay_currency)
        return Payment(
            pay_currency, option.service_level, option.term_months, Decimal(1),
            option.total, zero, option.total,
        )
    rate = rates.rate(quote_currency, pay_currency)
    converted = round_amount(multiply(option.total, rate), pay_currency)
    fee_rate = Decimal(0) if quote_currency in EURO_LEGACY else settings.fx_fee_rate
    fx_fee = round_amount(multiply(converted, fee_rate), pay_currency)
    return Payment(
        pay_currency, option.service_level, option.term_months, rate,
        converted, fx_fee, converted + fx_fee,
    )
