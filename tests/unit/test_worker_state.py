"""The worker's state and pipelining without Kafka: the on-disk store, table application, units of work in
flight, supervision, and the runtime's layering."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from schemas.partner_api import ReferralSubmission
from schemas.topics import REFERRALS_STATE
from services.runtime import supervision
from services.runtime.store import Change, LocalStore
from services.runtime.tables import StateTable, Written
from services.runtime.worker import InFlight, UnitOfWork
from tests.samples import submission_body

RUNTIME = Path(__file__).resolve().parents[2] / "services" / "runtime"


def test_the_runtime_imports_nothing_from_protection() -> None:
    """The runtime is the ground floor: services.protection builds on it, never the other way."""
    found = []
    for module in sorted(RUNTIME.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            found += [f"{module.name}: {name}" for name in names if name.startswith("services.protection")]
    assert found == []


def test_a_store_keeps_values_indexes_and_checkpoint_across_a_reopen(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "t", "t")
    store.open()
    store.write(3, [Change("a", b"1", {"due": "2027-01-02"}), Change("b", b"2", {"due": "2027-01-01"})], 10)
    store.write(3, [Change("a", b"3", {"due": "2027-03-01"}), Change("c", b"4", {"due": None})], 12)
    store.write(4, [Change("d", b"5", {"due": "2027-01-01"})], 1)
    store.close()
    store = LocalStore(tmp_path / "t", "t")
    store.open()
    assert store.persistent
    assert store.checkpoint(3) is not None and store.checkpoint(3)[0] == 12  # type: ignore[index]
    assert store.get(3, "a") == b"3" and store.count(3) == 3 and store.count(4) == 1
    assert list(store.indexed("due", 3)) == [("2027-01-01", "b"), ("2027-03-01", "a")]
    assert list(store.indexed("due", 3, upto="2027-01-01")) == [("2027-01-01", "b")]
    assert list(store.indexed("due", 3, equal="2027-03-01")) == [("2027-03-01", "a")]
    store.write(3, [Change("b", None, {"due": None})], 13)
    assert list(store.indexed("due", 3)) == [("2027-03-01", "a")] and store.count(3) == 2
    store.reset(3)
    assert store.checkpoint(3) is None and list(store.scan(3)) == [] and list(store.indexed("due", 3)) == []
    assert store.get(4, "d") == b"5"  # other partitions untouched
    store.close()


def test_a_store_in_use_by_another_process_falls_back_to_a_temporary_copy(tmp_path: Path) -> None:
    first, second = LocalStore(tmp_path / "t", "t"), LocalStore(tmp_path / "t", "t")
    first.open()
    second.open()  # RocksDB's lock is held by the first
    assert first.persistent and not second.persistent
    second.close()
    first.close()


def _table(tmp_path: Path) -> StateTable[ReferralSubmission]:
    table: StateTable[ReferralSubmission] = StateTable(
        "t", ReferralSubmission, REFERRALS_STATE, directory=tmp_path / "t"
    )
    table.index("ref", lambda value: value.agency_reference)
    table.store.open()
    table._held = frozenset(range(table.partitions))
    for partition in range(table.partitions):
        table._positions[partition] = 0
    return table


def test_a_table_checkpoints_only_a_changelog_it_has_seen_whole(tmp_path: Path) -> None:
    """The copy's checkpoint follows the changelog record by record; after a record this worker did not
    write (a gap) it stays where it was, so that the next start reads the changelog again from there."""
    table = _table(tmp_path)
    value = ReferralSubmission.model_validate(submission_body())
    raw = value.model_dump_json().encode()
    key = "k1"
    p = table.partition(key)
    table.apply([Written(key, value, raw, p, 0), Written(key, value, raw, p, 1)])
    assert table.store.checkpoint(p)[0] == 2  # type: ignore[index]
    table.apply([Written(key, None, None, p, 5)])  # offsets 2-4 were written by someone else
    assert table.store.checkpoint(p)[0] == 2  # type: ignore[index]
    assert table.get(key) is None and len(table) == 0


class Producer:
    """Records what is sent; acknowledgements are released by the test."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []
        self.acks: list[asyncio.Future[Any]] = []
        self.offsets: dict[int, int] = {}

    async def send(
        self, topic: str, value: bytes | None, *, key: Any = None, partition: Any = None, **_: Any
    ):
        self.sent.append((topic, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        part = partition or 0
        offset = self.offsets.get(part, 0)
        self.offsets[part] = offset + 1
        self.acks.append(future)
        future.metadata = type("M", (), {"partition": part, "offset": offset})()  # type: ignore[attr-defined]
        return future

    def ack_all(self) -> None:
        for future in self.acks:
            if not future.done():
                future.set_result(future.metadata)  # type: ignore[attr-defined]


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_units_in_flight_are_read_by_the_next_and_applied_in_order(tmp_path: Path) -> None:
    """Pipelining: the next unit reads the last one's writes before they are acknowledged; its changelog
    goes after the last one's; tables change (and offsets may be committed) in the order of the units."""
    table = _table(tmp_path)
    producer = Producer()
    in_flight = InFlight()
    first = UnitOfWork(producer, "/t", in_flight=in_flight)
    old = ReferralSubmission.model_validate(submission_body())
    new = old.model_copy(update={"agency_reference": "AMENDED-1"})
    first.put(table, "k", old)
    first.emit_raw("out", b"k", b"output", [])
    in_flight.add(first)
    applied: list[str] = []
    committing = asyncio.ensure_future(first.commit(lambda: applied.append("first")))
    second = UnitOfWork(producer, "/t", previous=first, in_flight=in_flight)
    assert second.get(table, "k") == old  # the first unit's write, not acknowledged yet
    assert table.get("k") is None
    second.put(table, "k", new)
    in_flight.add(second)
    following = asyncio.ensure_future(second.commit(lambda: applied.append("second")))
    await _settle()
    assert [value for _, value in producer.sent] == [b"output"]  # state after outputs, second after first
    producer.ack_all()
    await _settle()
    producer.ack_all()
    await asyncio.gather(committing, following)
    sent = [value for _, value in producer.sent]
    assert sent == [b"output", old.model_dump_json().encode(), new.model_dump_json().encode()]
    assert applied == ["first", "second"] and table.get("k") == new and in_flight.values == {}
    assert list(table.indexed("ref", equal="AMENDED-1")) == ["k"]


async def test_a_unit_that_fails_fails_the_ones_behind_it(tmp_path: Path) -> None:
    table = _table(tmp_path)
    producer = Producer()
    first = UnitOfWork(producer, "/t")
    first.put(table, "k", ReferralSubmission.model_validate(submission_body()))
    first.emit_raw("out", b"k", b"output", [])
    second = UnitOfWork(producer, "/t", previous=first)
    second.put(table, "j", ReferralSubmission.model_validate(submission_body()))
    tasks = [asyncio.ensure_future(first.commit()), asyncio.ensure_future(second.commit())]
    await _settle()
    producer.acks[0].set_exception(ConnectionError("broker away"))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert table.get("k") is None and table.get("j") is None
    assert [value for _, value in producer.sent] == [b"output"]  # neither unit's changelog went


async def test_a_supervised_task_is_retried_then_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervision, "FIRST_DELAY_S", 0.01)
    monkeypatch.setattr(supervision, "_given_up", [])
    gave_up: list[str] = []
    monkeypatch.setattr(supervision, "_on_give_up", gave_up.append)
    runs = {"flaky": 0, "broken": 0}

    async def flaky() -> None:
        runs["flaky"] += 1
        if runs["flaky"] < 3:
            raise TimeoutError()

    async def broken() -> None:
        runs["broken"] += 1
        raise TimeoutError()

    task = supervision.supervise("flaky", flaky, every=0.01)
    await asyncio.sleep(0.2)
    assert runs["flaky"] > 3 and supervision.healthy() and not task.done()
    task.cancel()
    await supervision.supervise("broken", broken, give_up_after_s=0.1)
    assert gave_up == ["broken"] and not supervision.healthy() and runs["broken"] > 2


def test_batches_grow_under_load_within_a_time_budget(tmp_path: Path) -> None:
    """A full fetch handled quickly doubles the next batch; one that blocked the loop too long (the
    consumer's heartbeats wait) halves it; an idle pipeline goes back to the base size."""
    from services.runtime.settings import RuntimeSettings
    from services.runtime.worker import BATCH_BUDGET_S, StreamWorker

    worker = StreamWorker("t", RuntimeSettings(kafka_bootstrap_servers="127.0.0.1:9", data_dir=tmp_path))
    assert worker._batch_limit == 500
    worker._adapt(500, 0.01)
    worker._adapt(1000, 0.01)
    assert worker._batch_limit == 2000
    worker._adapt(2000, 3 * BATCH_BUDGET_S)
    assert worker._batch_limit == 1000
    worker._adapt(10, 0.001)
    worker._adapt(500, 3 * BATCH_BUDGET_S)
    assert worker._batch_limit == 500  # never below the base size
    for _ in range(10):
        worker._adapt(5000, 0.01)
    assert worker._batch_limit == 5000
