"""The benchmarks' pure helpers (the benchmarks themselves are not tests: `make bench`)."""

from __future__ import annotations

import math

import pytest

from bench.sink import header_fields
from bench.stats import completion_curve, met, overall_rate, percentile, summarise, sustained_rate


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile([10.0, 20.0], 99) == pytest.approx(19.9)
    assert percentile([7.0], 99) == 7.0


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_gives_median_extremes_and_spread() -> None:
    summary = summarise([10.0, 12.0, 8.0])
    assert (summary.runs, summary.median, summary.min, summary.max) == (3, 10.0, 8.0, 12.0)
    assert summary.spread == 4.0 and summary.spread_pct == 40.0


def test_sustained_rate_ignores_the_ramp_and_the_tail() -> None:
    steady = [float(i) / 100 for i in range(1, 1001)]  # 100 per second
    times = [0.0] * 5 + steady + [60.0]  # a burst at the start and a straggler at the end
    assert sustained_rate(times) == pytest.approx(100, rel=0.02)
    assert overall_rate(len(times), 0.0, 60.0) < 20
    assert math.isinf(sustained_rate([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError):
        sustained_rate([1.0])


def test_completion_curve_is_cumulative_and_ends_at_the_last_one() -> None:
    curve = completion_curve([3.0, 1.0, 2.0, 4.0, 5.0], started=1.0, points=2)
    assert curve == [(1.0, 2), (3.0, 4), (4.0, 5)]
    assert completion_curve([], 0.0) == []


def test_targets_compare_either_way() -> None:
    assert met(1000, ">=", 1000) and not met(999, ">=", 1000)
    assert met(5, "<=", 5) and not met(5.1, "<=", 5)
    with pytest.raises(ValueError):
        met(1, "==", 1)


def test_the_sink_reads_the_notification_headers_only() -> None:
    content = (
        b"From: a@example.org\r\nX-Circles-Event-Id: 1234\r\nx-circles-template: match_proposed\r\n\r\n"
        b"X-Circles-Template: not-a-header\r\n"
    )
    assert header_fields(content) == ("1234", "match_proposed")
    assert header_fields(b"Subject: x\r\n\r\nbody") == ("", "")
