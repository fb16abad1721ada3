"""Broker fixtures: a throwaway Redis on loopback (tests/redisserver.py), a PostgreSQL
database whose commits are real, and real worker processes (tests/celeryworkers.py)."""
import os
import time

import pytest

from portal.extensions import db
from portal.markets.services import seed_launch_dates
from tests.celeryworkers import Workers
from tests.conftest import BACKENDS, make_app, throwaway_server
from tests.redisserver import RedisServer

#: A task taken by a worker that died is given to another one after this many seconds.
VISIBILITY_TIMEOUT = 5


@pytest.fixture(scope="session")
def redis_server():
    yield from throwaway_server(RedisServer(), "redis-server")


@pytest.fixture
def broker_app(request, tmp_path, redis_server):
    """The app with a broker, on a PostgreSQL database of its own (emptied afterwards),
    and the settings a worker of this app needs."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not among the test backends")
    server = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("needs the throwaway PostgreSQL server")
    name = f"portal_workers_{os.getpid()}"
    settings = {
        "DATABASE_URL": server.create_database(name),
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_VISIBILITY_TIMEOUT": VISIBILITY_TIMEOUT,
        "SECRET_KEY": "test-secret",
        "PORTAL_BASE_URL": "http://127.0.0.1:5000",
    }
    app = make_app(settings["DATABASE_URL"], tmp_path, **settings)
    app.config["WORKER_ENVIRONMENT"] = settings
    with app.app_context():
        db.create_all()
        seed_launch_dates()
        db.session.commit()
        flush_broker(app)
    yield app
    with app.app_context():
        flush_broker(app)
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def flush_broker(app):
    """Empty the broker, so no task of one test reaches the workers of the next."""
    with app.extensions["celery"].connection_for_write() as connection:
        connection.default_channel.client.flushdb()


@pytest.fixture
def workers(broker_app):
    """``workers(count, **settings)``: start that many worker processes of the app."""
    started = []

    def start(count, **settings):
        group = Workers(count, {**broker_app.config["WORKER_ENVIRONMENT"], **settings})
        started.append(group.start())
        return group

    yield start
    for group in started:
        group.stop()


def wait_for(condition, timeout, what, workers=None, interval=0.2):
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if workers is not None and not workers.alive():
            pytest.fail(f"every worker has stopped\n{workers.output()[-4000:]}")
        if time.monotonic() > deadline:
            detail = f"\n--- worker output ---\n{workers.output()[-4000:]}" if workers else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)
