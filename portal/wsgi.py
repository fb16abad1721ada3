"""WSGI entry point of an installed portal: ``gunicorn portal.wsgi:app``.

A setting that is missing or malformed stops the start with one line naming it.
"""
import sys

from portal import create_app
from portal.errors import ConfigError

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"Error: {error}")
