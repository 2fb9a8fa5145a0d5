"""How messages leave: email over SMTP and HMAC-signed webhooks to agency systems.

Each send returns a ``SendResult`` whose error is a short code (``http_500``, ``smtp_550``,
``connection_failed``, ``timeout``...): safe to log and store, because it never quotes what a server said
(a server's text can echo addresses or content).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

import aiohttp
import aiosmtplib

from services.notifications.domain.delivery import DeliveryEntry
from services.notifications.rendering import Rendered
from services.notifications.settings import NotificationsSettings
from services.runtime.destinations import DestinationRefused, check_url
from services.runtime.logs import get_logger
from services.runtime.resolver import GuardedResolver

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Circles-Signature"
EVENT_ID_HEADER = "X-Circles-Event-Id"
TEMPLATE_HEADER = "X-Circles-Template"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None
    permanent: bool = False
    """Retrying cannot help (e.g. the mailbox does not exist): give up at once."""


SENT = SendResult(ok=True)
Accepted = Callable[[], None]
"""Called the moment the receiving server has taken a message (the sent-journal records it)."""


# -- webhooks ------------------------------------------------------------------------------------------


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``, as agencies verify it (see contracts)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(header: str, body: bytes, secret: str, *, now: float, tolerance_s: float = 300) -> bool:
    """What a receiver does: recompute the HMAC and refuse old timestamps (replays)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance_s and hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSender:
    """POSTs signed JSON; a 2xx answer is delivery, anything else a failure to retry."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_s)
        self.limit = settings.send_concurrency
        self.destinations = settings.destinations()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.limit, resolver=GuardedResolver(self.destinations))
        self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self, url: str, body: bytes, secret: str, event_id: str, on_accepted: Accepted
    ) -> SendResult:
        """POST once. ``on_accepted`` runs the moment a 2xx status line arrives, before the rest of the
        response is read, to keep the window in which a crash cannot tell "sent" from "not sent" small."""
        assert self._session is not None, "WebhookSender.start() first"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "circles-notifications/1",
            SIGNATURE_HEADER: signature(secret, body, int(time.time())),
            EVENT_ID_HEADER: event_id,
        }
        try:
            check_url(url, self.destinations)
        except DestinationRefused as refused:
            log.warning("webhook_destination_refused", refused=str(refused))
            return SendResult(ok=False, error="destination_refused", permanent=True)
        accepted = False
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    accepted = True
                    on_accepted()
                    await response.read()
                    return SENT
                await response.read()
                return SendResult(ok=False, error=f"http_{response.status}")
        except (TimeoutError, aiohttp.ServerTimeoutError):
            error = SendResult(ok=False, error="timeout")
        except aiohttp.InvalidURL:
            error = SendResult(ok=False, error="invalid_url", permanent=True)
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError) as failed:
            cause = getattr(failed, "os_error", None)
            if isinstance(cause, DestinationRefused):  # the name resolved to a refused address
                log.warning("webhook_destination_refused", refused=str(cause))
                return SendResult(ok=False, error="destination_refused", permanent=True)
            error = SendResult(ok=False, error="connection_failed")
        except aiohttp.ServerDisconnectedError:
            error = SendResult(ok=False, error="http_disconnected")
        except aiohttp.ClientError:
            error = SendResult(ok=False, error="http_client_error")
        return SENT if accepted else error


# -- email ---------------------------------------------------------------------------------------------


class Mailer:
    """SMTP with STARTTLS or TLS and authentication when configured. A connection is reused for message
    after message (one per concurrent send, not one per message: opening one, with TLS and a login, cost
    more than the message) until ``close()``, which the worker calls at the end of each batch."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings
        address = parseaddr(settings.smtp_from)[1]
        self.sender = address
        self.domain = address.rpartition("@")[2] or "circles.invalid"
        self._idle: list[aiosmtplib.SMTP] = []
        self.connections_opened = 0

    def message(self, entry: DeliveryEntry, rendered: Rendered, now: datetime) -> EmailMessage:
        """The email. Its Message-ID comes from the notification id, so a copy sent again is recognisable."""
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = entry.recipient.endpoint
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<{entry.notification_id}@{self.domain}>"
        message[EVENT_ID_HEADER] = str(entry.notification_id)
        message[TEMPLATE_HEADER] = entry.template
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    def flatten(self, message: EmailMessage) -> bytes:
        return message.as_bytes(policy=SMTP_POLICY)

    def _client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        password = settings.smtp_password.get_secret_value()
        return aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=password if settings.smtp_username else None,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            cert_bundle=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
            timeout=settings.smtp_timeout_s,
        )

    async def send(self, raw: bytes, recipient: str, on_accepted: Accepted) -> SendResult:
        """One SMTP transaction, on an idle connection if there is one. ``on_accepted`` runs as soon as the
        server has taken the message (its reply to the end of DATA), to keep the in-doubt window small.
        An idle connection the server has closed meanwhile is replaced by a new one."""
        if self._idle:
            result = await self._transact(self._idle.pop(), raw, recipient, on_accepted, reused=True)
            if result is not None:
                return result
        return await self._transact(self._client(), raw, recipient, on_accepted, reused=False) or SendResult(
            ok=False, error="smtp_disconnected"
        )

    async def _transact(
        self, client: aiosmtplib.SMTP, raw: bytes, recipient: str, on_accepted: Accepted, *, reused: bool
    ) -> SendResult | None:
        """The result; ``None`` if a reused connection turned out to be closed (try a new one)."""
        try:
            if not reused:
                await client.connect()
                self.connections_opened += 1
            await client.sendmail(self.sender, [recipient], raw)
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [recipient.code for recipient in refused.recipients]
            code = codes[0] if codes else 550
            error = SendResult(ok=False, error=f"smtp_{code}", permanent=500 <= code < 600)
        except aiosmtplib.SMTPResponseException as failure:
            error = SendResult(ok=False, error=f"smtp_{failure.code}")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            error = SendResult(ok=False, error="timeout")
        except aiosmtplib.SMTPConnectError:
            error = SendResult(ok=False, error="connection_failed")
        except aiosmtplib.SMTPServerDisconnected:
            if reused:
                client.close()
                return None
            error = SendResult(ok=False, error="smtp_disconnected")
        except aiosmtplib.SMTPException:
            error = SendResult(ok=False, error="smtp_error")
        except OSError:
            error = SendResult(ok=False, error="connection_failed")
        except BaseException:
            client.close()
            raise
        else:
            on_accepted()
            self._idle.append(client)
            return SENT
        await _quit(client)  # after a failure the connection is not trusted with another message
        return error

    async def close(self) -> None:
        """Say goodbye on every idle connection (the end of a batch)."""
        idle, self._idle = self._idle, []
        for client in idle:
            await _quit(client)


async def _quit(client: aiosmtplib.SMTP) -> None:
    """QUIT, or just close if the server does not answer (the messages sent on it are taken already)."""
    try:
        if client.is_connected:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()
