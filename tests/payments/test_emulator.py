"""The local Stripe emulator listens on loopback only and starts with empty state."""
import os

import pytest
import stripe

from portal.payments.emulator import Emulator


def _listening_addresses(port):
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                addresses.append(address)
    return addresses


def test_emulator_binds_loopback_with_fresh_state():
    with Emulator() as first:
        client = stripe.StripeClient(first.secret_key, base_addresses={"api": first.api_base})
        client.v1.payment_intents.create(
            params={"amount": 100, "currency": "usd", "payment_method_types": ["card"]})
        assert _listening_addresses(first.port) == ["0100007F"]  # 127.0.0.1 only
        pid = first.process.pid
    with Emulator() as second:
        client = stripe.StripeClient(second.secret_key,
                                     base_addresses={"api": second.api_base})
        assert client.v1.payment_intents.list().data == []
    assert first.process is None
    with pytest.raises(ProcessLookupError):  # stopped by its process id
        os.kill(pid, 0)
