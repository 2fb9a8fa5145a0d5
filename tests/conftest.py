from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from services.runtime.kafka import create_topics
from tests.kafka_broker import session_broker
from tests.processes import LOGS
from tests.samples import PERSONAL_SENTINELS


@pytest.fixture(scope="session")
def kafka() -> Iterator[dict[str, Any]]:
    """The session's real broker: {"bootstrap": address, "local": LocalKafka handle or None}."""
    with session_broker() as (bootstrap, handle):
        yield {"bootstrap": bootstrap, "local": handle}


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: dict[str, Any]) -> str:
    return str(kafka["bootstrap"])


@pytest.fixture
def prefix() -> str:
    """A unique prefix for this test's topics and consumer groups."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def topics(kafka_bootstrap: str, prefix: str) -> AsyncIterator[str]:
    """The whole topic catalogue, created under this test's prefix."""
    await create_topics(kafka_bootstrap, prefix=prefix)
    yield prefix


def leaks(text: str) -> list[str]:
    return [value for value in PERSONAL_SENTINELS if value in text]


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_in_any_log() -> Iterator[None]:
    """The whole run's logs, in-process and from every service process, hold none of the synthetic
    personal values the tests submit."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    started = {path: path.stat().st_size for path in LOGS.glob("*.log")} if LOGS.exists() else {}
    yield
    root.removeHandler(handler)
    found = {"in-process logs": leaks(captured.getvalue())}
    for path in LOGS.glob("*.log") if LOGS.exists() else []:
        with path.open(errors="replace") as log:
            log.seek(started.get(path, 0))
            found[path.name] = leaks(log.read())
    found = {where: values for where, values in found.items() if values}
    assert not found, f"personal data in logs: {found}"
