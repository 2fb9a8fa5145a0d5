"""Webhook destinations (issue 14, finding 7): https only, never this host or a private network unless a
setting allows; checked when an agency is registered, before each delivery and on every address a name
resolves to (a refused destination is dead-lettered at once, not retried)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from services.cli import main
from services.notifications.channels import WebhookSender
from services.notifications.settings import NotificationsSettings
from services.runtime.destinations import DestinationPolicy, DestinationRefused, check_url
from services.runtime.resolver import GuardedResolver

STRICT = DestinationPolicy()
DEV = DestinationPolicy(allow_loopback_http=True)
PRIVATE = DestinationPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("url", "policy", "refused"),
    [
        ("https://hooks.agency.example.org/circles", STRICT, None),
        ("https://203.0.113.9/hook", STRICT, "private"),  # documentation range: not a public address
        ("https://8.8.8.8/hook", STRICT, None),
        ("http://hooks.agency.example.org/circles", STRICT, "https"),
        ("ftp://hooks.agency.example.org/", STRICT, "https"),
        ("https://user:pw@hooks.agency.example.org/", STRICT, "user name"),
        ("https:///nohost", STRICT, "host"),
        ("https://127.0.0.1:8443/hook", STRICT, "loopback"),
        ("https://localhost/hook", STRICT, "loopback"),
        ("https://[::1]/hook", STRICT, "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", STRICT, "loopback"),
        ("https://10.1.2.3/hook", STRICT, "private"),
        ("https://192.168.0.10/hook", STRICT, "private"),
        ("https://172.16.5.5/hook", STRICT, "private"),
        ("https://169.254.169.254/latest/meta-data", PRIVATE, "no public"),  # cloud metadata, never
        ("https://0.0.0.0/hook", DEV, "no public"),
        ("https://10.1.2.3/hook", PRIVATE, None),
        ("http://10.1.2.3/hook", PRIVATE, "https"),
        ("http://127.0.0.1:9000/hooks/a", DEV, None),
        ("http://localhost:9000/hooks/a", DEV, None),
        ("http://hooks.agency.example.org/", DEV, "https"),  # plain http to loopback only
    ],
)
def test_webhook_urls(url: str, policy: DestinationPolicy, refused: str | None) -> None:
    if refused is None:
        check_url(url, policy)
    else:
        with pytest.raises(DestinationRefused, match=refused):
            check_url(url, policy)


class Fixed:
    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[dict[str, Any]]:
        return [{"hostname": host, "host": self.address, "port": port, "family": 2, "proto": 0, "flags": 0}]


async def test_a_name_resolving_to_a_private_address_is_refused_where_it_connects() -> None:
    resolver = GuardedResolver(STRICT)
    resolver._resolver = Fixed("10.0.0.5")  # type: ignore[assignment]
    with pytest.raises(DestinationRefused, match="private"):
        await resolver.resolve("hooks.agency.example.org", 443)
    resolver._resolver = Fixed("93.184.215.14")  # type: ignore[assignment]
    assert (await resolver.resolve("hooks.agency.example.org", 443))[0]["host"] == "93.184.215.14"


async def receiver() -> tuple[web.AppRunner, int, list[bytes]]:
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1]), received


async def test_delivery_to_this_host_is_refused_for_good_unless_allowed(tmp_path: Path) -> None:
    runner, port, received = await receiver()
    url = f"http://127.0.0.1:{port}/hook"
    try:
        for allowed, expected in ((False, "destination_refused"), (True, None)):
            settings = NotificationsSettings(data_dir=tmp_path, webhook_allow_loopback_http=allowed)
            sender = WebhookSender(settings)
            await sender.start()
            try:
                result = await sender.send(url, b"{}", "secret", "event-1", lambda: None)
                named = await sender.send(
                    f"http://localhost:{port}/hook", b"{}", "s", "event-2", lambda: None
                )
            finally:
                await sender.stop()
            assert result.error == expected and named.error == expected
            assert result.permanent == (expected is not None)
        assert len(received) == 2  # only when allowed
    finally:
        await runner.cleanup()


def test_registering_an_agency_refuses_a_plain_http_or_private_webhook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CIRCLES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached: refused first
    monkeypatch.delenv("CIRCLES_WEBHOOK_ALLOW_LOOPBACK_HTTP", raising=False)
    for url, reason in (
        ("http://hooks.agency.example.org/", "must be https"),
        ("https://10.0.0.8/hook", "private"),
        ("http://127.0.0.1:9000/hook", "must be https"),
    ):
        refused = CliRunner().invoke(
            main, ["agency", "add", "synthetic-agency", "--name", "Synthetic", "--webhook-url", url]
        )
        assert refused.exit_code != 0 and reason in refused.output, refused.output
