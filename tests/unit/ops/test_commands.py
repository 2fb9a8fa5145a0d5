"""``circles ops`` refuses bad input with one line and exit status 1 (no broker needed to see it)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from services.cli import main


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["ops", "status", "--interval", "0"], "--interval must be more than 0 seconds"),
        (["ops", "dlq", "show", "circles.nope.v1"], "no dead-letter topic 'circles.nope.v1'"),
        (["ops", "dlq", "replay", "circles.referrals.state.v1"], "no dead-letter topic"),
        (["ops", "status"], "cannot reach Kafka at 127.0.0.1:1"),
    ],
)
def test_bad_input_gets_one_line_and_status_1(
    args: list[str], reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], result.output
