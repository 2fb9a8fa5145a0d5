from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from services.runtime.kafka import create_topics
from tests.kafka_broker import session_broker


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
