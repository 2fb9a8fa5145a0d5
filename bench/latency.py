"""Latency at a fixed offered load (default 100 referrals/s): submitted → match proposed and submitted →
coordinator notified, as percentiles.

"Submitted" is the driver's clock just before the record is handed to its producer. "Proposed" is when the
driver's own consumer of the matching events topic had the outcome (what any consumer can see); the
matching service's own timestamp on the event (``ce_time``) is reported beside it. "Notified" is when the
SMTP sink took the coordinator's email. All clocks are this machine's ``time.time()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bench.pipeline import Round
from bench.stats import percentile


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


async def measure(round_: Round, rate: float, seconds: float) -> dict[str, Any]:
    batch = round_.referrals(int(rate * seconds))
    submitted: dict[str, float] = {}
    futures = []
    began = time.monotonic()
    for n, submission in enumerate(batch):
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        record = await round_.record(submission)
        submitted[submission.referral_id] = time.time()
        futures.append(await round_.send(record))
    offered_s = time.monotonic() - began
    await asyncio.gather(*futures)
    ids = list(submitted)
    complete = await round_.observer.wait_for(ids, seconds=120)
    observer = round_.observer
    seen = [referral for referral in ids if referral in observer.outcomes]
    notified = [referral for referral in ids if referral in observer.notified]
    return {
        "offered_per_s": rate,
        "achieved_offer_per_s": round(len(batch) / offered_s, 1) if offered_s else None,
        "referrals": len(batch),
        "completed": len(notified),
        "complete": complete,
        "proposed_ms": percentiles_ms([observer.outcomes[r].observed_at - submitted[r] for r in seen]),
        "proposed_by_event_time_ms": percentiles_ms(
            [observer.outcomes[r].event_time - submitted[r] for r in seen]
        ),
        "notified_ms": percentiles_ms([observer.notified[r] - submitted[r] for r in notified]),
    }
