"""The local Stripe emulator (``localstripe``) on loopback with fresh state.

localstripe's own command listens on every interface and keeps its state in a fixed
file under /tmp. ``python -m portal.payments.emulator --port N --state DIR`` serves the
same aiohttp application bound to 127.0.0.1 only, with its state file in ``DIR``;
:class:`Emulator` runs that in a subprocess, registers the portal's webhook and stops
it again by its process id.
"""
import argparse
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 60  # a busy machine can take long to import localstripe


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class Emulator:
    """A running localstripe: ``api_base``, test keys and a webhook secret."""

    secret_key = "sk_test_portal_emulator"
    publishable_key = "pk_test_portal_emulator"

    def __init__(self, port=None):
        self.port = port or free_port()
        self.api_base = f"http://{LOOPBACK}:{self.port}"
        self.webhook_secret = "whsec_" + secrets.token_hex(16)
        self.process = None
        self._state = None

    def start(self):
        self._state = tempfile.TemporaryDirectory(prefix="localstripe-")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portal.payments.emulator", "--port", str(self.port),
             "--state", self._state.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the Stripe emulator exited while starting")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the Stripe emulator did not start in time")

    def register_webhook(self, url, name="portal"):
        """Have the emulator deliver its events to ``url``, signed with our secret."""
        body = urllib.parse.urlencode({"url": url, "secret": self.webhook_secret}).encode()
        request = urllib.request.Request(f"{self.api_base}/_config/webhooks/{name}", data=body,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def config(self):
        """App settings that point the portal at this emulator."""
        return {
            "STRIPE_SECRET_KEY": self.secret_key,
            "STRIPE_PUBLISHABLE_KEY": self.publishable_key,
            "STRIPE_API_BASE": self.api_base,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
        }

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
        if self._state is not None:
            self._state.cleanup()
            self._state = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _die_with_parent():
    """Linux: the emulator ends when the process that started it ends, however it ends."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _keep_state_in(store, directory):
    """Point localstripe's store at ``directory`` instead of its fixed /tmp file."""
    path = Path(directory) / "localstripe.pickle"

    def dump_to_disk(self):
        with open(path, "wb") as handle:
            pickle.dump(dict(self), handle, protocol=pickle.HIGHEST_PROTOCOL)

    store.dump_to_disk = types.MethodType(dump_to_disk, store)
    store.clear()


def idempotent_requests(web):
    """An aiohttp middleware that answers a repeated POST with the same ``Idempotency-Key``
    as Stripe does (localstripe has no idempotency): the first answer again, or 400 when
    the repeat carries other parameters."""
    answers = {}

    @web.middleware
    async def middleware(request, handler):
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        sent = (request.path, await request.read())
        if key in answers:
            first, status, body, content_type = answers[key]
            if first != sent:
                return web.json_response({"error": {
                    "type": "idempotency_error", "message": "Keys for idempotent requests "
                    "can only be used with the same parameters they were first used with."}},
                    status=400)
            return web.Response(status=status, body=body, content_type=content_type)
        response = await handler(request)
        if response.status < 500 and getattr(response, "body", None) is not None:
            answers[key] = (sent, response.status, response.body, response.content_type)
        return response

    return middleware


def decline_like_stripe(payment_method):
    """Stripe declines its decline test cards (4000 0000 0000 0002 and the others for lost,
    stolen, expired cards, insufficient funds ...) when they are charged; localstripe only
    when one is attached to a customer, and charges them otherwise. Charging now declines
    every card that attaching declines, as well as those localstripe already declines."""
    charging_declined = payment_method._charging_is_declined

    def declined(self):
        return charging_declined(self) or self._attaching_is_declined()

    payment_method._charging_is_declined = declined


def serve(port, state_dir):
    import logging

    from aiohttp import web
    from localstripe import resources, server

    _keep_state_in(resources.store, state_dir)
    decline_like_stripe(resources.PaymentMethod)
    server.app.middlewares.append(idempotent_requests(web))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(server.app, host=LOOPBACK, port=port, print=None, access_log=None)


def main(argv=None):
    parser = argparse.ArgumentParser(description="localstripe on 127.0.0.1 with fresh state")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True, help="directory for the state file")
    args = parser.parse_args(argv)
    serve(args.port, args.state)


if __name__ == "__main__":
    main()
