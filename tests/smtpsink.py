"""A real SMTP server on loopback for tests and benchmarks (aiosmtpd, in-process)."""
import asyncio
from email import message_from_bytes
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

from tests.pgserver import _free_port as free_port


class Handler:
    """Accepts everything, unless told to answer the next DATA commands with an error."""

    def __init__(self):
        self.messages = []
        self.refusals = []  # answers for the next DATA commands, e.g. "451 4.3.0 busy"
        self.delay = 0  # seconds to take over each message

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refusals:
            return self.refusals.pop(0)
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"

    def message_ids(self):
        return [message["Message-ID"] for message in self.messages]


class SmtpSink:
    def __init__(self, port=None):
        self.handler = Handler()
        self.port = port or free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
