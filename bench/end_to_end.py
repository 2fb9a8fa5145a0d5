"""End-to-end throughput: referrals offered to the inbound topic as fast as the driver can produce them, until
the coordinator's email about each one's matching outcome has been taken by the SMTP sink (see
``bench.pipeline`` for what "done" means and the hops). Reported: referrals/s overall (first submission to
last email: the figure held to the target), and "sustained" (between 10% and 90% of completions).

The 10%-90% window is not a steady rate here: the referrals worker takes up to 500 records per unit of
work and the emails come out in bursts, mostly at the end (in one round, the middle 80% of emails came in
16 s of a 73 s run, at 147/s, while the proposals before them came at 95/s). It is kept for comparison.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench.pipeline import Round
from bench.stats import completion_curve, overall_rate, sustained_rate


async def measure(round_: Round, count: int) -> dict[str, Any]:
    batch = round_.referrals(count)
    records = [await round_.record(submission) for submission in batch]  # made before the clock starts
    ids = [submission.referral_id for submission in batch]
    started = time.time()
    futures = [await round_.send(record) for record in records]
    await asyncio.gather(*futures)
    offered_s = time.time() - started
    complete = await round_.observer.wait_for(ids, seconds=max(300.0, count / 20))
    observer = round_.observer
    times = [observer.notified[referral] for referral in ids if referral in observer.notified]
    proposals = [observer.outcomes[referral].observed_at for referral in ids if referral in observer.outcomes]
    kinds = Counter(observer.outcomes[referral].kind for referral in ids if referral in observer.outcomes)
    return {
        "referrals": count,
        "completed": len(times),
        "complete": complete,
        "offered_in_s": round(offered_s, 3),
        "offer_rate_per_s": round(count / offered_s, 1),
        "sustained_per_s": round(sustained_rate(times), 1),
        "overall_per_s": round(overall_rate(len(times), started, max(times)), 1),
        "proposals_sustained_per_s": round(sustained_rate(proposals), 1),
        "outcomes": dict(kinds),
        "elapsed_s": round(max(times) - started, 3),
        "completions": completion_curve(times, started),
    }
