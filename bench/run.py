"""The benchmark runner (``make bench`` / ``python -m bench``): one real local broker, every measurement run
several times, medians and spread printed, ``results.json`` and ``results.png`` written.

    python -m bench [--runs 3] [--quick] [--only match,startup,baseline,encryption,pipeline,partner,restart]

Measurements (one module each): ``baseline`` (raw aiokafka produce→consume), ``encryption`` (what sealing
personal fields costs: the codec, and the referrals service as shipped against keys made ahead),
``end_to_end`` and ``latency`` (a ``pipeline`` round: all services, fresh topics), ``restart`` (the
referrals worker with 100,000 referrals of state), ``match_time`` (the matcher alone), ``partner_api``
(HTTP clients against the partner API, each submission followed until proposed), ``startup`` (``circles
--help``, and ``circles dev up`` started a second time until it is running). Benchmarks are
measurements, not tests: nothing here fails on a missed target; the verdicts are in the results.
``--quick`` is a smoke run (smaller loads, two runs each): its figures are not the ones to quote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import (
    baseline,
    encryption,
    end_to_end,
    latency,
    match_time,
    partner_api,
    pipeline,
    restart,
    startup,
)
from bench.chart import draw
from bench.report import header, line, measurement
from bench.stack import Stack
from schemas.topics import TOPICS
from services.dev.broker import local_kafka

PARTS = ("match", "startup", "baseline", "encryption", "pipeline", "partner", "restart")
QUICK = {
    "runs": 2,
    "partner_paced": 50,
    "partner_flat_out": 500,
    "baseline_messages": 30_000,
    "encryption_referrals": 1_000,
    "e2e_referrals": 1_000,
    "latency_seconds": 10.0,
    "restart_referrals": "20000,100000",
}
"""``--quick``: smaller loads, to check that everything runs (not the figures to quote)."""


def say(text: str) -> None:
    print(text, flush=True)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--baseline-messages", type=int, default=100_000)
    parser.add_argument("--e2e-referrals", type=int, default=3_000, help="offered at once, per round")
    parser.add_argument("--latency-rate", type=float, default=100.0, help="referrals/s offered")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--restart-referrals", default="100000,1000000", help="sizes of state, comma-separated"
    )
    parser.add_argument(
        "--encryption-referrals", type=int, default=3_000, help="offered at once to the referrals worker"
    )
    parser.add_argument(
        "--partner-paced",
        type=int,
        default=100,
        help="referrals POSTed at 10/s, each followed until proposed",
    )
    parser.add_argument(
        "--partner-flat-out",
        type=int,
        default=2_000,
        help="referrals POSTed by 16 keep-alive clients at once",
    )
    parser.add_argument(
        "--no-dev-up",
        dest="startup_dev_up",
        action="store_false",
        help="startup: only `circles --help`, not `circles dev up` twice (a broker and seven processes)",
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def run_match(runs: int) -> list[dict[str, Any]]:
    say(f"match time: {runs} runs of 300 matches against pools of 100, 1,000 and 10,000 volunteers")
    results = [match_time.run() for _ in range(runs)]
    by_run = [{str(r["pool"]): r for r in one} for one in results]
    medians = [one["10000"]["median_ms"] for one in by_run]
    pools = {size: sorted(one[size]["median_ms"] for one in by_run)[len(by_run) // 2] for size in by_run[0]}
    return [measurement("match_10k_median_ms", "ms", medians, results, pools=pools)]


async def run_baseline(bootstrap: str, runs: int, messages: int) -> list[dict[str, Any]]:
    say(f"baseline: {runs} runs of {messages:,} messages, raw aiokafka producer process → consumer")
    # the broker's first run after its start is about half as fast (JVM warm-up): one run not counted
    warm = await baseline.measure(bootstrap, f"bench-baseline-{int(time.time())}-warm-up", messages // 3)
    say(f"  warm-up, not counted: {warm['per_s']:,.0f} messages/s")
    results = []
    for n in range(runs):
        result = await baseline.measure(bootstrap, f"bench-baseline-{int(time.time())}-{n}", messages)
        say(f"  run {n + 1}: {result['per_s']:,.0f} messages/s ({result['message_bytes']} bytes each)")
        results.append(result)
    return [measurement("baseline_per_s", "messages/s", [r["per_s"] for r in results], results)]


async def run_encryption(
    bootstrap: str, args: argparse.Namespace, work: Path, baseline_median: float | None
) -> list[dict[str, Any]]:
    say(
        f"encryption: {args.runs} runs of the codec (plain and sealed submission commands), then of the "
        f"referrals worker alone taking {args.encryption_referrals:,} inbound submissions, as shipped and "
        "with the data keys made ahead"
    )
    stack = Stack(bootstrap, f"bench-codec-{int(time.time())}.", work / "codec", work / "logs", smtp_port=1)
    await stack.prepare()
    sealer = stack.sealer(["referral"])
    await sealer.start()
    codecs = []
    try:
        for n in range(args.runs):
            codec = await encryption.codec(sealer, str(n))
            say(
                f"  codec {n + 1}: sealed {codec['sealed_per_s']:,.0f}/s, plain "
                f"{codec['plain_per_s']:,.0f}/s (ratio {codec['ratio']:.3f}); a new data key "
                f"{codec['new_data_key_ms']['p50']:.1f} ms; a state record read "
                f"{codec['state_read_sealed_us']:.0f} µs sealed, {codec['state_read_plain_us']:.0f} µs plain"
            )
            codecs.append(codec)
    finally:
        await sealer.stop()
    profiles = args.out / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {"shipped": [], "keys-ahead": []}
    for n in range(args.runs):
        for kind in ("shipped", "keys-ahead") if n % 2 == 0 else ("keys-ahead", "shipped"):  # alternate
            result = await encryption.service(
                bootstrap,
                work,
                f"enc{int(time.time())}-{kind}",
                args.encryption_referrals,
                keys_ahead=kind == "keys-ahead",
                profile_to=profiles / f"referrals-worker-{kind}-{n + 1}.txt",
            )
            say(
                f"  referrals worker {n + 1}, {kind}: {result['per_s']:,.1f} referrals/s, "
                f"{result.get('worker_cpu_ms_per_referral')} ms of its CPU per referral, "
                f"{result.get('sealing_pct_of_cpu')}% of its busy samples sealing or opening"
            )
            runs[kind].append(result)
    shipped, ahead = runs["shipped"], runs["keys-ahead"]
    rate = "referrals/s"
    found = [
        measurement("codec_sealed_per_s", "round trips/s", [c["sealed_per_s"] for c in codecs], codecs),
        measurement("codec_plain_per_s", "round trips/s", [c["plain_per_s"] for c in codecs], []),
        measurement("codec_sealed_to_plain", "ratio", [c["ratio"] for c in codecs], []),
        measurement("new_data_key_ms", "ms", [c["new_data_key_ms"]["p50"] for c in codecs], []),
        measurement("state_read_sealed_us", "µs", [c["state_read_sealed_us"] for c in codecs], []),
        measurement("state_read_plain_us", "µs", [c["state_read_plain_us"] for c in codecs], []),
        measurement("state_read_sealed_to_plain", "ratio", [c["state_read_ratio"] for c in codecs], []),
        measurement("referrals_service_per_s", rate, [r["per_s"] for r in shipped], shipped),
        measurement("referrals_service_keys_ahead_per_s", rate, [r["per_s"] for r in ahead], ahead),
    ]
    pairs = zip(shipped, ahead, strict=True)
    ratios = [round(s["per_s"] / a["per_s"], 4) for s, a in pairs]
    found.append(measurement("referrals_service_shipped_to_keys_ahead", "ratio", ratios, []))
    for kind, results in runs.items():
        suffix = kind.replace("-", "_")
        for key, name, unit in (
            ("worker_cpu_ms_per_referral", "referrals_worker_cpu_ms_per_referral", "ms"),
            ("sealing_cpu_ms_per_referral", "referrals_worker_sealing_cpu_ms_per_referral", "ms"),
            ("sealing_pct_of_cpu", "referrals_worker_sealing_cpu_pct", "% of busy samples"),
        ):
            values = [r[key] for r in results if r.get(key) is not None]
            if values:
                found.append(measurement(f"{name}_{suffix}", unit, values, []))
    if baseline_median:
        ideal = round(1 / encryption.HOPS, 4)
        ratios = [round(r["per_s"] / baseline_median, 4) for r in shipped]
        found.append(measurement("referrals_service_ratio_to_baseline", "ratio", ratios, [], ideal=ideal))
    return found


async def run_rounds(bootstrap: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    say(
        f"pipeline: {args.runs} rounds, each with all services on fresh topics: {args.latency_rate:g} "
        f"referrals/s for {args.latency_seconds:g} s, then {args.e2e_referrals:,} at once"
    )
    rounds = []
    for n in range(args.runs):
        planned = 50 + int(args.latency_rate * args.latency_seconds) + args.e2e_referrals
        name = f"r{int(time.time())}"
        async with pipeline.pipeline_round(bootstrap, name, work, planned, date.today()) as round_:
            say(f"  round {n + 1}: ready in {round_.startup_s:.1f} s ({round_.volunteers:,} volunteers)")
            await pipeline.warm_up(round_)
            fixed = await latency.measure(round_, args.latency_rate, args.latency_seconds)
            say(
                f"    latency: proposed p50 {fixed['proposed_ms']['p50']:,.0f} ms, p99 "
                f"{fixed['proposed_ms']['p99']:,.0f} ms; notified p50 {fixed['notified_ms']['p50']:,.0f} ms"
            )
            drained = await pipeline.drain(round_, seconds=600)
            flat_out = await end_to_end.measure(round_, args.e2e_referrals)
            say(
                f"    end to end: {flat_out['overall_per_s']:,.1f} referrals/s, first submission to last "
                f"email ({flat_out['sustained_per_s']:,.1f} between 10% and 90%; "
                f"{flat_out['completed']:,} notified)"
            )
            drained = await pipeline.drain(round_, seconds=600) and drained
            written = await records_written(bootstrap, round_.stack.prefix)
            rounds.append(
                {
                    "latency": fixed,
                    "end_to_end": flat_out,
                    "drained": drained,
                    "referrals_offered": round_.offered,
                    "messages": dict(round_.observer.templates),
                    "records_written_per_referral": round(sum(written.values()) / round_.offered, 1),
                    "records_written": written,
                    "volunteers": round_.volunteers,
                    "startup_s": round(round_.startup_s, 1),
                }
            )
    return rounds


def pipeline_measurements(
    rounds: list[dict[str, Any]], baseline_median: float | None
) -> list[dict[str, Any]]:
    e2e = [r["end_to_end"] for r in rounds]
    lat = [r["latency"] for r in rounds]
    found = [
        measurement(
            "end_to_end_per_s",
            "referrals/s",
            [r["overall_per_s"] for r in e2e],
            rounds,
            hops=pipeline.HOPS,
            sustained_per_s=[r["sustained_per_s"] for r in e2e],
            proposals_sustained_per_s=[r["proposals_sustained_per_s"] for r in e2e],
        )
    ]
    if baseline_median:
        ratios = [round(r["overall_per_s"] / baseline_median, 4) for r in e2e]
        found.append(measurement("ratio_to_baseline", "ratio", ratios, [], ideal=round(1 / pipeline.HOPS, 4)))
    for kind in ("proposed", "notified"):
        for p in ("p50", "p95", "p99"):
            found.append(measurement(f"latency_{kind}_{p}_ms", "ms", [r[f"{kind}_ms"][p] for r in lat], []))
    return found


async def records_written(bootstrap: str, prefix: str) -> dict[str, int]:
    """Records on each of the round's topics: the work behind each referral, topic by topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(prefix + s.name, p) for s in TOPICS for p in range(s.partitions)]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    written: dict[str, int] = {}
    for tp, end in ends.items():
        if end:
            topic = tp.topic.removeprefix(prefix)
            written[topic] = written.get(topic, 0) + end
    return written


async def run_partner(
    bootstrap: str, args: argparse.Namespace, work: Path, baseline_median: float | None
) -> list[dict[str, Any]]:
    runs = max(3, args.runs)
    say(
        f"partner API: one round with all services; {runs} runs each of {args.partner_paced} referrals "
        f"POSTed at 10/s, then {args.partner_flat_out:,} by 16 keep-alive clients, each followed until "
        "proposed"
    )
    planned = 50 + runs * (args.partner_paced + args.partner_flat_out)
    async with pipeline.pipeline_round(
        bootstrap, f"p{int(time.time())}", work, planned, date.today()
    ) as round_:
        say(f"  ready in {round_.startup_s:.1f} s ({round_.volunteers:,} volunteers)")
        await pipeline.warm_up(round_)
        results = await partner_api.measure(
            round_, runs, args.partner_paced, 10.0, args.partner_flat_out, 16, args.out / "profiles"
        )
    for n, result in enumerate(results):
        paced, flat = result["paced"], result["flat_out"]
        post, decided, proposed = paced["post_ms"], paced["decided_ms"], paced["proposed_ms"]
        say(
            f"  run {n + 1}: paced POST p50 {post['p50']:.1f} ms (p99 {post['p99']:.1f}), decided p50 "
            f"{decided['p50']:.0f} ms, proposed p50 {proposed['p50']:.0f} ms (p99 {proposed['p99']:.0f}); "
            f"flat out: accepted {flat['accepted_per_s']:.1f}/s, decided {flat['decided_per_s']:.1f}/s, "
            f"decided p50 {flat['decided_ms']['p50']:.0f} ms (p99 {flat['decided_ms']['p99']:.0f}), "
            f"proposed p99 {flat['proposed_ms']['p99']:.0f} ms"
        )
    for name, summary in results[0].get("profile", {}).items():
        say(
            f"  py-spy, first flat-out run: {name} {summary['cpu_pct_of_core']}% of a core, "
            f"{summary['cpu_ms_per_referral']} ms CPU per referral, {summary.get('idle_pct')}% idle samples"
        )
        for frame, pct in summary.get("inclusive", [])[:8]:
            say(f"    {pct:5.1f}%  {frame}")
    paced_runs = [r["paced"] for r in results]
    flat_runs = [r["flat_out"] for r in results]
    found = [
        measurement("partner_post_p50_ms", "ms", [r["post_ms"]["p50"] for r in paced_runs], results),
        measurement("partner_post_p99_ms", "ms", [r["post_ms"]["p99"] for r in paced_runs], []),
        measurement("partner_decided_p50_ms", "ms", [r["decided_ms"]["p50"] for r in paced_runs], []),
        measurement("partner_decided_p99_ms", "ms", [r["decided_ms"]["p99"] for r in paced_runs], []),
        measurement("partner_proposed_p50_ms", "ms", [r["proposed_ms"]["p50"] for r in paced_runs], []),
        measurement("partner_proposed_p99_ms", "ms", [r["proposed_ms"]["p99"] for r in paced_runs], []),
        measurement("partner_accepted_per_s", "referrals/s", [r["accepted_per_s"] for r in flat_runs], []),
        measurement("partner_decided_per_s", "referrals/s", [r["decided_per_s"] for r in flat_runs], []),
        measurement("partner_flat_decided_p50_ms", "ms", [r["decided_ms"]["p50"] for r in flat_runs], []),
        measurement("partner_flat_decided_p99_ms", "ms", [r["decided_ms"]["p99"] for r in flat_runs], []),
        measurement("partner_flat_proposed_p99_ms", "ms", [r["proposed_ms"]["p99"] for r in flat_runs], []),
    ]
    if baseline_median:
        ratios = [round(r["decided_per_s"] / baseline_median, 4) for r in flat_runs]
        ideal = round(1 / 3, 4)  # POST → command → referrals worker → referral events: three records each
        found.append(measurement("partner_decided_ratio_to_baseline", "ratio", ratios, [], ideal=ideal))
    return found


def run_startup(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    runs = max(3, args.runs)
    say(f"startup: `circles --help` {runs} times, beside the interpreter alone")
    found = startup.help_measurements(runs)
    for entry in found:
        say(f"  {entry['name']}: {entry['values']}")
    if args.startup_dev_up:
        say(f"startup: `circles dev up` on a fresh data directory (seeding), then again {args.runs} times")
        found += startup.dev_up_measurements(work / "dev-up", restarts=args.runs)
        for entry in found[-2:]:
            say(f"  {entry['name']}: {entry['values']}")
    return found


async def run_restart(bootstrap: str, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    found = []
    for size in (int(n) for n in str(args.restart_referrals).split(",")):
        say(f"restart: writing {size:,} referrals of state to the referrals worker's changelog")
        stack = restart.state_stack(bootstrap, work, size)
        try:
            built = await restart.build_state(stack, size)
            say(
                f"  written in {built['state_written_s']:.0f} s, the worker's store built in "
                f"{built['store_built_s']:.0f} s"
            )
            for process, how in [(p, how) for p in restart.RESTARTED for how in ("stop", "kill")]:
                results = []
                for n in range(args.runs):
                    result = await asyncio.to_thread(restart.restart, stack, how, name=process)
                    say(
                        f"  {process} {how} + start {n + 1}: ready in {result['ready_s']:.2f} s (probe up "
                        f"{result['probe_answering_s']:.2f} s; read at start: changelog "
                        f"{result['recovered_records']}, keys {result['key_records_read']}, state "
                        f"{result['state_records_read']})"
                    )
                    results.append(result)
                name = f"restart_after_{how}_s" if size == 100_000 else f"restart_{size}_after_{how}_s"
                if process == restart.API:
                    name = name.replace("restart_", "restart_api_", 1)
                found.append(measurement(name, "s", [r["ready_s"] for r in results], results, state=built))
        finally:
            await asyncio.to_thread(stack.stop)
    return found


async def with_broker(args: argparse.Namespace, parts: set[str], work: Path) -> list[dict[str, Any]]:
    broker = local_kafka().LocalKafka(data_dir=work / "kafka")
    bootstrap = await asyncio.to_thread(broker.start)
    say(f"broker: {bootstrap}")
    found: list[dict[str, Any]] = []
    try:
        baseline_median = None
        if "baseline" in parts:
            found += await run_baseline(bootstrap, args.runs, args.baseline_messages)
            baseline_median = found[-1]["median"]
        if "encryption" in parts:
            found += await run_encryption(bootstrap, args, work, baseline_median)
        if "pipeline" in parts:
            found += pipeline_measurements(await run_rounds(bootstrap, args, work), baseline_median)
        if "partner" in parts:
            found += await run_partner(bootstrap, args, work, baseline_median)
        if "restart" in parts:
            found += await run_restart(bootstrap, args, work)
    finally:
        await asyncio.to_thread(broker.stop)
    return found


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    parts = set(args.only.split(","))
    unknown = parts - set(PARTS)
    if unknown:
        say(f"unknown --only parts: {sorted(unknown)}; choose from {PARTS}")
        return 2
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "not leader" while new topics settle
    args.out.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results = header(config)
    started = time.monotonic()
    found = run_match(args.runs) if "match" in parts else []
    work = Path(tempfile.mkdtemp(prefix="circles-bench-"))
    try:
        if "startup" in parts:
            found += run_startup(args, work)
        if parts & {"baseline", "encryption", "pipeline", "partner", "restart"}:
            found += asyncio.run(with_broker(args, parts, work))
    finally:
        logs = args.out / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        if (work / "logs").exists():
            shutil.copytree(work / "logs", logs)
        shutil.rmtree(work, ignore_errors=True)
    results["measurements"] = found
    results["duration_s"] = round(time.monotonic() - started, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    draw(results, args.out / "results.png")
    say("")
    for entry in found:
        say(line(entry))
    say(f"\nwritten: {args.out / 'results.json'}, {args.out / 'results.png'} ({results['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
