"""Real receivers for the notifications tests, in the test process on 127.0.0.1: an SMTP server
(aiosmtpd) and an HTTP webhook receiver (aiohttp), each in its own thread with its own event loop.

Both record everything they are sent, raw, so tests can count deliveries and search the bytes. Their
behaviour can be set per recipient: refuse a mailbox (SMTP 550), answer 500 to the first N deliveries of
each event id, or answer 500 always.
"""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.processes import free_port


def wait_until(predicate: Callable[[], bool], seconds: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Mail:
    recipients: tuple[str, ...]
    raw: bytes
    message: Message

    @property
    def event_id(self) -> str:
        return str(self.message["X-Circles-Event-Id"])

    @property
    def template(self) -> str:
        return str(self.message["X-Circles-Template"])

    def text(self) -> str:
        for part in self.message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode()
        raise AssertionError("no text part")


class _SmtpHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.sink.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        mail = Mail(tuple(envelope.rcpt_tos), raw, email.message_from_bytes(raw))
        with self.sink.lock:
            self.sink.mails.append(mail)
        return "250 Message accepted for delivery"


@dataclass
class SmtpSink:
    """A real SMTP server. ``stop()`` and ``start()`` again on the same port simulate an outage."""

    port: int = field(default_factory=free_port)
    refused: set[str] = field(default_factory=set)
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls: ssl.SSLContext | None = None
    """with ``implicit_tls`` false: offer STARTTLS and require it, and require AUTH, with ``login``"""
    implicit_tls: bool = False
    login: tuple[str, str] | None = None
    _controller: Controller | None = None

    def start(self) -> SmtpSink:
        options: dict[str, Any] = {}
        if self.tls is not None and self.implicit_tls:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here the whole connection is TLS already
            options |= {"ssl_context": self.tls, "auth_require_tls": False}
        elif self.tls is not None:
            options |= {"tls_context": self.tls, "require_starttls": True}
        if self.login is not None:
            options |= {"auth_required": True, "authenticator": self._authenticate}
        self._controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self, to: str | None = None, template: str | None = None) -> list[Mail]:
        with self.lock:
            return [
                mail
                for mail in self.mails
                if (to is None or to in mail.recipients) and (template is None or mail.template == template)
            ]

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            counts = Counter(mail.event_id for mail in self.mails)
        return {event_id: n for event_id, n in counts.items() if n > 1}


@dataclass(frozen=True)
class Delivery:
    hook: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event_id(self) -> str:
        return self.headers.get("X-Circles-Event-Id", "")


@dataclass
class WebhookSink:
    """A real HTTP receiver at ``http://127.0.0.1:<port>/hooks/<name>``."""

    port: int = field(default_factory=free_port)
    fail_first: dict[str, int] = field(default_factory=dict)
    """hook name → answer 500 to the first N deliveries of each event id"""
    always_fail: set[str] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    async def _receive(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        event_id = request.headers.get("X-Circles-Event-Id", "")
        with self.lock:
            seen = sum(1 for d in self.deliveries if d.hook == name and d.event_id == event_id)
            failing = name in self.always_fail or seen < self.fail_first.get(name, 0)
            status = 500 if failing else 204
            self.deliveries.append(Delivery(name, dict(request.headers), body, status))
        return web.Response(status=status)

    def start(self) -> WebhookSink:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/hooks/{name}", self._receive)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            ready.set()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(serve())
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="webhook-sink", daemon=True)
        self._thread.start()
        assert ready.wait(10), "webhook receiver did not start"
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)

    def received(self, hook: str | None = None, ok: bool | None = None) -> list[Delivery]:
        with self.lock:
            return [
                d
                for d in self.deliveries
                if (hook is None or d.hook == hook) and (ok is None or (200 <= d.status < 300) == ok)
            ]

    def duplicates(self) -> dict[str, int]:
        """Event ids accepted (2xx) more than once."""
        with self.lock:
            counts = Counter(d.event_id for d in self.deliveries if 200 <= d.status < 300)
        return {event_id: n for event_id, n in counts.items() if n > 1}
