"""The operations guide states what the catalogue says: how far each worker scales, and why the matcher
is one instance."""

from __future__ import annotations

import pytest

from schemas.topics import MATCHING_INBOX
from tests.unit.deploy.common import ROOT, WORKER_SERVICE, max_useful_replicas

GUIDE = (ROOT / "docs" / "operations.md").read_text()


@pytest.mark.parametrize("process", sorted(WORKER_SERVICE))
def test_the_scaling_table_gives_each_workers_partition_limit(process: str) -> None:
    (row,) = [line for line in GUIDE.splitlines() if line.startswith(f"| `{process}` |")]
    assert row.split("|")[-2].strip() == str(max_useful_replicas(process))


def test_the_guide_says_the_matcher_reads_a_single_partition() -> None:
    assert MATCHING_INBOX.partitions == 1
    assert f"`{MATCHING_INBOX.name}`, which has one partition" in GUIDE
