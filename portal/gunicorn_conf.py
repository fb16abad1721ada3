"""gunicorn settings for the portal: ``gunicorn -c python:portal.gunicorn_conf
portal.wsgi:app``. Binds to ``GUNICORN_BIND`` (default 127.0.0.1:8000) with
``GUNICORN_WORKERS`` processes (default 2) of ``GUNICORN_THREADS`` threads (default 4),
and writes gunicorn's own lines in the
portal's format (``LOG_FORMAT=json``: one JSON object a line), access lines with renewal
link tokens cut out."""
import os

from portal.logs import log_config

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
logconfig_dict = log_config(os.environ.get("LOG_FORMAT", "text"))
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
accesslog = "-"
# Threads: a request waiting for the payment provider's deadline does not hold a worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
