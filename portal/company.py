"""What an operator sets once: the company behind the portal (docs/interfaces.md,
"Configuration", and docs/markets.md, "Contracting parties").

``PORTAL_CONFIG`` names a TOML file with the contracting parties (who sells to which
countries, their address and tax number, and the accounts offline payments go to, per
method and currency), the support contacts per country, the terms links and the brand.
Without it the demo's own file is used, which says ``demo = true``; a production start
(``PORTAL_ENV=production``) refuses the demo file and any payee that is still a
placeholder. Every mistake is reported as one line naming the setting.

Pure code: no Flask.
"""
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated

from flask_babel import get_locale
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    ValidationError,
    model_validator,
)
from stdnum import iban as iban_number

from portal.errors import ConfigError
from portal.money import PAYMENT_CURRENCIES

#: The payee fields each offline method needs; bank transfers name an IBAN and BIC, or
#: (as in the US) an account and routing number.
PAYEE_FIELDS = {
    "bank_transfer": ({"account_holder", "bank", "iban", "bic"},
                      {"account_holder", "bank", "account_number", "routing_number"}),
    "check": ({"payable_to", "address"},),
    "paypal": ({"account"},),
    "alipay": ({"url"},),
    "ideal": ({"url"},),
    "paynearme": ({"url"},),
    "webmoney": ({"purse"},),
}
ANY_CURRENCY = "*"
#: What marks a value as not yet filled in by the operator.
PLACEHOLDER = re.compile(r"example|placeholder|change.?me|x{4,}|^[0\s-]+$", re.IGNORECASE)
#: The IBAN every manual prints as a sample.
SAMPLE_IBANS = {"NL91ABNA0417164300", "DE89370400440532013000", "GB29NWBK60161331926819"}
DEMO_FILE = "demo/company.toml"

NonEmpty = Annotated[str, Field(min_length=1), AfterValidator(str.strip)]


def _country(code):
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


Country = Annotated[str, AfterValidator(_country)]
def _colour(value):
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}|#[0-9A-Fa-f]{3}", value):
        raise ValueError(f"{value!r} is not a colour like #0b5cab or #fff")
    return value


Colour = Annotated[str, AfterValidator(_colour)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(Strict):
    """A company that sells renewals: the seller named on quotes, orders and invoices."""

    name: NonEmpty
    address: list[NonEmpty] = Field(min_length=1)
    tax_number: NonEmpty
    #: The countries it sells to; omitted for the one party that sells everywhere else.
    countries: list[Country] | None = None
    #: method -> currency (or "*") -> payee fields.
    payees: dict[str, dict[str, dict[str, NonEmpty]]] = Field(default_factory=dict)

    def payee(self, method, currency):
        """The account ``method`` payments in ``currency`` go to, or None."""
        by_currency = self.payees.get(method) or {}
        return by_currency.get(currency) or by_currency.get(ANY_CURRENCY)

    @property
    def address_line(self):
        return ", ".join(self.address)


class SupportContact(Strict):
    email: EmailStr
    phone: NonEmpty
    #: Opening hours as customers read them: one text, or one per language (``en``,
    #: ``de``, ``pt_BR``, ...), shown in the page's or the email's language, else in
    #: English, else the first one given.
    hours: NonEmpty | Annotated[dict[NonEmpty, NonEmpty], Field(min_length=1)]

    def hours_in(self, locale):
        if isinstance(self.hours, str):
            return self.hours
        code = str(locale or "en")
        return (self.hours.get(code) or self.hours.get(code.split("_")[0])
                or self.hours.get("en") or next(iter(self.hours.values())))

    @property
    def local_hours(self):
        """The hours in the language being rendered (a page's, or an email's)."""
        return self.hours_in(get_locale())


class Support(Strict):
    default: SupportContact
    countries: dict[Country, SupportContact] = Field(default_factory=dict)


class Terms(Strict):
    renewal_terms_url: HttpUrl
    support_terms_url: HttpUrl


class Brand(Strict):
    name: NonEmpty
    #: A file under the static folder (``img/logo.svg``) or an https URL.
    logo: NonEmpty | None = None
    primary_colour: Colour = "#0b5cab"
    accent_colour: Colour = "#0a7a4b"


class Company(Strict):
    demo: bool = False
    brand: Brand
    terms: Terms
    parties: dict[NonEmpty, Party] = Field(min_length=1)
    support: Support

    @model_validator(mode="after")
    def _payees_are_complete(self):
        for key, party in self.parties.items():
            for method, by_currency in party.payees.items():
                where = f"parties.{key}.payees.{method}"
                if method not in PAYEE_FIELDS:
                    raise ValueError(f"{where}: not an offline payment method "
                                     f"({', '.join(sorted(PAYEE_FIELDS))})")
                for currency, fields in by_currency.items():
                    _check_payee(f"{where}.{currency}", method, currency, fields)
        return self

    @model_validator(mode="after")
    def _one_party_per_country(self):
        everywhere = [key for key, party in self.parties.items() if party.countries is None]
        if len(everywhere) != 1:
            raise ValueError("parties: exactly one party must leave out 'countries' "
                             f"(it sells everywhere else); found {len(everywhere)}")
        seen = {}
        for key, party in self.parties.items():
            for country in party.countries or ():
                if country in seen:
                    raise ValueError(f"parties.{key}.countries: {country} already belongs "
                                     f"to parties.{seen[country]}")
                seen[country] = key
        return self

    def party_for(self, country):
        """The contracting party of a customer in ``country``."""
        fallback = None
        for party in self.parties.values():
            if party.countries is None:
                fallback = party
            elif country in party.countries:
                return party
        return fallback

    def support_for(self, country):
        return self.support.countries.get(country) or self.support.default

    def placeholders(self):
        """Every payee setting still holding a placeholder, as dotted names."""
        found = []
        for key, party in self.parties.items():
            for method, by_currency in party.payees.items():
                for currency, fields in by_currency.items():
                    found.extend(f"parties.{key}.payees.{method}.{currency}.{name}"
                                 for name, value in fields.items() if _placeholder(name, value))
        return found


def _check_payee(where, method, currency, fields):
    if currency != ANY_CURRENCY and currency not in PAYMENT_CURRENCIES:
        raise ValueError(f"{where}: {currency} is not a payment currency (or \"*\" for any)")
    allowed = set().union(*PAYEE_FIELDS[method])
    unknown = sorted(fields.keys() - allowed)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: not a field of {method} "
                         f"({', '.join(sorted(allowed))})")
    # The variant the file is closest to names what is missing.
    needed = min(PAYEE_FIELDS[method], key=lambda variant: len(variant - fields.keys()))
    missing = sorted(needed - fields.keys())
    if missing:
        raise ValueError(f"{where}.{missing[0]}: missing")
    if "iban" in fields and not iban_number.is_valid(fields["iban"]):
        raise ValueError(f"{where}.iban: not a valid IBAN (checksum or length)")


def _placeholder(name, value):
    if name == "iban" and iban_number.compact(value) in SAMPLE_IBANS:
        return True
    return bool(PLACEHOLDER.search(value))


def load(path=None, *, production=False):
    """Read and check the company file (``None``: the demo's). Raises ConfigError."""
    label = "PORTAL_CONFIG" if path else "demo configuration"
    try:
        if path:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(
                resources.files("portal").joinpath(DEMO_FILE).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"PORTAL_CONFIG: cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"PORTAL_CONFIG: {path} is not valid TOML ({error})") from None
    try:
        company = Company.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{label}: {_first_problem(error)}") from None
    if production:
        if company.demo:
            raise ConfigError("PORTAL_CONFIG: a production start needs the company's own "
                              "file, not one marked demo")
        left = company.placeholders()
        if left:
            raise ConfigError(f"PORTAL_CONFIG: {left[0]} is a placeholder; set the real "
                              "account before a production start")
    return company


def _first_problem(error):
    """``where.it.is: what is wrong``, in one line. A rule checked on the whole file
    names its own dotted setting."""
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    message = {"Field required": "missing",
               "Input should be a valid string": "must be text in quotes"}.get(message, message)
    if not where or message.startswith(("parties.", "parties:")):
        return message
    return f"{where}: {message}"
