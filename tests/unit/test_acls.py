"""The ACLs derived from the catalogue: single writers, consumers can read, nobody else reads private data."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from schemas.topics import BY_NAME, SUBJECT_KEYS, TOPICS, CliAccess, Service, TopicSpec
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

ROOT = Path(__file__).resolve().parents[2]
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
    """Single writer: the owner, or for registries only the ``circles`` command; besides the owner, only the
    front ends the catalogue names (``writers``)."""
    service_writers = WRITES.get(spec.name, set()) - {OPERATIONS_USER}
    if spec.cli is CliAccess.ONLY_WRITER:
        assert service_writers == set() and OPERATIONS_USER in WRITES[spec.name]
    else:
        assert service_writers == {user_of(spec.owner), *(user_of(writer) for writer in spec.writers)}


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


def test_only_the_referrals_service_deletes_and_only_the_inbound_submissions_it_purges() -> None:
    deleters = {
        (user, topic)
        for user, held in rights().items()
        for topic, ops in held.topics.items()
        if Operation.DELETE in ops
    }
    assert deleters == {(user_of(Service.REFERRALS), "circles.referrals.inbound.v1")}


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


CLI_KEYS_CLIENT = "circles-cli-keys"
"""The client id of the ``circles`` command's sealers (``build_sealer(..., client_id=...)``)."""
KEYS_ADMIN_CLIENT = "circles-keys-admin"
"""``circles keys`` (KEK rotation) runs as ``circles-admin``, the super user, outside the ACLs."""


def _sealers() -> dict[str, set[str]]:
    """Every ``build_sealer(settings, [kinds], client_id=...)`` in services/, read from the source: the keys
    topics each principal seals or opens with. The command's (its client id) sign in as the operations
    principal; the others as the service whose package holds them."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "build_sealer"):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert len(node.args) >= 2 and isinstance(node.args[1], ast.List), f"{where}: list the kinds"
            kinds = [ast.literal_eval(kind) for kind in node.args[1].elts]
            client = next((k.value for k in node.keywords if k.arg == "client_id"), None)
            assert isinstance(client, ast.Constant), f"{where}: name the client"
            if client.value == KEYS_ADMIN_CLIENT:
                continue
            if client.value == CLI_KEYS_CLIENT:
                user = OPERATIONS_USER
            else:
                user = user_of(Service(path.relative_to(ROOT / "services").parts[0]))
            found.setdefault(user, set()).update(SUBJECT_KEYS[kind].name for kind in kinds)
    return found


SEALERS = _sealers()
KEYS_TOPICS = {spec.name for spec in TOPICS if spec.holds_keys}


def test_the_sealers_found_are_those_of_the_services_and_the_command() -> None:
    assert _sealers() == {
        user_of(Service.REFERRALS): {"circles.referrals.keys.v1"},
        user_of(Service.MATCHING): {"circles.volunteers.keys.v1"},
        user_of(Service.COORDINATOR): {"circles.coordinator.keys.v1"},
        user_of(Service.CIRCLES): {"circles.referrals.keys.v1"},
        OPERATIONS_USER: {
            "circles.volunteers.keys.v1",
            "circles.coordinator.keys.v1",
            "circles.referrals.keys.v1",
        },
    }
    assert set().union(*SEALERS.values()) == KEYS_TOPICS


def test_data_keys_are_read_by_exactly_the_principals_that_seal_or_open_with_them() -> None:
    for topic in KEYS_TOPICS:
        expected = {user for user, topics in SEALERS.items() if topic in topics}
        assert READS.get(topic, set()) == expected, topic


def test_the_command_writes_the_data_keys_it_seals_with_and_the_owner_unless_only_the_command_seals() -> None:
    for topic in KEYS_TOPICS:
        spec = BY_NAME[topic]
        expected = {OPERATIONS_USER} if topic in SEALERS[OPERATIONS_USER] else set()
        if spec.cli is not CliAccess.ONLY_WRITER:
            expected.add(user_of(spec.owner))
        assert WRITES.get(topic, set()) == expected, topic
    assert WRITES["circles.coordinator.keys.v1"] == {OPERATIONS_USER}  # the page only opens account names
