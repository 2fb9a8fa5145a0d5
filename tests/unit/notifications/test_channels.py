"""Email delivery's connections (issue 13: one SMTP connection per email capped the pipeline at about 100
emails/s) and the templates compiled once, against a real local SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from unittest import mock

import jinja2

from schemas.events.notifications import NotificationRequested
from services.notifications.channels import Mailer
from services.notifications.domain.delivery import intent
from services.notifications.rendering import render
from services.notifications.settings import NotificationsSettings
from tests.notification_sinks import SmtpSink
from tests.samples import sample

NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


def emails(mailer: Mailer, count: int) -> list[tuple[bytes, str]]:
    made = []
    for _ in range(count):
        request = sample(NotificationRequested).model_copy(update={"notification_id": uuid.uuid4()})
        entry = intent(None, request, 1, "corr", NOW)
        raw = mailer.flatten(mailer.message(entry, render(entry.template, entry.context), NOW))
        made.append((raw, entry.recipient.endpoint))
    return made


async def test_a_batch_reuses_its_connections_and_a_closed_one_is_replaced() -> None:
    sink = SmtpSink().start()
    mailer = Mailer(NotificationsSettings.model_validate({"smtp_host": "127.0.0.1", "smtp_port": sink.port}))
    try:
        gate = asyncio.Semaphore(4)
        accepted: list[int] = []

        async def one(raw: bytes, to: str) -> bool:
            async with gate:
                return (await mailer.send(raw, to, lambda: accepted.append(1))).ok

        assert all(await asyncio.gather(*(one(raw, to) for raw, to in emails(mailer, 20))))
        assert len(accepted) == 20 and len(sink.received()) == 20
        assert mailer.connections_opened <= 4  # one per concurrent send, not one per email
        raw, to = emails(mailer, 1)[0]
        sink.stop()  # the server goes away with connections idle, and comes back
        sink.start()
        assert (await mailer.send(raw, to, lambda: accepted.append(1))).ok
        assert len(accepted) == 21 and len(sink.received()) == 21
        await mailer.close()
        opened = mailer.connections_opened
        assert (await mailer.send(raw, to, lambda: None)).ok and mailer.connections_opened == opened + 1
        await mailer.close()
    finally:
        sink.stop()


def test_templates_are_compiled_once_not_per_message() -> None:
    request = sample(NotificationRequested)
    entry = intent(None, request, 1, "corr", NOW)
    first = render(entry.template, entry.context)
    with mock.patch.object(jinja2.Environment, "_compile", side_effect=AssertionError("compiled again")):
        assert render(entry.template, entry.context) == first
