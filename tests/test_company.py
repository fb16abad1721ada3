"""The operator's company file (PORTAL_CONFIG): validated at start with one line naming
the setting, placeholders refused in production, and its facts on pages, emails and PDFs."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask_babel import force_locale

from portal import company
from portal.errors import ConfigError

DEMO = Path(company.__file__).parent / "demo" / "company.toml"

#: A production file: real-looking names, an IBAN with a valid checksum, no placeholder.
PRODUCTION = textwrap.dedent("""
    [brand]
    name = "Acme Renewals"
    primary_colour = "#123456"

    [terms]
    renewal_terms_url = "https://acme.test/renewal-terms"
    support_terms_url = "https://acme.test/support-terms"

    [parties.us]
    name = "Acme Software, Inc."
    address = ["1 Market Street", "San Francisco, CA 94105"]
    tax_number = "EIN 12-3456789"
    countries = ["US"]

    [parties.us.payees.bank_transfer.USD]
    account_holder = "Acme Software, Inc."
    bank = "First Bank of California"
    account_number = "4402117731"
    routing_number = "121000248"

    [parties.intl]
    name = "Acme Software International Ltd"
    address = ["2 Harbour Road", "Dublin 2"]
    tax_number = "IE 6388047V"

    [parties.intl.payees.bank_transfer.EUR]
    account_holder = "Acme Software International Ltd"
    bank = "Bank of Ireland"
    iban = "IE64 IRCE 9205 0112 3456 78"
    bic = "IRCEIE2D"

    [support.default]
    email = "renewals@acme.example"
    phone = "+353 1 555 0100"
    hours = "Mon-Fri 09:00-17:00 IST"

    [support.countries.US]
    email = "renewals-us@acme.example"
    phone = "+1 415 555 0100"
    hours = "Mon-Fri 9am-5pm PT"
""")


def write(tmp_path, text):
    path = tmp_path / "company.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_file_is_marked_demo_and_valid():
    settings = company.load()
    assert settings.demo is True
    assert settings.party_for("US").name.startswith("Renewal Portal, Inc.")
    assert settings.party_for("DE").name.startswith("Renewal Portal International")


def test_a_production_file_loads_and_answers_per_country(tmp_path):
    settings = company.load(write(tmp_path, PRODUCTION), production=True)
    assert settings.demo is False
    assert settings.party_for("US").tax_number == "EIN 12-3456789"
    assert settings.party_for("JP").name == "Acme Software International Ltd"
    assert settings.support_for("US").email == "renewals-us@acme.example"
    assert settings.support_for("FR").email == "renewals@acme.example"
    intl = settings.party_for("NL")
    assert intl.payee("bank_transfer", "EUR")["bic"] == "IRCEIE2D"
    assert intl.payee("bank_transfer", "USD") is None  # no account: not offered
    assert settings.party_for("US").payee("bank_transfer", "USD")["routing_number"] == "121000248"


def test_production_refuses_the_demo_file():
    with pytest.raises(ConfigError, match="marked demo"):
        company.load(DEMO, production=True)


@pytest.mark.parametrize("field, value", [
    ("account_number", "0000000000"),
    ("bank", "Example Bank"),
    ("account_holder", "CHANGE ME"),
])
def test_production_refuses_placeholder_payees(tmp_path, field, value):
    text = PRODUCTION.replace(
        {"account_number": '"4402117731"', "bank": '"First Bank of California"',
         "account_holder": '"Acme Software, Inc."\nbank'}[field],
        {"account_number": f'"{value}"', "bank": f'"{value}"',
         "account_holder": f'"{value}"\nbank'}[field], 1)
    path = write(tmp_path, text)
    company.load(path)  # fine outside production
    with pytest.raises(ConfigError) as refused:
        company.load(path, production=True)
    assert f"parties.us.payees.bank_transfer.USD.{field} is a placeholder" in str(refused.value)


def test_the_sample_iban_of_the_manuals_is_a_placeholder(tmp_path):
    path = write(tmp_path, PRODUCTION.replace("IE64 IRCE 9205 0112 3456 78",
                                              "NL91 ABNA 0417 1643 00"))
    with pytest.raises(ConfigError, match="iban is a placeholder"):
        company.load(path, production=True)


@pytest.mark.parametrize("change, message", [
    (('tax_number = "EIN 12-3456789"', ''), "PORTAL_CONFIG: parties.us.tax_number: missing"),
    (('tax_number = "EIN 12-3456789"', 'tax_number = 123'),
     "PORTAL_CONFIG: parties.us.tax_number: must be text in quotes"),
    (('primary_colour = "#123456"', 'primary_colour = "blue"'),
     "PORTAL_CONFIG: brand.primary_colour: 'blue' is not a colour like #0b5cab or #fff"),
    (('"https://acme.test/renewal-terms"', '"not a url"'),
     "PORTAL_CONFIG: terms.renewal_terms_url: Input should be a valid URL"),
    (('email = "renewals@acme.example"', 'email = "renewals at acme"'),
     "PORTAL_CONFIG: support.default.email: value is not a valid email address"),
    (('iban = "IE64 IRCE 9205 0112 3456 78"', 'iban = "IE64 IRCE 9205 0112 3456 79"'),
     "PORTAL_CONFIG: parties.intl.payees.bank_transfer.EUR.iban: not a valid IBAN"),
    (('bic = "IRCEIE2D"', ''), "PORTAL_CONFIG: parties.intl.payees.bank_transfer.EUR.bic: missing"),
    (('bank = "First Bank of California"', ''),
     "PORTAL_CONFIG: parties.us.payees.bank_transfer.USD.bank: missing"),
    (('routing_number = "121000248"', 'routing_numbr = "121000248"'),
     "PORTAL_CONFIG: parties.us.payees.bank_transfer.USD.routing_numbr: not a field of "
     "bank_transfer"),
    (('countries = ["US"]', ''), "exactly one party must leave out 'countries'"),
    (('countries = ["US"]', 'countries = ["USA"]'), "not an ISO 3166-1 alpha-2 country code"),
    (('[parties.us.payees.bank_transfer.USD]', '[parties.us.payees.cash.USD]'),
     "PORTAL_CONFIG: parties.us.payees.cash: not an offline payment method"),
    (('[parties.us.payees.bank_transfer.USD]', '[parties.us.payees.bank_transfer.XYZ]'),
     "PORTAL_CONFIG: parties.us.payees.bank_transfer.XYZ: XYZ is not a payment currency"),
    (('[brand]', '[brand]\nslogan = "x"'), "brand.slogan: Extra inputs are not permitted"),
])
def test_a_malformed_setting_is_one_line_naming_it(tmp_path, change, message):
    old, new = change
    assert old in PRODUCTION
    with pytest.raises(ConfigError) as refused:
        company.load(write(tmp_path, PRODUCTION.replace(old, new, 1)))
    text = str(refused.value)
    assert message in text
    assert "\n" not in text


def test_unreadable_and_invalid_toml_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="PORTAL_CONFIG: cannot read"):
        company.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="PORTAL_CONFIG: .* is not valid TOML"):
        company.load(write(tmp_path, "[brand\nname="))


def portal_command(*args, env):
    return subprocess.run([sys.executable, "-m", "portal.cli", *args], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.parametrize("settings, message", [
    ({"FX_FEE_RATE": "three percent"}, "Error: FX_FEE_RATE: 'three percent' is not a decimal number"),
    ({"FX_FEE_RATE": "1.5"}, "Error: FX_FEE_RATE: 1.5 is out of range"),
    ({"OFFLINE_PAYMENT_DAYS": "-3"}, "Error: OFFLINE_PAYMENT_DAYS: -3 must not be negative"),
    ({"SMTP_URL": "mail.example.com:25"}, "Error: SMTP_URL: 'mail.example.com:25' is not a smtp URL"),
    # The transport speaks plain SMTP only: an smtps URL is refused at startup, not at
    # the first delivery.
    ({"SMTP_URL": "smtps://mail.example.com:465"},
     "Error: SMTP_URL: 'smtps://mail.example.com:465' is not a smtp URL"),
    ({"PORTAL_ENV": "prod"}, "Error: PORTAL_ENV: must be one of development, production"),
    ({"PORTAL_ENV": "production", "SECRET_KEY": "s" * 32, "DATABASE_URL": "sqlite://"},
     "Error: PORTAL_CONFIG: required for a production start"),
    ({"PORTAL_CONFIG": "/nowhere/company.toml"}, "Error: PORTAL_CONFIG: cannot read /nowhere/company.toml"),
    ({"DATABASE_URL": "nonsense"}, "Error: DATABASE_URL: 'nonsense' is not a database URL"),
    ({"DATABASE_URL": "mysql://u@127.0.0.1/x"}, "Error: DATABASE_URL: mysql is not supported"),
    ({"SMTP_URL": "smtp://127.0.0.1:notaport"}, "Error: SMTP_URL: 'smtp://127.0.0.1:notaport' has a port that is not a number"),
    ({"MAIL_FROM": "bogus"}, "Error: MAIL_FROM: 'bogus' is not an address"),
    ({"SMTP_TIMEOUT_SECONDS": "0"}, "Error: SMTP_TIMEOUT_SECONDS: must be at least 1 second"),
    ({"STRIPE_SECRET_KEY": "sk_test_x"}, "Error: STRIPE_PUBLISHABLE_KEY: required with STRIPE_SECRET_KEY"),
    ({"PORTAL_ENV": "production", "SECRET_KEY": "short", "DATABASE_URL": "sqlite://",
      "PORTAL_CONFIG": "/x.toml"}, "Error: SECRET_KEY: at least 32 characters"),
    ({"PROVIDER_READ_TIMEOUT_SECONDS": "0"}, "Error: PROVIDER_READ_TIMEOUT_SECONDS: must be at least 1 second"),
    ({"RATELIMIT_STORAGE_URI": "shelf:///tmp/x"}, "Error: RATELIMIT_STORAGE_URI: 'shelf:///tmp/x' is not a portal-db://"),
])
def test_a_bad_setting_stops_the_command_line_with_one_line(tmp_path, settings, message):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}", **settings}
    result = portal_command("routes", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_production_start_with_placeholders_is_refused_by_the_wsgi_entry(tmp_path):
    path = write(tmp_path, PRODUCTION.replace('"4402117731"', '"XXXXXXXXXX"'))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PORTAL_ENV": "production",
           "SECRET_KEY": "s" * 32, "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
           "PORTAL_CONFIG": str(path)}
    result = subprocess.run([sys.executable, "-c", "import portal.wsgi"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 3  # gunicorn's "worker failed to boot": the arbiter stops
    assert result.stderr.strip() == ("Error: PORTAL_CONFIG: parties.us.payees.bank_transfer.USD."
                                     "account_number is a placeholder; set the real account "
                                     "before a production start")
    path.write_text(PRODUCTION)
    result = subprocess.run([sys.executable, "-c", "import portal.wsgi"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr


def test_postgres_urls_use_the_installed_driver():
    from portal.config import database_url

    assert database_url("postgresql://u:p@127.0.0.1:5432/x") == \
        "postgresql+psycopg://u:p@127.0.0.1:5432/x"
    assert database_url("postgres://u@h/x") == "postgresql+psycopg://u@h/x"
    # An address written for the earlier driver keeps working with the installed one.
    assert database_url("postgresql+psycopg2://u@h/x") == "postgresql+psycopg://u@h/x"
    assert database_url("sqlite:////tmp/p.db") == "sqlite:////tmp/p.db"


def test_a_missing_logo_file_is_refused(tmp_path):
    from tests.conftest import make_app

    path = write(tmp_path, PRODUCTION.replace('primary_colour = "#123456"',
                                              'primary_colour = "#123456"\nlogo = "img/nope.svg"'))
    with pytest.raises(ConfigError, match="brand.logo: no file img/nope.svg"):
        make_app(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "i", PORTAL_CONFIG=str(path))


def test_support_hours_are_shown_in_the_readers_language(tmp_path, app):
    """Hours given per language are picked by the page's or email's language, falling
    back to English; one text is shown as it is."""
    text = PRODUCTION.replace('hours = "Mon-Fri 09:00-17:00 IST"', textwrap.dedent("""\
        [support.default.hours]
        en = "Mon-Fri 09:00-17:00 IST"
        de = "Mo-Fr 09:00-17:00 IST"
        pt_BR = "Seg-Sex 09:00-17:00 IST"
        """))
    settings = company.load(write(tmp_path, text), production=True)
    support = settings.support.default
    assert support.hours_in("de") == "Mo-Fr 09:00-17:00 IST"
    assert support.hours_in("de_CH") == "Mo-Fr 09:00-17:00 IST"
    assert support.hours_in("pt_BR") == "Seg-Sex 09:00-17:00 IST"
    assert support.hours_in("ja") == "Mon-Fri 09:00-17:00 IST"  # not given: English
    assert settings.support.countries["US"].hours_in("de") == "Mon-Fri 9am-5pm PT"
    broken = PRODUCTION.replace('hours = "Mon-Fri 09:00-17:00 IST"', "hours = {}")
    with pytest.raises(ConfigError):
        company.load(write(tmp_path, broken), production=True)
    # The demo file's hours in a page and in an email, in their language.
    web = app.test_client()
    assert "Montag bis Freitag" in web.get("/?lang=de").get_data(as_text=True)
    assert "Du lundi au vendredi" in web.get("/?lang=fr").get_data(as_text=True)
    assert "Monday to Friday, 08:00-18:00 CET" in web.get("/?lang=sv").get_data(as_text=True)
    with force_locale("ja"):  # how emails and PDFs are rendered
        assert company.load().support.default.local_hours.startswith("月曜日～金曜日")
