"""The results file: the machine, the revision, each measurement's runs, medians and spread, and where each
stands against its target (docs: ../shared/brief/engineering.md, "Targets we hold ourselves to")."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import met, summarise

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    op: str
    value: float
    text: str


TARGETS = {
    "end_to_end_per_s": Target(">=", 1000, "≥ 1,000 referrals/s sustained (first to last), all services"),
    "ratio_to_baseline": Target(">=", 1 / 6, "≈ 1/hops of the raw aiokafka rate (6 hops: 0.167)"),
    "latency_proposed_p50_ms": Target("<=", 20, "submitted → proposed p50 ≤ 20 ms at 100 referrals/s"),
    "latency_proposed_p99_ms": Target("<=", 100, "submitted → proposed p99 ≤ 100 ms at 100 referrals/s"),
    "restart_after_stop_s": Target("<=", 10, "restart with 100,000 referrals of state until ready ≤ 10 s"),
    "restart_after_kill_s": Target("<=", 10, "restart with 100,000 referrals of state until ready ≤ 10 s"),
    "restart_1000000_after_stop_s": Target("<=", 10, "restart with 1,000,000 referrals until ready ≤ 10 s"),
    "restart_1000000_after_kill_s": Target("<=", 10, "restart with 1,000,000 referrals until ready ≤ 10 s"),
    "restart_api_after_stop_s": Target("<=", 10, "partner API restart, 100,000 referrals ≤ 10 s"),
    "restart_api_after_kill_s": Target("<=", 10, "partner API restart, 100,000 referrals ≤ 10 s"),
    "restart_api_1000000_after_stop_s": Target("<=", 10, "partner API restart, 1,000,000 referrals ≤ 10 s"),
    "restart_api_1000000_after_kill_s": Target("<=", 10, "partner API restart, 1,000,000 referrals ≤ 10 s"),
    "match_10k_median_ms": Target("<=", 5, "one match against 10,000 volunteers ≤ 5 ms median"),
    "partner_post_p50_ms": Target("<=", 10, "partner API POST p50 ≤ 10 ms (100 referrals at 10/s)"),
    "partner_proposed_p50_ms": Target("<=", 20, "partner API POST → proposed p50 ≤ 20 ms at 10/s"),
    "partner_proposed_p99_ms": Target("<=", 100, "partner API POST → proposed p99 ≤ 100 ms at 10/s"),
    "partner_decided_per_s": Target(">=", 1000, "≥ 1,000 referrals/s through the partner API, decided"),
    "partner_flat_proposed_p99_ms": Target(
        "<=", 100, "partner API flat out: POST → proposed p99 ≤ 100 ms (16 clients)"
    ),
    "circles_help_s": Target("<=", 0.3, "`circles --help` ≤ 0.3 s"),
    "dev_up_again_s": Target("<=", 20, "`make run` a second time (data kept) until running ≤ 20 s"),
}


def measurement(name: str, unit: str, values: list[float], runs: list[Any], **extra: Any) -> dict[str, Any]:
    """One figure: its value in every run, their summary, and the verdict against its target (if any)."""
    summary = summarise(values)
    target = TARGETS.get(name)
    entry: dict[str, Any] = {
        "name": name,
        "unit": unit,
        "values": values,
        **summary.as_dict(),
        "target": None if target is None else {"op": target.op, "value": target.value, "text": target.text},
        "met": None if target is None else met(summary.median, target.op, target.value),
        "runs": runs,
    }
    entry.update(extra)
    return entry


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    with _quietly():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with _quietly():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    return info


def revision() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def header(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": revision(),
        "machine": machine(),
        "config": config,
    }


class _quietly:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, trace: object) -> bool:
        return isinstance(error, OSError)


def line(entry: dict[str, Any]) -> str:
    """One printed line: median, spread, and the verdict."""
    verdict = ""
    if entry["target"] is not None:
        target = entry["target"]
        verdict = f"  target {target['op']} {target['value']:g}: {'met' if entry['met'] else 'NOT met'}"
    return (
        f"{entry['name']:<28} median {entry['median']:>10.3f} {entry['unit']:<12} "
        f"(min {entry['min']:.3f}, max {entry['max']:.3f}, spread {entry['spread_pct']:.0f}%, "
        f"{entry['runs_count'] if 'runs_count' in entry else len(entry['values'])} runs){verdict}"
    )
