"""Client security: one helper at every aiokafka client, settings from CIRCLES_KAFKA_*, no password shown."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.runtime import kafka_security
from services.runtime.kafka_security import KafkaSecurity, KafkaSecurityError, security_options, using
from services.runtime.settings import RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}


def test_plaintext_adds_nothing() -> None:
    assert KafkaSecurity().client_options() == {}


def test_sasl_ssl_gives_scram_over_verified_tls() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", username="circles-matching", password=SecretStr("s3"))
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("circles-matching", "s3")
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_tls_alone_has_no_sasl() -> None:
    options = KafkaSecurity(protocol="SSL").client_options()
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options


@pytest.mark.parametrize(
    ("security", "message"),
    [
        (KafkaSecurity(protocol="SASL_SSL", username="u"), "CIRCLES_KAFKA_PASSWORD"),
        (KafkaSecurity(protocol="SSL", ca_file=Path("/nonexistent/ca.pem")), "does not exist"),
        (KafkaSecurity(protocol="SSL", cert_file=Path("/nonexistent/c.pem")), "go together"),
    ],
)
def test_unusable_settings_say_which_to_fix(security: KafkaSecurity, message: str) -> None:
    with pytest.raises(KafkaSecurityError, match=message):
        security.client_options()


def test_settings_come_from_the_environment_and_never_show_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CIRCLES_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CIRCLES_KAFKA_USERNAME", "circles-referrals")
    monkeypatch.setenv("CIRCLES_KAFKA_PASSWORD", "synthetic-secret-password")
    monkeypatch.setenv("CIRCLES_KAFKA_CA_FILE", str(tmp_path / "ca.pem"))
    settings = RuntimeSettings()
    security = settings.kafka_security()
    assert (security.protocol, security.username) == ("SASL_SSL", "circles-referrals")
    assert security.password.get_secret_value() == "synthetic-secret-password"
    assert security.ca_file == tmp_path / "ca.pem"
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(security), str(security)):
        assert "synthetic-secret-password" not in shown


def test_using_replaces_the_process_security_inside_only() -> None:
    before = security_options()
    with using(KafkaSecurity(protocol="SSL")):
        assert security_options()["security_protocol"] == "SSL"
    assert security_options() == before
    assert kafka_security.current_security() == RuntimeSettings().kafka_security()


def _client_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CLIENTS
    ]


def _secured(call: ast.Call) -> bool:
    return any(
        keyword.arg is None
        and isinstance(keyword.value, ast.Call)
        and isinstance(keyword.value.func, ast.Name)
        and keyword.value.func.id == "security_options"
        for keyword in call.keywords
    )


def test_every_kafka_client_of_the_services_is_secured_the_one_way() -> None:
    calls = {
        f"{path.relative_to(ROOT)}:{call.lineno}": _secured(call)
        for path in sorted((ROOT / "services").rglob("*.py"))
        for call in _client_calls(path)
    }
    assert len(calls) >= 9
    assert [where for where, secured in calls.items() if not secured] == []
