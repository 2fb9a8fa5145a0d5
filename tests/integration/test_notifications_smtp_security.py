"""Email with STARTTLS or TLS and authentication, against a real SMTP server (aiosmtpd) with a
self-signed certificate made for the test: the mailer sends only when it can verify the server and log in."""

from __future__ import annotations

import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.events.notifications import NotificationRequested
from services.notifications.channels import Mailer
from services.notifications.domain.delivery import intent
from services.notifications.rendering import render
from services.notifications.settings import NotificationsSettings
from tests.notification_sinks import SmtpSink
from tests.samples import NOW, sample

pytestmark = [
    pytest.mark.integration,
    # aiosmtpd's warning is about STARTTLS; with implicit TLS the whole connection is encrypted
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]
LOGIN = ("circles", "synthetic-password")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


@pytest.fixture(params=["starttls", "tls"])
def server(request: pytest.FixtureRequest, certificate: tuple[Path, ssl.SSLContext]) -> Iterator[SmtpSink]:
    sink = SmtpSink(tls=certificate[1], implicit_tls=request.param == "tls", login=LOGIN).start()
    yield sink
    sink.stop()


def mailer(sink: SmtpSink, ca: Path | None, **overrides: object) -> Mailer:
    values: dict[str, object] = {
        "smtp_port": sink.port,
        "smtp_security": "tls" if sink.implicit_tls else "starttls",
        "smtp_username": LOGIN[0],
        "smtp_password": LOGIN[1],
        "smtp_ca_file": ca,
        "smtp_timeout_s": 5,
    }
    values.update(overrides)
    return Mailer(NotificationsSettings.model_validate(values))


async def send(client: Mailer) -> tuple[bool, str | None, list[str]]:
    request = sample(NotificationRequested).model_copy(update={"notification_id": uuid.uuid4()})
    entry = intent(None, request, 1, "corr", NOW)
    accepted: list[str] = []
    raw = client.flatten(client.message(entry, render(entry.template, entry.context), NOW))
    result = await client.send(raw, entry.recipient.endpoint, lambda: accepted.append("yes"))
    return result.ok, result.error, accepted


async def test_mail_goes_over_tls_with_authentication(
    server: SmtpSink, certificate: tuple[Path, ssl.SSLContext]
) -> None:
    assert await send(mailer(server, certificate[0])) == (True, None, ["yes"])
    [mail] = server.received()
    assert mail.recipients == ("mappa.unit@example.org",) and mail.template == "referral_received"


async def test_a_wrong_password_an_unverifiable_server_or_no_tls_is_refused(
    server: SmtpSink, certificate: tuple[Path, ssl.SSLContext]
) -> None:
    ok, error, accepted = await send(mailer(server, certificate[0], smtp_password="wrong"))
    assert (ok, error, accepted) == (False, "smtp_535", [])
    ok, error, _ = await send(mailer(server, None))  # the self-signed certificate is not trusted
    assert not ok and error in {"connection_failed", "smtp_error"}
    if not server.implicit_tls:
        ok, error, _ = await send(mailer(server, None, smtp_security="none", smtp_username=""))
        assert (ok, error) == (False, "smtp_530")  # the server insists on STARTTLS
    assert server.received() == []
