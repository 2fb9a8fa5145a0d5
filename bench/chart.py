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


def _log_scale(ax: Any) -> None:
    """A log y axis, when there is something to draw on it (a partial run may have no bars)."""
    if any(patch.get_height() > 0 for patch in ax.patches):
        ax.set_yscale("log")


def draw(results: dict[str, Any], path: Path) -> None:
    found = {entry["name"]: entry for entry in results["measurements"]}
    figure, axes = plt.subplots(2, 4, figsize=(21, 9))
    (throughput, latency, restart, sealing), (match, progress, verdicts, spare) = axes
    spare.axis("off")
    costs = [
        ("ratio_to_baseline", "end to end / raw aiokafka"),
        ("referrals_service_ratio_to_baseline", "referrals worker / raw aiokafka"),
        ("codec_sealed_to_plain", "sealed / plain codec"),
        ("referrals_service_shipped_to_keys_ahead", "worker shipped / keys ahead"),
        ("referrals_worker_cpu_ms_per_referral_shipped", "worker CPU ms/referral, shipped"),
        ("referrals_worker_cpu_ms_per_referral_keys_ahead", "worker CPU ms/referral, keys ahead"),
        ("referrals_worker_sealing_cpu_ms_per_referral_shipped", "of which seal/open (lower bound)"),
        ("new_data_key_ms", "new data key, ms"),
        ("state_read_sealed_to_plain", "state record read, sealed / plain"),
    ]
    lines = [
        f"{found[name]['median']:>9.3f}  {label}"
        + (f" (ideal {found[name]['ideal']:.3f})" if "ideal" in found[name] else "")
        for name, label in costs
        if name in found
    ]
    spare.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=9)
    spare.set_title("Ratios and costs, same run (medians)")

    _bars(
        throughput,
        ["raw aiokafka\nmessages/s", "referrals\nservice /s", "end to end\nreferrals/s"],
        [found.get("baseline_per_s"), found.get("referrals_service_per_s"), found.get("end_to_end_per_s")],
        ["tab:gray", "tab:cyan", "tab:blue"],
    )
    throughput.axhline(1000, **TARGET_STYLE, label="target ≥ 1,000 referrals/s")
    _log_scale(throughput)
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
    _log_scale(latency)
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
    restart.set_title("Restart with 100,000 referrals of state")
    restart.legend(fontsize=8)

    _bars(
        sealing,
        ["codec\nplain", "codec\nsealed", "worker,\nkeys ahead", "worker,\nas shipped"],
        [
            found.get("codec_plain_per_s"),
            found.get("codec_sealed_per_s"),
            found.get("referrals_service_keys_ahead_per_s"),
            found.get("referrals_service_per_s"),
        ],
        ["tab:gray", "tab:red", "tab:cyan", "tab:blue"],
    )
    _log_scale(sealing)
    sealing.set_ylabel("round trips/s (codec), referrals/s (worker)")
    ratios = [
        f"{label} {found[name]['median']:.2f}"
        for name, label in (
            ("codec_sealed_to_plain", "sealed/plain"),
            ("referrals_service_shipped_to_keys_ahead", "shipped/keys ahead"),
        )
        if name in found
    ]
    sealing.set_title("Encryption: " + ", ".join(ratios) if ratios else "Encryption")

    pools = found.get("match_10k_median_ms", {}).get("pools", {})
    sizes = sorted(pools, key=int)
    match.plot([int(s) for s in sizes], [pools[s] for s in sizes], marker="o")
    match.axhline(5, **TARGET_STYLE, label="target ≤ 5 ms at 10,000")
    if sizes:
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
    if progress.lines:
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

    quick = " — QUICK smoke run, not figures to quote" if results["config"].get("quick") else ""
    figure.suptitle(f"Circles benchmarks (preliminary unless run on a quiet machine){quick}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
