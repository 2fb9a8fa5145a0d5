"""Kafka ACLs derived from the topic catalogue (``schemas/topics.py``) and the process registry
(``services/processes.py``): nothing here names a topic; a new topic gets its ACLs from its catalogue entry.

Principals (SASL/SCRAM users; the local secure broker creates the same list):

* ``circles-<service>`` for each service that runs processes (``<service>-api``, ``-worker``, ``-web`` all
  sign in as their service): it may
  - write (and read back) the topics it owns, its keys topic included, except those only the ``circles``
    command writes (catalogue ``cli: only-writer``: agencies, coordinator accounts and their data keys),
    which it only reads; and write those whose catalogue ``writers`` name it, as a front end of their owner
    (the partner API writes an agency's acknowledgement of a concern to the circles commands);
  - read the topics it consumes, through its consumer group or whole as a view (changelogs included),
    and delete from those it purges (catalogue ``purged_by_consumers``: the plain inbound submissions);
  - write and read the dead-letter topics of the topics its workers consume (a worker dead-letters a record
    of a topic it consumes to ``<topic>.dlq``, whoever owns the topic);
  - use its consumer group ``<prefix>circles-<service>`` (READ);
  - for the services that show the pipeline status (the coordinator's operations page): describe the
    consumed topics, their dead-letter topics and every service's group, to read offsets and lag. Not read
    them: the page shows the age of the newest event only for topics the coordinator consumes anyway.
* ``circles-<owner>`` for catalogue owners outside the system (partner agencies' systems): write only.
* ``circles-ops``, the ``circles`` command's principal: it reads and writes what the catalogue's ``cli``
  field says (registries, the coordinator's commands, and the keys topics of the subjects it seals:
  volunteers, coordinator accounts); reads every consumed topic (the age of its newest event, for ``ops
  status``) and every dead-letter topic; writes the topics dead letters are replayed to; uses the replay
  group and describes the services' groups. Creating topics and changing ACLs is not its
  job: that is the admin's (a super-user, ``circles-admin``), once per installation or upgrade.

Kafka lets READ and WRITE imply DESCRIBE, so DESCRIBE appears only where it is the whole right. The
idempotent producers need no cluster right: since Kafka 3.0, WRITE on any topic allows InitProducerId.

``python -m services.security.acls`` writes ``deploy/kafka/acls.yaml`` (``--check``: fail when stale).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml

from schemas.topics import TOPICS, CliAccess, Service, TopicSpec
from services.ops.topology import (
    DEAD_LETTER_TOPICS,
    GROUP_TOPICS,
    REPLAY_GROUP,
    SERVICES,
    consumed_topics,
    group_id,
    source_of,
)

ADMIN_USER = "circles-admin"
OPERATIONS_USER = "circles-ops"
STATUS_READERS: tuple[Service, ...] = (Service.COORDINATOR,)
"""Services whose processes show the pipeline status (``coordinator-web``'s operations page)."""
GENERATED = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "acls.yaml"


class ResourceType(IntEnum):
    """Kafka's codes (``org.apache.kafka.common.resource.ResourceType``)."""

    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """Kafka's codes (``org.apache.kafka.common.acl.AclOperation``)."""

    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


ALLOW = 3
"""``AclPermissionType.ALLOW``: every ACL here allows; what none allows is denied."""


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding: ``principal`` may ``operation`` on the resource, from any host."""

    principal: str
    resource_type: ResourceType
    resource: str
    operation: Operation
    pattern: PatternType = PatternType.LITERAL
    host: str = "*"


def user_of(service: Service) -> str:
    return f"circles-{service.value}"


def principal(user: str) -> str:
    return f"User:{user}"


def process_services() -> dict[Service, tuple[str, ...]]:
    """Each service that runs processes, with their names (``<service>-<kind>`` in the registry)."""
    from services.processes import PROCESSES

    by_service: dict[Service, list[str]] = defaultdict(list)
    for name in sorted(PROCESSES):
        by_service[Service(name.rsplit("-", 1)[0])].append(name)
    return {service: tuple(names) for service, names in by_service.items()}


def _operations_by_name() -> defaultdict[str, set[Operation]]:
    return defaultdict(set)


@dataclass
class Rights:
    """One principal's rights, by resource name (topic prefix applied)."""

    user: str
    processes: tuple[str, ...] = ()
    topics: defaultdict[str, set[Operation]] = field(default_factory=_operations_by_name)
    groups: defaultdict[str, set[Operation]] = field(default_factory=_operations_by_name)

    def topic(self, name: str, *operations: Operation) -> None:
        self.topics[name].update(operations)

    def group(self, name: str, *operations: Operation) -> None:
        self.groups[name].update(operations)

    def acls(self) -> list[Acl]:
        found = [
            Acl(principal(self.user), kind, name, operation)
            for kind, resources in ((ResourceType.TOPIC, self.topics), (ResourceType.GROUP, self.groups))
            for name, operations in resources.items()
            for operation in _without_implied(operations)
        ]
        return sorted(found)


def _without_implied(operations: set[Operation]) -> set[Operation]:
    if operations & {Operation.READ, Operation.WRITE}:
        return operations - {Operation.DESCRIBE}
    return operations


def _dead_letters_of(specs: Iterable[TopicSpec]) -> list[str]:
    return [spec.dlq for spec in specs]


def rights(prefix: str = "") -> dict[str, Rights]:
    """Every principal's rights, by user name; ``prefix`` is the deployment's topic and group prefix."""
    found: dict[str, Rights] = {}
    processes = process_services()
    for service, names in processes.items():
        own = found[user_of(service)] = Rights(user_of(service), names)
        for spec in TOPICS:
            if spec.dead_letter:
                continue
            if spec.owner is service:
                own.topic(prefix + spec.name, Operation.READ)
                if spec.cli is not CliAccess.ONLY_WRITER:
                    own.topic(prefix + spec.name, Operation.WRITE)
            if service in spec.writers:
                own.topic(prefix + spec.name, Operation.WRITE)
            if service in spec.consumers:
                own.topic(prefix + spec.name, Operation.READ)
                if spec.purged_by_consumers:
                    own.topic(prefix + spec.name, Operation.DELETE)
        for name in _dead_letters_of(consumed_topics(service)):
            own.topic(prefix + name, Operation.WRITE, Operation.READ)
        if service in SERVICES:
            own.group(group_id(service, prefix), Operation.READ)
        if service in STATUS_READERS:
            _describe_pipeline(own, prefix)
    for spec in TOPICS:  # owners without processes of their own: agency systems
        if not spec.dead_letter and spec.owner not in processes:
            found.setdefault(user_of(spec.owner), Rights(user_of(spec.owner))).topic(
                prefix + spec.name, Operation.WRITE
            )
    found[OPERATIONS_USER] = _operations(prefix)
    return dict(sorted(found.items()))


def _describe_pipeline(rights: Rights, prefix: str) -> None:
    for spec in GROUP_TOPICS:
        rights.topic(prefix + spec.name, Operation.DESCRIBE)
        rights.topic(prefix + spec.dlq, Operation.DESCRIBE)
    for service in SERVICES:
        rights.group(group_id(service, prefix), Operation.DESCRIBE)
    rights.group(prefix + REPLAY_GROUP, Operation.DESCRIBE)


def _operations(prefix: str) -> Rights:
    ops = Rights(OPERATIONS_USER, ("circles",))
    for spec in TOPICS:
        if spec.cli in (CliAccess.WRITE, CliAccess.ONLY_WRITER):
            ops.topic(prefix + spec.name, Operation.WRITE, Operation.READ)
        elif spec.cli is CliAccess.READ:
            ops.topic(prefix + spec.name, Operation.READ)
    for spec in GROUP_TOPICS:  # ops status: offsets, and the newest event's age
        ops.topic(prefix + spec.name, Operation.READ)
    for spec in DEAD_LETTER_TOPICS:  # dlq list, show, replay
        ops.topic(prefix + spec.name, Operation.READ)
        source = source_of(spec.name)
        assert source is not None, spec.name
        ops.topic(prefix + source.name, Operation.WRITE)
    for service in SERVICES:
        ops.group(group_id(service, prefix), Operation.DESCRIBE)
    ops.group(prefix + REPLAY_GROUP, Operation.READ)
    return ops


def acls(prefix: str = "") -> list[Acl]:
    """Every ACL binding, sorted."""
    return sorted(acl for entry in rights(prefix).values() for acl in entry.acls())


def managed(prefix: str = "") -> Callable[[Acl], bool]:
    """Which bindings are ours to prune: our principals' bindings on resources under the prefix."""
    principals = {principal(user) for user in rights(prefix)}

    def ours(acl: Acl) -> bool:
        return acl.principal in principals and acl.resource.startswith(prefix)

    return ours


def _holders(operation: Operation, prefix: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for acl in acls(prefix):
        if acl.resource_type is ResourceType.TOPIC and acl.operation is operation:
            found[acl.resource].add(acl.principal.removeprefix("User:"))
    return dict(found)


def writers(prefix: str = "") -> dict[str, set[str]]:
    """Topic → the users that may write it."""
    return _holders(Operation.WRITE, prefix)


def readers(prefix: str = "") -> dict[str, set[str]]:
    """Topic → the users that may read it."""
    return _holders(Operation.READ, prefix)


def users() -> list[str]:
    """Every SCRAM user the ACLs name (the admin is a super-user and needs none)."""
    return sorted(rights())


def document(prefix: str = "") -> dict[str, Any]:
    """The ACLs by principal, as ``deploy/kafka/acls.yaml`` holds them."""
    principals: dict[str, Any] = {}
    for user, entry in rights(prefix).items():
        principals[principal(user)] = {
            "processes": list(entry.processes),
            "topics": _names(entry.topics),
            "groups": _names(entry.groups),
        }
    return {
        "super_users": [principal(ADMIN_USER)],
        "allow_everyone_if_no_acl_found": False,
        "topic_prefix": prefix,
        "principals": principals,
    }


def _names(resources: dict[str, set[Operation]]) -> dict[str, list[str]]:
    return {name: sorted(op.name for op in _without_implied(ops)) for name, ops in sorted(resources.items())}


HEADER = """\
# Kafka ACLs of the Circles platform, one entry per SASL/SCRAM principal.
# Generated from schemas/topics.py and services/processes.py by `make schemas`
# (python -m services.security.acls): do not edit by hand; a test fails when this file is stale.
# Apply with `circles kafka acls apply` (as the admin super-user); every other access is denied.
# READ and WRITE imply DESCRIBE. Topic and group names take the deployment's CIRCLES_TOPIC_PREFIX.
"""


def render(prefix: str = "") -> str:
    return HEADER + yaml.safe_dump(document(prefix), sort_keys=False, width=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write deploy/kafka/acls.yaml from the catalogue")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale, write nothing")
    args = parser.parse_args(argv)
    text = render()
    current = GENERATED.read_text() if GENERATED.exists() else None
    if args.check:
        if current != text:
            sys.stderr.write(f"{GENERATED} is stale: run `make schemas`\n")
            return 1
        return 0
    if current != text:
        GENERATED.write_text(text)
        sys.stdout.write(f"wrote {GENERATED.relative_to(GENERATED.parents[2])}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
