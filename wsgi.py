"""WSGI entry point in a checkout: ``gunicorn wsgi:app`` (an installed portal:
``gunicorn portal.wsgi:app``). Configuration comes from the environment."""
from portal.wsgi import app  # noqa: F401
