"""The ACLs derived from the catalogue: single writers, consumers can read, nobody else reads private data."""

from __future__ import annotations

import pytest

from schemas.topics import BY_NAME, TOPICS, CliAccess, Service, TopicSpec
from services.ops.topology import DEAD_LETTER_TOPICS, GROUP_TOPICS, SERVICES, consumed_topics, source_of
from services.security.acls import (
    GENERATED,
    OPERATIONS_USER,
    Operation,
    ResourceType,
    acls,
    managed,
    process_services,
    readers,
    render,
    rights,
    user_of,
    users,
    writers,
)
from tests.kafka_broker import local_kafka

PRIMARY = [spec for spec in TOPICS if not spec.dead_letter]
WRITES = writers()
READS = readers()


def test_the_generated_file_is_current() -> None:
    assert GENERATED.read_text() == render(), "deploy/kafka/acls.yaml is stale: run `make schemas`"


def test_the_local_secure_broker_creates_exactly_the_users_the_acls_name() -> None:
    assert sorted(local_kafka.SERVICE_USERS) == users()
    assert local_kafka.ADMIN_USER not in users()


def test_every_process_signs_in_as_its_service() -> None:
    from services.processes import PROCESSES

    services = process_services()
    assert sorted(name for names in services.values() for name in names) == sorted(PROCESSES)
    assert rights()[user_of(Service.REFERRALS)].processes == ("referrals-api", "referrals-worker")


def test_referrals_may_not_write_matching_topics() -> None:
    matching = [spec.name for spec in PRIMARY if spec.owner is Service.MATCHING]
    assert matching
    assert all(user_of(Service.REFERRALS) not in WRITES.get(name, set()) for name in matching)


@pytest.mark.parametrize("spec", PRIMARY, ids=lambda spec: spec.name)
def test_one_service_writes_each_topic(spec: TopicSpec) -> None:
    """Single writer: the owner, or for registries only the ``circles`` command."""
    service_writers = WRITES.get(spec.name, set()) - {OPERATIONS_USER}
    if spec.cli is CliAccess.ONLY_WRITER:
        assert service_writers == set() and OPERATIONS_USER in WRITES[spec.name]
    else:
        assert service_writers == {user_of(spec.owner)}


def test_dead_letter_topics_are_written_by_the_services_that_consume_their_source() -> None:
    for spec in DEAD_LETTER_TOPICS:
        source = source_of(spec.name)
        assert source is not None
        expected = {user_of(service) for service in SERVICES if source in consumed_topics(service)}
        assert WRITES.get(spec.name, set()) == expected, spec.name  # none for registries read as views


def test_the_operations_principal_writes_only_registries_commands_and_replay_destinations() -> None:
    written = {name for name, who in WRITES.items() if OPERATIONS_USER in who}
    front_ends = {spec.name for spec in PRIMARY if spec.cli in (CliAccess.WRITE, CliAccess.ONLY_WRITER)}
    replayed = {spec.name for spec in GROUP_TOPICS}
    assert written == front_ends | replayed
    assert not any(BY_NAME[name].dead_letter for name in written)


def test_every_consumed_topic_is_readable_by_its_consumers() -> None:
    for spec in PRIMARY:
        for consumer in spec.consumers:
            assert user_of(consumer) in READS[spec.name], (spec.name, consumer)


def test_private_data_is_read_only_by_its_service_its_consumers_and_operations() -> None:
    for spec in TOPICS:
        if not spec.personal_data:
            continue
        source = source_of(spec.name) if spec.dead_letter else spec
        assert source is not None
        allowed = {user_of(source.owner), *(user_of(c) for c in source.consumers), OPERATIONS_USER}
        assert READS.get(spec.name, set()) <= allowed, spec.name


def test_agency_systems_only_submit() -> None:
    agencies = rights()[user_of(Service.PARTNER_AGENCIES)]
    assert dict(agencies.topics) == {"circles.referrals.inbound.v1": {Operation.WRITE}}
    assert not agencies.groups


def test_each_worker_joins_only_its_own_group() -> None:
    for service in SERVICES:
        groups = rights()[user_of(service)].groups
        joined = {name for name, ops in groups.items() if Operation.READ in ops}
        assert joined == {f"circles-{service.value}"}
        assert all(ops == {Operation.DESCRIBE} for name, ops in groups.items() if name not in joined)


def test_every_binding_is_literal_and_under_the_prefix() -> None:
    bindings = acls("t1.")
    assert bindings and all(acl.resource.startswith("t1.") for acl in bindings)
    assert {acl.resource_type for acl in bindings} == {ResourceType.TOPIC, ResourceType.GROUP}
    assert all(acl.host == "*" and acl.pattern.name == "LITERAL" for acl in bindings)
    assert len(bindings) == len(set(bindings))


def test_pruning_touches_only_our_principals_under_our_prefix() -> None:
    ours = managed("t1.")
    mine = acls("t1.")[0]
    assert ours(mine)
    assert not ours(acls("t2.")[0])
    assert not ours(type(mine)("User:someone-else", mine.resource_type, mine.resource, mine.operation))
