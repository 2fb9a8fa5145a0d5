"""`make run`'s sample circles (``services.dev.seed_circles``) on the real broker: two proposals accepted as
of ten weeks ago become one active circle (meetings, minutes overdue, an open concern) and one ended early."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from schemas.topics import TOPICS, VOLUNTEERS
from services.dev.seed_circles import seed_circles
from services.runtime.kafka import create_topics
from services.runtime.settings import RuntimeSettings
from tests.integration.test_circles_ending import register_pool, submit
from tests.kafka_helpers import consume
from tests.processes import ServiceProcess, free_port, run_cli, service_env

pytestmark = pytest.mark.integration
TOKEN = "synthetic-sample-token"


def test_the_sample_data_has_an_active_circle_with_overdue_minutes_and_an_open_concern_and_an_ended_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    port = free_port()
    env = service_env(
        kafka_bootstrap,
        prefix,
        tmp_path,
        CIRCLES_MATCHING_API_PORT=str(port),
        CIRCLES_COORDINATOR_API_TOKEN=TOKEN,
        CIRCLES_DEADLINE_CHECK_INTERVAL_S="1",
    )
    names = ("referrals-worker", "matching-worker", "matching-api", "circles-worker")
    processes = [ServiceProcess(name, env).start() for name in names]
    try:
        for process in processes:
            if process.process == "matching-api":
                process.wait_http(f"http://127.0.0.1:{port}/ready")
            else:
                process.wait_for_log("worker_ready")
        asyncio.run(register_pool(env, 8))
        asyncio.run(consume(kafka_bootstrap, prefix + VOLUNTEERS.name, 8, seconds=60))
        for reference in ("SAMPLE-1", "SAMPLE-2"):
            asyncio.run(submit(env, reference))
        settings = RuntimeSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=prefix,
            kek_file=Path(env["CIRCLES_KEK_FILE"]),
        )

        async def go() -> list[str]:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
            ) as client:
                return await seed_circles(settings, client)

        done = asyncio.run(go())
        assert "ended early" in done[0], done
        deadline = time.monotonic() + 60
        while True:
            circles = json.loads(run_cli(env, "circle", "list", "--json").stdout)
            by_status = {c["status"]: c for c in circles}
            active = by_status.get("active")
            if active and active["minutes_overdue"] == 1 and "ended" in by_status:
                break
            assert time.monotonic() < deadline, circles
            time.sleep(1)
        assert active["meetings_held"] == 3 and active["open_concerns"] == 1
        assert by_status["ended"]["outcome"] == "ended_early"
    finally:
        for process in processes:
            process.stop()
