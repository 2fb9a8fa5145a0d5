"""``circles ops status --check``: the rule over two readings, its lines and exit codes; ``--version``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import pytest
from click.testing import CliRunner

from services.cli import main
from services.ops.check import Severity, findings, report, verdict
from services.ops.status import ConsumedTopic, PipelineStatus, ServiceStatus, TopicState

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TOPIC = "circles.referrals.commands.v1"


def reading(
    at: datetime,
    *,
    lag: int = 0,
    committed: int | None = 10,
    members: int = 1,
    pending: int = 0,
    other_members: int = 1,
) -> PipelineStatus:
    """A reading with two services: referrals (consuming TOPIC, as described) and matching (healthy)."""
    consumed = ConsumedTopic(
        topic=TOPIC,
        end_offset=(committed or 0) + lag,
        committed=committed,
        lag=lag,
        partitions=[],
        dead_letters=pending,
        dead_letters_pending=pending,
        last_event_age_s=1.0,
    )
    referrals = ServiceStatus(
        service="referrals",
        group_id="circles-referrals",
        group_state="Stable" if members else "Empty",
        active_members=members,
        lag=lag,
        dead_letters_pending=pending,
        topics=[consumed],
    )
    matching = referrals.model_copy(
        update={
            "service": "matching",
            "group_id": "circles-matching",
            "group_state": "Stable" if other_members else "Empty",
            "active_members": other_members,
            "lag": 0,
            "dead_letters_pending": 0,
            "topics": [],
        }
    )
    topic = TopicState(
        topic=TOPIC,
        partitions=1,
        end_offset=consumed.end_offset,
        retained=consumed.end_offset,
        last_event_at=at,
        last_event_age_s=1.0,
        dead_letter_topic=TOPIC + ".dlq",
        dead_letters=pending,
        dead_letters_pending=pending,
    )
    return PipelineStatus(
        taken_at=at, topic_prefix="", services=[referrals, matching], topics=[topic], problems=[]
    )


LATER = T0 + timedelta(seconds=5)


def lines(first: PipelineStatus, second: PipelineStatus, **options: object) -> tuple[Severity, list[str]]:
    found = findings(first, second, **options)  # type: ignore[arg-type]
    return verdict(found), report(found, second, options.get("services", ()))  # type: ignore[arg-type]


def test_a_healthy_pipeline_is_one_ok_line() -> None:
    severity, text = lines(reading(T0, lag=3, committed=100), reading(LATER, lag=5, committed=200))
    assert severity is Severity.OK and len(text) == 1 and text[0].startswith("OK: referrals, matching")


def test_no_worker_is_critical_and_comes_first() -> None:
    severity, text = lines(reading(T0, pending=2), reading(LATER, members=0, pending=2))
    assert severity is Severity.CRITICAL
    assert text == [
        "CRITICAL: referrals: no worker running (group circles-referrals is Empty)",
        f"WARNING: {TOPIC}.dlq: 2 dead letter(s) not replayed",
    ]


def test_lag_growing_beyond_the_tolerance_warns() -> None:
    first, second = reading(T0, lag=20, committed=100), reading(LATER, lag=130, committed=150)
    assert lines(first, second)[0] is Severity.WARNING
    assert lines(first, second)[1] == [
        "WARNING: referrals: lag growing, 20 -> 130 in 5s (more written than processed)"
    ]
    assert lines(first, second, lag_tolerance=110)[0] is Severity.OK  # within the tolerance: jitter
    assert lines(first, second, lag_tolerance=0)[0] is Severity.WARNING


def test_lag_that_does_not_move_while_nothing_is_processed_warns() -> None:
    severity, text = lines(reading(T0, lag=7, committed=100), reading(LATER, lag=7, committed=100))
    assert severity is Severity.WARNING
    assert text == ["WARNING: referrals: lag 7 and nothing processed in 5s"]
    never_committed = lines(reading(T0, lag=7, committed=None), reading(LATER, lag=7, committed=None))
    assert never_committed[0] is Severity.WARNING


def test_a_check_of_named_services_ignores_the_others() -> None:
    first, second = reading(T0), reading(LATER, members=0, other_members=0)
    assert lines(first, second)[1] == [
        "CRITICAL: referrals: no worker running (group circles-referrals is Empty)",
        "CRITICAL: matching: no worker running (group circles-matching is Empty)",
    ]
    severity, text = lines(reading(T0), reading(LATER, other_members=0), services=("referrals",))
    assert severity is Severity.OK and text[0].startswith("OK: referrals:")


def test_no_broker_configured_is_unknown_and_an_unreachable_one_critical(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("CIRCLES_DATA_DIR", str(tmp_path))
    unknown = CliRunner().invoke(main, ["ops", "status", "--check", "--interval", "0.1"])
    assert unknown.exit_code == 3, unknown.output
    assert unknown.output.startswith("UNKNOWN: no Kafka broker") and len(unknown.output.splitlines()) == 1

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    critical = CliRunner().invoke(main, ["ops", "status", "--check", "--interval", "0.1"])
    assert critical.exit_code == 2, critical.output
    assert critical.output.strip() == "CRITICAL: cannot reach Kafka at 127.0.0.1:1"


def test_check_is_not_combined_with_watch_or_json() -> None:
    for extra in ("--watch", "--json"):
        result = CliRunner().invoke(main, ["ops", "status", "--check", extra])
        assert result.exit_code == 2 and "takes neither --watch nor --json" in result.output


def test_version_is_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"circles {version('circles')}"
