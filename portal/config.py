"""Configuration from the environment (interfaces.md, "Configuration").

Every rule setting of renewal-rules.md has a default here and can be overridden by an
environment variable of the same name, or by the mapping given to ``create_app``.
"""
import os
from decimal import Decimal

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
}
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
}


def from_environment(environ=None):
    """Read every known setting from ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    config = {}
    for name, default in DECIMAL_SETTINGS.items():
        config[name] = Decimal(environ.get(name, default))
    for name, default in INT_SETTINGS.items():
        config[name] = int(environ.get(name, default))
    for name, default in STR_SETTINGS.items():
        value = environ.get(name, default)
        if value is not None:
            config[name] = value
    return config
