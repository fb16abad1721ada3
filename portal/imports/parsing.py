"""Field parsers shared by the importers: each raises ``ImportFault`` naming what is wrong."""
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from babel import Locale

from portal.mail.addresses import normalized_address
from portal.money import CURRENCIES
from portal.renewals.rules import TERMS

#: CLDR territories that are not ISO 3166-1 countries: unknown region, EU, UN, pseudo
#: locales and exceptionally reserved codes. (XK, Kosovo, stays: payment providers use it.)
NOT_COUNTRIES = frozenset("ZZ EU EZ UN QO XA XB AC CP CQ DG EA IC TA".split())
COUNTRIES = frozenset(
    code for code in Locale("en").territories
    if re.fullmatch(r"[A-Z]{2}", code) and code not in NOT_COUNTRIES
)
REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
#: C0 controls and DEL: never part of a name or code (PostgreSQL refuses NUL outright).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The largest whole number the database's integer columns hold.
MAX_INT = 2**31 - 1


class ImportFault(ValueError):
    """One bad value in an import file; the message names the file, row and field."""


def text(value, field, where, *, max_length=200, required=True):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ImportFault(f"{where}: {field} is missing")
        return None
    if not isinstance(value, str):
        raise ImportFault(f"{where}: {field} must be text, not {value!r}")
    value = value.strip()
    if CONTROL.search(value):
        raise ImportFault(f"{where}: {field} contains a control character")
    if len(value) > max_length:
        raise ImportFault(f"{where}: {field} is longer than {max_length} characters")
    return value


def currency(value, field, where):
    code = text(value, field, where, max_length=3)
    if code not in CURRENCIES:
        raise ImportFault(f"{where}: {field} {value!r} is not a supported currency")
    return code


def country(value, field, where):
    code = text(value, field, where, max_length=2)
    if code not in COUNTRIES:
        raise ImportFault(f"{where}: {field} {value!r} is not an ISO 3166-1 country code")
    return code


def iso_date(value, field, where):
    raw = text(value, field, where, max_length=10)
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise ImportFault(f"{where}: {field} {value!r} is not a date (YYYY-MM-DD)") from None


def positive_int(value, field, where):
    if isinstance(value, bool):
        raise ImportFault(f"{where}: {field} {value!r} is not a whole number")
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise ImportFault(f"{where}: {field} {value!r} is not a whole number")
    if value <= 0:
        raise ImportFault(f"{where}: {field} must be greater than zero")
    if value > MAX_INT:
        raise ImportFault(f"{where}: {field} {value} is too large")
    return value


def decimal(value, field, where):
    raw = text(value, field, where, max_length=40)
    if not re.fullmatch(r"-?\d+(\.\d+)?", raw):
        raise ImportFault(f"{where}: {field} {value!r} is not a plain decimal number")
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern already rules this out
        raise ImportFault(f"{where}: {field} {value!r} is not a decimal number") from None


def fits_column(value, column, field, where):
    """Refuse a decimal the ``Numeric(precision, scale)`` column would reject or round."""
    precision, scale = column.type.precision, column.type.scale
    if abs(value) >= Decimal(10) ** (precision - scale):
        raise ImportFault(f"{where}: {field} {value} is too large")
    if value != value.quantize(Decimal(1).scaleb(-scale)):
        raise ImportFault(f"{where}: {field} {value} has more than {scale} decimals")
    return value


def email(value, field, where):
    """One mailbox (``x,spy@evil.example`` is two to some mail servers and none here)."""
    address = text(value, field, where, max_length=254)
    try:
        normalized_address(address)
    except ValueError as error:
        raise ImportFault(f"{where}: {field} {value!r} is not an email address ({error})"
                          ) from None
    return address.lower()


def term_months(value, where):
    term = positive_int(value, "term_months", where)
    if term not in TERMS:
        raise ImportFault(f"{where}: term_months {term} is not one of "
                          f"{', '.join(map(str, TERMS))}")
    return term
