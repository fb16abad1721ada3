"""Renewal Portal: self-service renewal of software support-and-subscription contracts."""
import os
import secrets
from pathlib import Path

from portal import assets, celery_app, company, logs, web
from portal import config as portal_config
from portal.autorenew import optin as autorenew_optin
from portal.autorenew.cli import autorenew_group
from portal.checkout import combined_routes  # noqa: F401  (its pages join the checkout's)
from portal.checkout.routes import bp as checkout_bp
from portal.demo.cli import demo_command
from portal.errors import ConfigError
from portal.extensions import db, migrate
from portal.health import bp as health_bp
from portal.i18n.cli import translations_group
from portal.imports.cli import import_group
from portal.invoices import services as invoices_services
from portal.links.cli import link_command
from portal.mail.cli import outbox_group
from portal.notices.cli import notices_group
from portal.orders.cli import orders_group
from portal.partners import events as partner_events
from portal.partners.cli import partner_group
from portal.partners.routes import bp as partner_api_bp
from portal.payments.cli import payments_group
from portal.payments.routes import bp as payments_bp
from portal.rates.cli import rates_group
from portal.renewals.cli import quote_command
from portal.selfservice.routes import bp as selfservice_bp
from portal.staff.cli import staff_group
from portal.staff.routes import bp as staff_bp
from portal.web import PortalFlask

# Every model module, so that metadata and Alembic see all tables (most are imported by
# the pages and commands above already; these lines keep that true for every table).
from portal import dataversion  # noqa: F401
from portal.audit import models as audit_models  # noqa: F401
from portal.autorenew import models as autorenew_models  # noqa: F401
from portal.checkout import models as checkout_models  # noqa: F401
from portal.contracts import models as contracts_models  # noqa: F401
from portal.invoices import models as invoices_models  # noqa: F401
from portal.links import models as links_models  # noqa: F401
from portal.mail import models as mail_models  # noqa: F401
from portal.markets import models as markets_models  # noqa: F401
from portal.notices import models as notices_models  # noqa: F401
from portal.orders import models as orders_models  # noqa: F401
from portal.partners import models as partners_models  # noqa: F401
from portal.payments import models as payments_models  # noqa: F401
from portal.pricing import models as pricing_models  # noqa: F401
from portal.ratelimits import models as ratelimits_models  # noqa: F401
from portal.rates import models as rates_models  # noqa: F401
from portal.renewals import models as renewals_models  # noqa: F401
from portal.staff import models as staff_models  # noqa: F401

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(config=None):
    """Build the application. ``config`` overrides environment and defaults."""
    app = PortalFlask(
        __name__,
        instance_relative_config=True,
        template_folder=str(assets.folder("templates")),
        static_folder=str(assets.folder("static")),
    )
    configure(app, config or {})
    register_extensions(app)
    register_tasks(app)
    register_web(app)
    register_blueprints(app)
    register_cli(app)
    register_signal_receivers()
    return app


def configure(app, overrides):
    settings = portal_config.from_environment()
    settings.update(overrides)
    portal_config.check(settings)
    app.config.update(settings)
    logs.configure(settings.get("LOG_FORMAT", "text"), settings.get("LOG_LEVEL", "INFO"))
    app.extensions["company"] = company.load(
        settings.get("PORTAL_CONFIG"), production=settings.get("PORTAL_ENV") == "production")
    _check_logo(app.extensions["company"].brand.logo)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.setdefault("DATABASE_URL", f"sqlite:///{instance / 'portal.db'}")
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    app.config.setdefault("OUTBOX_DIR", str(instance / "outbox"))
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance)


def _check_logo(logo):
    """The brand's logo is an https URL or a file under the static folder."""
    if logo and not logo.startswith("https://") and not (assets.folder("static") / logo).is_file():
        raise ConfigError(f"PORTAL_CONFIG: brand.logo: no file {logo} under "
                                  f"{assets.folder('static')} (or give an https URL)")


def _instance_secret(instance):
    """A random secret kept in the instance folder, so sessions survive a restart."""
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def register_extensions(app):
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)


def register_tasks(app):
    """Background work: a Celery producer with a broker, else tasks run inline."""
    celery_app.init_app(app)


def register_web(app):
    web.init_i18n(app)
    web.init_security(app)
    web.init_error_pages(app)


def register_blueprints(app):
    """Each feature's blueprint; a feature adds its line here (and its import above)."""
    app.register_blueprint(health_bp)
    app.register_blueprint(checkout_bp)
    app.register_blueprint(selfservice_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(partner_api_bp)


def register_signal_receivers():
    """Features that react to another feature's changes subscribe to its signals."""
    autorenew_optin.connect()
    partner_events.connect()
    invoices_services.connect()  # the outbox makes invoice PDFs at delivery


def register_cli(app):
    app.cli.add_command(orders_group)
    app.cli.add_command(payments_group)
    app.cli.add_command(staff_group)
    app.cli.add_command(partner_group)
    app.cli.add_command(outbox_group)
    app.cli.add_command(notices_group)
    app.cli.add_command(autorenew_group)
    app.cli.add_command(translations_group)
    for command in (import_group, rates_group, quote_command, demo_command, link_command):
        app.cli.add_command(command)
