"""Small pure helpers for the benchmarks: percentiles, a run summary, a sustained rate. Unit-tested."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """The runs of one measurement: median, extremes and spread (max - min, and relative to the median)."""

    runs: int
    median: float
    min: float
    max: float
    spread: float
    spread_pct: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values")
    median = statistics.median(values)
    spread = max(values) - min(values)
    return Summary(
        runs=len(values),
        median=median,
        min=min(values),
        max=max(values),
        spread=spread,
        spread_pct=100 * spread / median if median else 0.0,
    )


def sustained_rate(times: Sequence[float], low: float = 0.1, high: float = 0.9) -> float:
    """Completions per second between the ``low`` and ``high`` fractions of completions: the steady part of
    a run, without the pipeline filling at the start and the last stragglers at the end."""
    if len(times) < 2:
        raise ValueError("need at least two completions")
    ordered = sorted(times)
    first = round(low * (len(ordered) - 1))
    last = round(high * (len(ordered) - 1))
    if last <= first:
        raise ValueError("window holds no interval")
    elapsed = ordered[last] - ordered[first]
    return (last - first) / elapsed if elapsed > 0 else math.inf


def overall_rate(count: int, started: float, finished: float) -> float:
    """``count`` completions from ``started`` to ``finished`` (seconds)."""
    if finished <= started:
        raise ValueError("finished must be after started")
    return count / (finished - started)


def met(value: float, op: str, target: float) -> bool:
    """Whether ``value`` meets a target given as ``>=`` or ``<=``."""
    if op == ">=":
        return value >= target
    if op == "<=":
        return value <= target
    raise ValueError(f"unknown comparison {op!r}")


def completion_curve(times: Sequence[float], started: float, points: int = 50) -> list[tuple[float, int]]:
    """(seconds since ``started``, completions so far) at up to ``points`` evenly spaced completions."""
    ordered = sorted(times)
    if not ordered:
        return []
    step = max(1, len(ordered) // points)
    picked = list(range(step - 1, len(ordered), step))
    if picked[-1] != len(ordered) - 1:
        picked.append(len(ordered) - 1)
    return [(round(ordered[i] - started, 3), i + 1) for i in picked]
