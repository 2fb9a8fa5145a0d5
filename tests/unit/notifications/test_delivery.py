"""The delivery log's state machine, back-off, the sent-journal and the signature: the rules that make
"every message once" hold."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from schemas.events.notifications import (
    DeliveryRetryDue,
    NotificationDeadLettered,
    NotificationDelivered,
    NotificationRequested,
)
from services.notifications.channels import signature, verify_signature
from services.notifications.domain.backoff import Backoff
from services.notifications.domain.delivery import (
    DeliveryStatus,
    attempt_due,
    failed,
    intent,
    outcome,
    retry_due,
    sent,
)
from services.notifications.journal import SentJournal
from tests.samples import NOW, sample

REQUEST = sample(NotificationRequested)
BACKOFF = Backoff(base_s=40, cap_s=3600, max_attempts=3)


def test_a_new_request_is_attempt_one_and_a_duplicate_is_nothing() -> None:
    assert attempt_due(None, REQUEST) == 1
    pending = intent(None, REQUEST, 1, "corr", NOW)
    assert pending.status is DeliveryStatus.PENDING and pending.attempts == 1
    assert attempt_due(pending, REQUEST) == 1  # in doubt: the journal decides
    assert attempt_due(sent(pending, NOW), REQUEST) is None
    assert attempt_due(failed(pending, "http_500", False, BACKOFF, NOW), REQUEST) is None
    assert attempt_due(None, DeliveryRetryDue(notification_id=REQUEST.notification_id, attempt=2)) is None


def test_failures_are_retried_with_growing_waits_then_dead_lettered() -> None:
    entry = failed(intent(None, REQUEST, 1, "corr", NOW), "http_500", False, BACKOFF, NOW)
    assert entry.status is DeliveryStatus.FAILED and entry.last_error == "http_500"
    assert entry.next_attempt_at is not None and NOW + timedelta(
        seconds=20
    ) <= entry.next_attempt_at <= NOW + timedelta(seconds=40)
    assert retry_due(entry, NOW) is None
    retry = retry_due(entry, entry.next_attempt_at)
    assert retry == DeliveryRetryDue(notification_id=REQUEST.notification_id, attempt=2)
    assert attempt_due(entry, retry) == 2
    assert attempt_due(entry, DeliveryRetryDue(notification_id=REQUEST.notification_id, attempt=3)) is None
    second = failed(intent(entry, None, 2, "corr", NOW), "http_500", False, BACKOFF, NOW)
    assert second.status is DeliveryStatus.FAILED and second.attempts == 2
    assert attempt_due(second, retry) is None  # that retry was done already
    third = failed(intent(second, None, 3, "corr", NOW), "http_503", False, BACKOFF, NOW)
    assert third.status is DeliveryStatus.DEAD and third.last_error == "http_503" and third.dead_at == NOW
    dead = outcome(third)
    assert isinstance(dead, NotificationDeadLettered) and dead.reason == "http_503" and dead.attempts == 3


def test_a_permanent_failure_is_dead_at_once_and_a_success_is_delivered() -> None:
    pending = intent(None, REQUEST, 1, "corr", NOW)
    assert failed(pending, "smtp_550", True, BACKOFF, NOW).status is DeliveryStatus.DEAD
    delivered = outcome(sent(pending, NOW))
    assert isinstance(delivered, NotificationDelivered) and delivered.attempts == 1
    assert delivered.recipient_id == REQUEST.recipient.id and delivered.channel is REQUEST.recipient.channel


@given(st.integers(min_value=1, max_value=30), st.uuids())
def test_backoff_is_exponential_with_jitter_and_capped(attempt: int, key: object) -> None:
    backoff = Backoff(base_s=40, cap_s=3600, max_attempts=8)
    delay = backoff.delay(attempt, str(key))
    ceiling = min(3600.0, 40.0 * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling
    assert delay == backoff.delay(attempt, str(key))  # the same after a crash


def test_first_retry_is_within_a_minute_and_jitter_spreads_retries() -> None:
    backoff = Backoff()
    delays = {round(backoff.delay(1, f"n{i}"), 3) for i in range(50)}
    assert max(delays) < 60 and len(delays) > 40


def test_the_journal_survives_a_restart_and_ignores_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "j" / "sent-journal"
    journal = SentJournal(path)
    journal.open()
    journal.record("a")
    journal.record("b")
    journal.close()
    with path.open("a") as torn:
        torn.write("c")  # killed mid-write
    again = SentJournal(path)
    again.open()
    assert "a" in again and "b" in again and "c" not in again
    assert again.compact(lambda notification_id: notification_id == "b") == 1
    again.record("d")
    again.close()
    assert path.read_text() == "b\nd\n"


def test_a_webhook_signature_verifies_with_the_secret_only() -> None:
    body = b'{"event_id":"x"}'
    now = int(time.time())
    header = signature("agency-secret", body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify_signature(header, body, "agency-secret", now=now)
    assert not verify_signature(header, body, "other-secret", now=now)
    assert not verify_signature(header, body + b" ", "agency-secret", now=now)
    assert not verify_signature(header, body, "agency-secret", now=now + 3600)  # a replay, an hour later
    assert not verify_signature("garbage", body, "agency-secret", now=now)
