"""WSGI entry point of an installed portal: ``gunicorn portal.wsgi:app``.

A setting that is missing or malformed stops the start with one line naming it. The
exit status is 3, which gunicorn reads as "the worker cannot boot" and shuts down,
instead of starting the same doomed worker again and again.
"""
import sys

from portal import create_app
from portal.errors import ConfigError

#: gunicorn's code for a worker that failed to boot (its arbiter then stops).
BOOT_FAILURE = 3

try:
    app = create_app()
except ConfigError as error:
    print(f"Error: {error}", file=sys.stderr)
    sys.exit(BOOT_FAILURE)
