"""The shared runtime's pure parts: log redaction, safe error text, dead-letter headers, ids, clock."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber, ProducerFenced
from pydantic import ValidationError

from schemas.events.referrals import ReferralWithdrawn
from schemas.partner_api import ReferralSubmission
from schemas.topics import REFERRALS_STATE
from services.runtime import worker as worker_module
from services.runtime.clock import FileClock, FixedClock, clock_from_setting
from services.runtime.deadletter import (
    MAX_VALUE,
    VALUE_DROPPED,
    dead_letter_headers,
    original_headers,
    safe_error,
)
from services.runtime.ids import derive_id
from services.runtime.kafka import Publisher, RenewingProducer
from services.runtime.logs import configure_logging, get_logger, log_context
from services.runtime.settings import RuntimeSettings
from services.runtime.tables import StateTable
from services.runtime.worker import StreamWorker, UnitOfWork
from tests.samples import sample, submission_body


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    looked_up = logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = looked_up


def test_logs_are_json_with_correlation_ids_and_no_personal_values(restore_logging) -> None:
    stream = io.StringIO()
    configure_logging("tests", stream=stream)
    log = get_logger("tests")
    with log_context(correlation_id="corr-42", referral_id="r-1"):
        log.info("submitted", given_name="Testy", date_of_birth="1979-03-02")
        logging.getLogger("aiokafka.something").warning("library line %s", 1)
    leaky = submission_body(core_member__pnc_number="PNC-LEAK")
    try:
        ReferralSubmission.model_validate(leaky)
    except ValidationError:
        log.exception("validation failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["correlation_id"] == "corr-42" and lines[0]["service"] == "tests"
    assert lines[0]["given_name"] == "[redacted]" and lines[0]["date_of_birth"] == "[redacted]"
    assert lines[1]["event"] == "library line 1"
    # exactly these fields: none of what logging no longer looks up per line (caller, thread, process)
    common = {"event", "level", "logger", "service", "timestamp", "correlation_id", "referral_id"}
    assert set(lines[1]) == common
    assert set(lines[0]) == common | {"given_name", "date_of_birth"}
    assert "PNC-LEAK" not in stream.getvalue()
    assert "Testy" not in stream.getvalue()


def test_safe_error_never_repeats_an_unknown_exception_message() -> None:
    try:
        raise KeyError("Testy Fictionalperson")
    except KeyError as error:
        text = safe_error(error)
    assert text.startswith("KeyError at test_runtime.py:")
    assert "Testy" not in text


def test_safe_error_lists_every_field_of_a_validation_error_without_values() -> None:
    with pytest.raises(ValidationError) as caught:
        ReferralSubmission.model_validate(
            submission_body(core_member__pnc_number="PNC-LEAK", risk__level="unknown")
        )
    text = safe_error(caught.value)
    assert "core_member.pnc_number" in text and "risk.level" in text and "PNC-LEAK" not in text


def test_dead_letter_headers_keep_the_original_and_say_why() -> None:
    headers = dead_letter_headers(
        [("ce_id", b"1"), ("dlq_error", b"old")],
        error="bad",
        service="referrals",
        topic="t",
        partition=2,
        offset=7,
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    as_dict = dict(headers)
    assert (
        as_dict["dlq_error"] == b"bad" and as_dict["dlq_offset"] == b"7" and as_dict["dlq_partition"] == b"2"
    )
    assert as_dict["dlq_service"] == b"referrals" and as_dict["dlq_topic"] == b"t"
    assert original_headers(headers) == [("ce_id", b"1")]


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derive_id("a", 1) == derive_id("a", 1)
    assert derive_id("a", 1) != derive_id("a", 2)
    assert derive_id("ab", "c") != derive_id("a", "bc")


def test_file_clock_moves_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "now"
    clock = clock_from_setting(f"file:{path}")
    assert isinstance(clock, FileClock)
    path.write_text("2027-06-01T09:00:00")
    assert clock.now() == datetime(2027, 6, 1, 9, tzinfo=UTC)
    path.write_text("2027-07-01T09:00:00+00:00")
    assert clock.now().month == 7
    with pytest.raises(ValueError, match="CIRCLES_CLOCK"):
        clock_from_setting("tomorrow")


async def test_what_a_process_publishes_is_dated_by_its_clock(tmp_path: Path) -> None:
    """A rehearsal's moved clock (``CIRCLES_CLOCK=file:``) dates the records too, not only the deadlines: a
    circle formed, a webhook's ``occurred_at`` and a referral's receipt follow the envelope's time (walking
    the circle's life on 3 December 2026, they said the real day while the clock said three days later)."""
    moved = datetime(2027, 6, 1, 9, tzinfo=UTC)
    event = sample(ReferralWithdrawn)
    publisher = Publisher("127.0.0.1:9", "/tests", clock=FixedClock(moved))
    assert publisher.envelope(event, "c").time == moved
    given = datetime(2026, 1, 2, tzinfo=UTC)
    assert publisher.envelope(event, "c", time=given).time == given  # a sample's own time stands
    uow = UnitOfWork(producer=None, source="/tests", clock=FixedClock(moved))
    assert uow.emit(event, "t", event_id=derive_id("e"), correlation_id="c").time == moved
    (tmp_path / "clock").write_text(moved.isoformat())
    worker = StreamWorker("tests", RuntimeSettings(clock=f"file:{tmp_path / 'clock'}", data_dir=tmp_path))
    worker._producer = RenewingProducer(lambda: None, "tests")  # never started: nothing is sent
    assert worker._unit().emit(event, "t", event_id=derive_id("f"), correlation_id="c").time == moved
    real = UnitOfWork(producer=None, source="/tests").emit(
        event, "t", event_id=derive_id("g"), correlation_id="c"
    )
    assert abs((real.time - datetime.now(UTC)).total_seconds()) < 60  # no clock given: the real one


def test_a_missing_java_or_maven_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.kafka_broker import local_kafka

    monkeypatch.setattr(local_kafka.shutil, "which", lambda name: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(local_kafka.KafkaSetupError) as caught:
        local_kafka.ensure_jars("9.9.9")
    message = str(caught.value)
    assert "java and mvn not found on PATH" in message and "apt-get install" in message
    assert "\n" not in message


def test_every_service_reads_its_settings_from_circles_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.coordinator.settings import CoordinatorSettings
    from services.matching.settings import MatchingSettings
    from services.notifications.settings import NotificationsSettings
    from services.referrals.settings import ReferralsSettings

    monkeypatch.setenv("CIRCLES_TOPIC_PREFIX", "p.")
    monkeypatch.setenv("CIRCLES_DECIDE_WITHIN_DAYS", "7")
    for settings in (ReferralsSettings(), MatchingSettings(), NotificationsSettings(), CoordinatorSettings()):
        assert settings.topic_prefix == "p.", type(settings).__name__
    assert NotificationsSettings().service_levels().decide_within_days == 7
    assert CoordinatorSettings().service_levels().decide_within_days == 7


async def test_a_table_holding_no_partition_recovers_without_a_consumer() -> None:
    """A worker given none of a table's partitions (the hot-standby matching worker) recovers nothing and
    opens no consumer: aiokafka's stop() right after start() raised CancelledError and killed it."""
    table: StateTable[ReferralSubmission] = StateTable("t", ReferralSubmission, REFERRALS_STATE)
    assert await table.recover("127.0.0.1:9", set()) == 0  # port 9: a consumer would fail to connect
    assert table.held == frozenset()


async def test_a_publisher_with_a_timeout_gives_up_with_a_kafka_error() -> None:
    """An API's publish must not wait for the producer's own 30 s while the broker is away: it gives up
    with a KafkaError, which the problem handlers answer with 503."""

    class Stuck:
        async def send(self, *args: object, **kwargs: object) -> asyncio.Future[object]:
            return asyncio.get_running_loop().create_future()  # never acknowledged

    publisher = Publisher("127.0.0.1:9", "/tests", timeout_s=0.05)
    publisher._producer = Stuck()
    event = sample(ReferralWithdrawn)
    with pytest.raises(KafkaTimeoutError):
        await publisher.publish(event, publisher.envelope(event, "c"))


async def test_a_dead_letter_too_large_to_keep_goes_without_its_value() -> None:
    """A dead letter over ``MAX_VALUE`` (a near-1 MiB record, sealed whole it is 1.8 MB) stopped its worker
    at every restart (MessageSizeTooLargeError); it keeps its key, headers and reason, and says how large
    the value was."""
    uow = UnitOfWork(producer=None, source="/tests")  # _encode does not produce
    headers = dead_letter_headers([], error="not JSON", service="s", topic="t", partition=0, offset=1)
    uow.emit_raw("t.dlq", b"k", b"x" * (MAX_VALUE + 1), headers)
    uow.emit_raw("t.dlq", b"k", b"x" * MAX_VALUE, headers)
    dropped, kept = [await uow._encode(staged) for staged in uow._records]
    assert dropped == ("t.dlq", b"k", None, [*headers, (VALUE_DROPPED, b"1000001")])
    assert kept == ("t.dlq", b"k", b"x" * MAX_VALUE, headers)


class FailingProducer:
    """Stands in for aiokafka's producer after it failed for good, as a batch refused (the future) or as a
    sender that has stopped (send itself); or for a healthy one (``fails=None``)."""

    def __init__(self, fails: str | None) -> None:
        self.fails = fails
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, **_: object) -> asyncio.Future[str]:
        if self.fails == "send":
            raise ProducerFenced()
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if self.fails == "batch":
            asyncio.get_running_loop().call_soon(future.set_exception, OutOfOrderSequenceNumber())
        else:
            asyncio.get_running_loop().call_soon(future.set_result, topic)
        return future


async def test_a_producer_failed_for_good_is_renewed_for_the_next_send() -> None:
    """After a broker outage longer than its request timeout, aiokafka's idempotent producer refused every
    batch (OutOfOrderSequenceNumber), and the partner API answered 503 until it was restarted."""
    made: list[FailingProducer] = []
    outcomes = iter(["batch", "send", None])

    def factory() -> FailingProducer:
        made.append(FailingProducer(next(outcomes)))
        return made[-1]

    renewing = RenewingProducer(factory, "test")
    await renewing.start()
    with pytest.raises(OutOfOrderSequenceNumber):
        await (await renewing.send("t", b"v", key=b"k"))
    with pytest.raises(ProducerFenced):
        await renewing.send("t", b"v", key=b"k")
    assert await (await renewing.send("t", b"v", key=b"k")) == "t"
    assert await (await renewing.send("t", b"v", key=b"k")) == "t"
    assert len(made) == 3 and made[0].stopped and made[1].stopped and not made[2].stopped


async def test_a_shutdown_step_that_never_ends_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a long broker outage a failed worker waited forever in its producer's stop() (flushing a batch
    aiokafka retries without end), neither consuming nor exiting; each step is now bounded."""
    monkeypatch.setattr(worker_module, "SHUTDOWN_STEP_S", 0.05)
    started = time.monotonic()
    await worker_module._bounded(asyncio.Event().wait(), "producer")
    assert time.monotonic() - started < 1
