from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ops.status import ConsumedTopic, PipelineStatus, ServiceStatus, TopicState
from services.ops.throughput import ThroughputTracker

T0 = datetime(2026, 11, 24, 10, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_rate_over_a_window_uses_the_oldest_sample_inside_it() -> None:
    tracker = ThroughputTracker()
    assert tracker.rate("t") is None
    for second, end in ((0, 0), (10, 100), (20, 300), (30, 300)):
        tracker.observe_counts(at(second), {"t": end})
    assert tracker.rate("t", window_s=60) == pytest.approx(10.0)  # 300 in 30 s
    assert tracker.rate("t", window_s=10) == 0.0  # nothing in the last 10 s
    assert tracker.rate("t", window_s=20) == pytest.approx(10.0)  # 200 in 20 s
    assert tracker.rates(60) == {"t": pytest.approx(10.0)}
    assert [round(p.per_second, 1) for p in tracker.series("t")] == [10.0, 20.0, 0.0]


def test_old_samples_fall_off_the_horizon_and_repeats_are_ignored() -> None:
    tracker = ThroughputTracker(horizon_s=60)
    for second in range(0, 200, 10):
        tracker.observe_counts(at(second), {"t": second})
    tracker.observe_counts(at(50), {"t": 10**6})  # out of order: ignored
    assert len(tracker.series("t")) <= 7
    assert tracker.rate("t", window_s=3600) == pytest.approx(1.0)


def test_observe_takes_topic_ends_and_each_groups_commits() -> None:
    def status(seconds: float, end: int, committed: int | None) -> PipelineStatus:
        consumed = ConsumedTopic(
            topic="x",
            end_offset=end,
            committed=committed,
            lag=end - (committed or 0),
            partitions=[],
            dead_letters=0,
            dead_letters_pending=0,
            last_event_age_s=None,
        )
        service = ServiceStatus(
            service="matching",
            group_id="g",
            group_state="Stable",
            active_members=1,
            lag=consumed.lag,
            dead_letters_pending=0,
            topics=[consumed],
        )
        topic = TopicState(
            topic="x",
            partitions=1,
            end_offset=end,
            retained=end,
            last_event_at=None,
            last_event_age_s=None,
            dead_letter_topic="x.dlq",
            dead_letters=0,
            dead_letters_pending=0,
        )
        return PipelineStatus(
            taken_at=at(seconds), topic_prefix="", services=[service], topics=[topic], problems=[]
        )

    tracker = ThroughputTracker()
    tracker.observe(status(0, 0, None))
    tracker.observe(status(2, 10, 4))
    tracker.observe(status(4, 20, 8))
    assert tracker.rate("x") == pytest.approx(5.0)
    assert tracker.rate("matching/x") == pytest.approx(2.0)
