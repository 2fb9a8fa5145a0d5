"""The chart (PNG, matplotlib's Agg backend): one panel per measurement, medians with min-max bars, and
each target drawn where it applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TARGET_STYLE = {"color": "tab:red", "linestyle": "--", "linewidth": 1.2}


def _bars(ax: Any, labels: list[str], entries: list[dict[str, Any] | None], colors: list[str]) -> None:
    medians = [e["median"] if e else 0.0 for e in entries]
    low = [e["median"] - e["min"] if e else 0.0 for e in entries]
    high = [e["max"] - e["median"] if e else 0.0 for e in entries]
    ax.bar(labels, medians, yerr=[low, high], capsize=4, color=colors)
    for x, value in enumerate(medians):
        ax.annotate(
            f"{value:,.3g}",
            (x, value),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 3),
            textcoords="offset points",
        )


def draw(results: dict[str, Any], path: Path) -> None:
    found = {entry["name"]: entry for entry in results["measurements"]}
    figure, axes = plt.subplots(2, 3, figsize=(16, 9))
    (throughput, latency, restart), (match, progress, verdicts) = axes

    _bars(
        throughput,
        ["raw aiokafka\nmessages/s", "end to end\nreferrals/s"],
        [found.get("baseline_per_s"), found.get("end_to_end_per_s")],
        ["tab:gray", "tab:blue"],
    )
    throughput.axhline(1000, **TARGET_STYLE, label="target ≥ 1,000 referrals/s")
    throughput.set_yscale("log")
    throughput.set_title("Throughput (same broker, same run)")
    throughput.legend(fontsize=8)

    names = [
        "latency_proposed_p50_ms",
        "latency_proposed_p95_ms",
        "latency_proposed_p99_ms",
        "latency_notified_p50_ms",
        "latency_notified_p95_ms",
        "latency_notified_p99_ms",
    ]
    labels = [
        "proposed\np50",
        "proposed\np95",
        "proposed\np99",
        "notified\np50",
        "notified\np95",
        "notified\np99",
    ]
    _bars(latency, labels, [found.get(n) for n in names], ["tab:blue"] * 3 + ["tab:purple"] * 3)
    latency.axhline(20, **TARGET_STYLE, label="target p50 ≤ 20 ms")
    latency.axhline(100, color="tab:orange", linestyle="--", linewidth=1.2, label="target p99 ≤ 100 ms")
    latency.set_yscale("log")
    latency.set_ylabel("ms")
    rate = results["config"].get("latency_rate")
    latency.set_title(f"Latency at {rate} referrals/s offered")
    latency.legend(fontsize=8)

    _bars(
        restart,
        ["SIGTERM, start", "SIGKILL, start"],
        [found.get("restart_after_stop_s"), found.get("restart_after_kill_s")],
        ["tab:green", "tab:olive"],
    )
    restart.axhline(10, **TARGET_STYLE, label="target ≤ 10 s")
    restart.set_ylabel("s until /ready is 200")
    restart.set_title(f"Restart with {results['config'].get('restart_referrals', 0):,} referrals of state")
    restart.legend(fontsize=8)

    pools = found.get("match_10k_median_ms", {}).get("pools", {})
    sizes = sorted(pools, key=int)
    match.plot([int(s) for s in sizes], [pools[s] for s in sizes], marker="o")
    match.axhline(5, **TARGET_STYLE, label="target ≤ 5 ms at 10,000")
    match.set_xscale("log")
    match.set_xlabel("volunteers in the pool")
    match.set_ylabel("median ms per match")
    match.set_title("Match time")
    match.legend(fontsize=8)

    end_to_end = found.get("end_to_end_per_s")
    for n, run in enumerate(end_to_end["runs"] if end_to_end else []):
        curve = run["end_to_end"].get("completions", [])
        progress.plot([t for t, _ in curve], [c for _, c in curve], label=f"round {n + 1}")
    progress.set_xlabel("s since the first submission")
    progress.set_ylabel("referrals notified")
    progress.set_title("End-to-end run: completions over time")
    progress.legend(fontsize=8)

    verdicts.axis("off")
    rows = [
        f"{'MET' if e['met'] else 'MISSED':<7}{e['name']}: {e['median']:,.4g} {e['unit']}"
        for e in results["measurements"]
        if e.get("target") is not None
    ]
    info = results["machine"]
    rows += [
        "",
        f"{info.get('cpus')} CPUs, {info.get('cpu', '')[:40]}",
        f"git {results['git']['commit'][:10]}  {results['timestamp']}",
    ]
    verdicts.text(0, 1, "\n".join(rows), va="top", family="monospace", fontsize=9)
    verdicts.set_title("Against the targets (medians)")

    figure.suptitle("Circles benchmarks (preliminary unless run on a quiet machine)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
