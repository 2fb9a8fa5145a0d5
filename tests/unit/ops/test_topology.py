"""The status command's idea of who consumes what must match what the workers actually subscribe to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.topics import Service
from services.ops.deadletters import resolve
from services.ops.topology import GROUP_TOPICS, SERVICES, consumed_topics, group_id, source_of
from services.protection.keks import add_kek


def _routes(service: Service, tmp_path: Path) -> set[str]:
    common: dict[str, Any] = {"kafka_bootstrap_servers": "127.0.0.1:9", "data_dir": tmp_path}
    add_kek(tmp_path / "kek.json")
    if service is Service.REFERRALS:
        from services.referrals.agents import ReferralsWorker
        from services.referrals.settings import ReferralsSettings

        return set(ReferralsWorker(ReferralsSettings(**common)).worker.routes)
    if service is Service.MATCHING:
        from services.matching.agents import MatchingWorker
        from services.matching.settings import MatchingSettings

        return set(MatchingWorker(MatchingSettings(**common)).worker.routes)
    if service is Service.NOTIFICATIONS:
        from services.notifications.agents import NotificationsWorker
        from services.notifications.settings import NotificationsSettings

        return set(NotificationsWorker(NotificationsSettings(**common)).worker.routes)
    if service is Service.CIRCLES:
        from services.circles.agents import CirclesWorker
        from services.circles.settings import CirclesSettings

        return set(CirclesWorker(CirclesSettings(**common)).worker.routes)
    from services.coordinator.agents import CoordinatorWorker
    from services.coordinator.settings import CoordinatorSettings

    return set(CoordinatorWorker(CoordinatorSettings(**common)).worker.routes)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.value)
def test_consumed_topics_are_the_workers_routes(service: Service, tmp_path: Path) -> None:
    assert {spec.name for spec in consumed_topics(service)} == _routes(service, tmp_path)


def test_every_service_with_a_worker_is_watched() -> None:
    assert set(SERVICES) == {
        Service.REFERRALS,
        Service.MATCHING,
        Service.NOTIFICATIONS,
        Service.COORDINATOR,
        Service.CIRCLES,
    }
    assert group_id(Service.MATCHING, "t1.") == "t1.circles-matching"
    assert all(spec.dlq for spec in GROUP_TOPICS)


def test_dead_letter_topics_are_named_by_themselves_or_their_source() -> None:
    assert resolve("circles.volunteers.commands.v1.dlq").name == "circles.volunteers.commands.v1.dlq"
    assert resolve("circles.volunteers.commands.v1").name == "circles.volunteers.commands.v1.dlq"
    assert source_of("circles.volunteers.commands.v1.dlq").name == "circles.volunteers.commands.v1"  # type: ignore[union-attr]
    for wrong in ("circles.referrals.state.v1", "nope", "nope.dlq"):
        with pytest.raises(LookupError, match="circles ops dlq list"):
            resolve(wrong)
