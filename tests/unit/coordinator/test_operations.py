"""The operations page's figures: processed rates per service and the throughput chart's geometry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.topics import REFERRALS_COMMANDS, REFERRALS_INBOUND, Service
from services.coordinator.operations import CHART_HEIGHT, CHART_WIDTH, chart_lines, processed
from services.ops.throughput import RatePoint, ThroughputTracker

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_processed_sums_a_services_consumed_topics_over_the_window() -> None:
    tracker = ThroughputTracker()
    commands, inbound = f"referrals/{REFERRALS_COMMANDS.name}", f"referrals/{REFERRALS_INBOUND.name}"
    tracker.observe_counts(T0, {commands: 100, inbound: 10})
    tracker.observe_counts(T0 + timedelta(seconds=10), {commands: 200, inbound: 30})
    assert processed(tracker, Service.REFERRALS, 60) == 12.0  # (100 + 20) / 10 s
    assert processed(tracker, Service.MATCHING, 60) is None  # never sampled


def test_chart_lines_share_one_scale_and_place_now_at_the_right_edge() -> None:
    now = T0 + timedelta(minutes=10)
    series = {
        "a": [RatePoint(at=now - timedelta(minutes=5), per_second=50.0), RatePoint(at=now, per_second=100.0)],
        "b": [
            RatePoint(at=now - timedelta(minutes=20), per_second=999.0),
            RatePoint(at=now, per_second=25.0),
        ],
    }
    lines, peak = chart_lines(series, now, horizon_s=600)
    assert peak == 100.0  # the point older than the horizon is left out, scale included
    by_label = {line.label: line for line in lines}
    assert by_label["b"].points == f"{CHART_WIDTH:.1f},{CHART_HEIGHT * 0.75:.1f}"
    assert by_label["a"].points.split() == [
        f"{CHART_WIDTH / 2:.1f},{CHART_HEIGHT / 2:.1f}",
        f"{CHART_WIDTH:.1f},0.0",
    ]
    assert by_label["a"].latest == 100.0


def test_chart_of_nothing_has_no_points_and_zero_peak() -> None:
    lines, peak = chart_lines({"a": []}, T0, horizon_s=600)
    assert peak == 0.0 and lines[0].points == "" and lines[0].latest == 0.0
