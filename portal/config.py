"""Configuration from the environment (docs/interfaces.md, "Configuration").

Every rule setting of docs/rules.md has a default here and can be overridden by an
environment variable of the same name, or by the mapping given to ``create_app``. A
malformed value stops the start with one line naming the setting.
"""
import os
from datetime import time as dt_time
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from portal.errors import ConfigError

#: Settings parsed as Decimal, int or str, with their defaults.
DECIMAL_SETTINGS = {
    "ONLINE_CAP_USD": "3000.00",
    "FX_FEE_RATE": "0.03",
    "REINSTATEMENT_FEE_RATE": "0.20",
}
INT_SETTINGS = {
    "FX_MAX_AGE_DAYS": 7,
    "REINSTATEMENT_MAX_LAPSE_DAYS": 365,
    "OFFLINE_PAYMENT_DAYS": 30,
    "AUTO_RENEW_CHARGE_DAYS": 14,
    "QUOTE_VALIDITY_DAYS": 30,
    "RATES_TIMEOUT_SECONDS": 10,
    "SMTP_TIMEOUT_SECONDS": 30,
    "PARTNER_EVENTS_SETTLE_SECONDS": 10,
    # The payment provider: connect and read deadlines of one call, and how many times a
    # call that failed on the network is tried again (the SDK's own default is 80 s, 2).
    "PROVIDER_CONNECT_TIMEOUT_SECONDS": 3,
    "PROVIDER_READ_TIMEOUT_SECONDS": 8,
    "PROVIDER_MAX_RETRIES": 1,
    "CELERY_VISIBILITY_TIMEOUT": 3600,
    "OUTBOX_EVERY_SECONDS": 60,
    "RECONCILE_EVERY_SECONDS": 600,
    "WEBHOOKS_EVERY_SECONDS": 10,
    # The CPU niceness batch work lowers itself to (workers, scheduler, the job commands),
    # so pages are served first on a machine that does both; 0 leaves it as started.
    "BATCH_NICENESS": 10,
}
#: Settings that are deadlines: 0 would mean "no deadline" to some clients.
TIMEOUTS = {"RATES_TIMEOUT_SECONDS", "SMTP_TIMEOUT_SECONDS", "PROVIDER_CONNECT_TIMEOUT_SECONDS",
            "PROVIDER_READ_TIMEOUT_SECONDS"}
STR_SETTINGS = {
    "DATABASE_URL": None,
    "SECRET_KEY": None,
    "PORTAL_BASE_URL": "http://127.0.0.1:5000",
    "SMTP_URL": None,
    "MAIL_FROM": "Renewals <renewals@portal.example>",
    "STRIPE_SECRET_KEY": None,
    "STRIPE_PUBLISHABLE_KEY": None,
    "STRIPE_API_BASE": None,
    "STRIPE_WEBHOOK_SECRET": None,
    "RENEWALS_DESK_EMAIL": "renewals@portal.example",
    "PARTNER_API_RATE_LIMIT": "120 per minute",
    "RATELIMIT_STORAGE_URI": None,
    "PORTAL_CONFIG": None,
    "PORTAL_ENV": "development",
    "OUTBOX_DIR": None,
    "LOG_FORMAT": "text",
    "LOG_LEVEL": "INFO",
    "CELERY_BROKER_URL": None,
    "RATES_SOURCE": "ecb",
}
STRIPE_KEYS = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
#: Times of day (HH:MM, UTC) of the daily jobs (portal/schedule.py).
TIME_SETTINGS = {
    "NOTICES_AT": "06:00",
    "AUTORENEW_AT": "06:30",
    "ORDERS_EXPIRE_AT": "00:30",
    "RATES_REFRESH_AT": "16:30",
}
#: Intervals that must be at least one second.
AT_LEAST_ONE = ("CELERY_VISIBILITY_TIMEOUT", "OUTBOX_EVERY_SECONDS", "RECONCILE_EVERY_SECONDS",
                "WEBHOOKS_EVERY_SECONDS")
#: Rates are fractions: 0 <= rate < 1.
FRACTIONS = {"FX_FEE_RATE", "REINSTATEMENT_FEE_RATE"}
ENVIRONMENTS = ("development", "production")
#: Rate-limit stores: the database, one process's memory (tests), Redis.
RATE_LIMIT_STORES = ("portal-db", "memory", "redis", "rediss", "redis+sentinel",
                     "redis+cluster", "redis+unix")
#: URL settings and the schemes each accepts.
URL_SCHEMES = {
    "PORTAL_BASE_URL": ("http", "https"),
    "SMTP_URL": ("smtp",),
    "STRIPE_API_BASE": ("http", "https"),
    "CELERY_BROKER_URL": ("redis", "rediss", "amqp", "memory"),
}


def from_environment(environ=None):
    """Read every known setting from ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    config = {}
    for name, default in DECIMAL_SETTINGS.items():
        config[name] = _decimal(name, environ.get(name, default))
    for name, default in INT_SETTINGS.items():
        config[name] = _positive_int(name, environ.get(name, default))
    for name, default in STR_SETTINGS.items():
        value = environ.get(name, default)
        if value is not None:
            config[name] = value
    for name, default in TIME_SETTINGS.items():
        config[name] = environ.get(name, default)
    return config


def check(config):
    """Refuse a setting that cannot work, whichever way it arrived (environment or
    ``create_app`` overrides). Raises ConfigError naming the setting."""
    for name in DECIMAL_SETTINGS:
        value = config.get(name)
        if value is not None and (value < 0 or (name in FRACTIONS and value >= 1)):
            raise ConfigError(f"{name}: {value} is out of range")
    if not 0 <= config.get("BATCH_NICENESS", 0) <= 19:
        raise ConfigError(f"BATCH_NICENESS: {config['BATCH_NICENESS']} is not a niceness "
                          "from 0 to 19")
    for name in TIMEOUTS:
        if config.get(name) is not None and config[name] <= 0:
            raise ConfigError(f"{name}: must be at least 1 second")
    for name, schemes in URL_SCHEMES.items():
        value = config.get(name)
        if value:
            _url(name, value, schemes)
    if config.get("DATABASE_URL"):
        config["DATABASE_URL"] = database_url(config["DATABASE_URL"])
    if config.get("MAIL_FROM"):
        _sender(config["MAIL_FROM"])
    stripe = [name for name in STRIPE_KEYS if config.get(name)]
    if stripe and len(stripe) < len(STRIPE_KEYS):
        missing = next(name for name in STRIPE_KEYS if not config.get(name))
        raise ConfigError(f"{missing}: required with {stripe[0]} (all three Stripe keys or "
                          "none, for the local emulator)")
    store = config.get("RATELIMIT_STORAGE_URI")
    if store and urlsplit(store).scheme not in RATE_LIMIT_STORES:
        raise ConfigError(f"RATELIMIT_STORAGE_URI: {store!r} is not a portal-db://, memory:// "
                          "or redis:// address")
    for name in TIME_SETTINGS:
        if name in config and time_of_day(config[name]) is None:
            raise ConfigError(f"{name}: {config[name]!r} is not a time of day (HH:MM, UTC)")
    for name in AT_LEAST_ONE:
        if name in config and config[name] < 1:
            raise ConfigError(f"{name}: must be at least 1")
    if config.get("RATES_SOURCE", "ecb") not in ("ecb", "forex"):
        raise ConfigError("RATES_SOURCE: must be ecb or forex")
    if config.get("LOG_FORMAT", "text") not in ("text", "json"):
        raise ConfigError("LOG_FORMAT: must be text or json")
    if config.get("LOG_LEVEL", "INFO") not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")
    if config.get("PORTAL_ENV", "development") not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV: must be one of {', '.join(ENVIRONMENTS)}")
    if config.get("PORTAL_ENV") == "production":
        for name in ("SECRET_KEY", "PORTAL_CONFIG", "DATABASE_URL"):
            if not config.get(name):
                raise ConfigError(f"{name}: required for a production start")
        if len(config["SECRET_KEY"]) < 32:
            raise ConfigError("SECRET_KEY: at least 32 characters for a production start "
                              "(e.g. python3 -c 'import secrets; print(secrets.token_hex(32))')")


def database_url(url):
    """Check ``DATABASE_URL`` and name its driver: ``postgresql://`` (and ``postgres://``,
    and the older ``postgresql+psycopg2://``) mean the installed psycopg 3 driver, which
    prepares a statement on the server once a connection has sent it a few times."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL: {url!r} is not a database URL "
                          "(sqlite:///path or postgresql://user@host/db)") from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "postgresql+psycopg"):
        raise ConfigError(f"DATABASE_URL: {parsed.drivername} is not supported "
                          "(sqlite or postgresql)")
    return parsed.render_as_string(hide_password=False)


def _url(name, value, schemes):
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"{name}: {value!r} has a port that is not a number") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name}: {value!r} is not a {' or '.join(schemes)} URL")


def _sender(value):
    _name, address = parseaddr(value)
    try:
        validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        raise ConfigError(f"MAIL_FROM: {value!r} is not an address like "
                          "'Renewals <renewals@example.com>'") from None


def time_of_day(text):
    """``"HH:MM"`` as a ``datetime.time``, or None when it is not a time of day."""
    hours, sep, minutes = str(text).strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2
            and int(hours) < 24 and int(minutes) < 60):
        return None
    return dt_time(int(hours), int(minutes))


def _decimal(name, text):
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ConfigError(f"{name}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ConfigError(f"{name}: {text!r} is not a decimal number")
    return value


def _positive_int(name, text):
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a whole number") from None
    if value < 0:
        raise ConfigError(f"{name}: {value} must not be negative")
    return value
