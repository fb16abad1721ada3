"""Throttling failed sign-ins, in the shared rate-limit store (every worker counts).

Failures are counted per address *and* client: after five wrong passwords from one client
for one address, that client must wait 15 minutes before it may try that address again,
while the staff member signs in from their own machine as usual. A client that fails
for many addresses is held back as well. Nothing here locks an account: a stranger who
guesses cannot lock the desk out.
"""
from limits import parse

from portal.logs import LOGGER
from portal.web import limiter

PER_ADDRESS_AND_CLIENT = parse("5 per 15 minutes")
PER_CLIENT = parse("20 per 15 minutes")
NAMESPACE = "staff-sign-in"


def _windows(email, client):
    return ((PER_ADDRESS_AND_CLIENT, (NAMESPACE, email, client)),
            (PER_CLIENT, (NAMESPACE, client)))


def held_back(email, client):
    """Whether this client may not try this address now."""
    return _tolerant(lambda: any(not limiter.limiter.test(item, *keys)
                                 for item, keys in _windows(email, client)), False)


def count_failure(email, client):
    _tolerant(lambda: [limiter.limiter.hit(item, *keys)
                       for item, keys in _windows(email, client)], None)


def clear_failures(email, client):
    item, keys = _windows(email, client)[0]
    _tolerant(lambda: limiter.limiter.clear(item, *keys), None)


def _tolerant(action, otherwise):
    """A fault of the counters' store (database or Redis down) must not stop sign-in."""
    try:
        return action()
    except Exception as error:  # noqa: BLE001  (any store, any driver)
        LOGGER.warning("sign-in throttle unavailable: %s", error)
        return otherwise
