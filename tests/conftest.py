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


def file_weight(items: list[pytest.Item]) -> int:
    """0 for a file that kills or floods (minutes each), 1 for other integration files, 2 for unit tests."""
    markers = {mark.name for item in items for mark in item.iter_markers()}
    return 0 if "fault" in markers else 1 if "integration" in markers else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, so that on two workers (`make test`: pytest-xdist, one file to a worker)
    the many short unit tests fill the end instead of one long file running alone at the end. Each file's
    tests keep their order."""
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    weight = {name: file_weight(members) for name, members in files.items()}
    items.sort(key=lambda item: weight[item.nodeid.split("::")[0]])


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
