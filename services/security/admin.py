"""Apply the derived ACLs to a cluster: create what is missing, delete our principals' stale ones.

aiokafka 0.14's admin client has no ACL methods, but its protocol module has the CreateAcls, DescribeAcls
and DeleteAcls messages (v1, which Kafka 4.x accepts); this module builds batches of them and sends them
with the admin client's connection. It needs ALTER on the cluster (and DESCRIBE to list ACLs): run it as
the admin super-user.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DeleteAclsRequest_v1, DescribeAclsRequest_v1
from aiokafka.protocol.api import Request

from services.runtime.kafka_security import security_options
from services.security.acls import ALLOW, Acl, Operation, PatternType, ResourceType

ANY = 1
"""The ``ANY`` code of Kafka's resource, pattern, operation and permission filters."""
BATCH = 200


def _bindings(acls: list[Acl]) -> list[tuple[Any, ...]]:
    """As CreateAcls v1 takes its creations and DeleteAcls v1 its (exact) filters."""
    return [
        (acl.resource_type, acl.resource, acl.pattern, acl.principal, acl.host, acl.operation, ALLOW)
        for acl in acls
    ]


class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 30

    def __init__(self, acls: list[Acl]) -> None:
        self._acls = acls

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class(_bindings(self._acls))


class _DeleteAcls(Request[DeleteAclsRequest_v1]):  # type: ignore[misc]
    """The same bindings as exact filters (aiokafka picks the message class from the generic argument)."""

    API_KEY = 31
    __init__ = _CreateAcls.__init__
    build = _CreateAcls.build


class _DescribeAllAcls(Request[DescribeAclsRequest_v1]):  # type: ignore[misc]
    API_KEY = 29

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class(ANY, None, ANY, None, None, ANY, ANY)


@dataclass(frozen=True)
class AclChanges:
    created: list[Acl]
    deleted: list[Acl]
    kept: int


def _check(errors: Iterable[tuple[int, str | None]]) -> None:
    for code, message in errors:
        if code:
            raise for_code(code)(message or "")


def _parse(resources: list[Any]) -> set[Acl]:
    found: set[Acl] = set()
    for resource_type, resource_name, pattern_type, bindings in resources:
        for principal, host, operation, permission in bindings:
            if permission != ALLOW:
                continue
            try:
                found.add(
                    Acl(
                        principal,
                        ResourceType(resource_type),
                        resource_name,
                        Operation(operation),
                        PatternType(pattern_type),
                        host,
                    )
                )
            except ValueError:  # a kind of binding we never make (e.g. transactional ids): not ours
                continue
    return found


class AclAdmin:
    """``async with AclAdmin(bootstrap) as admin:`` list, create and delete ACL bindings."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._client = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, client_id="circles-acls", **security_options()
        )

    async def __aenter__(self) -> AclAdmin:
        await self._client.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.close()

    async def _send(self, request: Any) -> Any:
        # aiokafka has no public ACL API; its admin client's own request path (pinned: aiokafka <0.15).
        return await self._client._send_request(request)

    async def bindings(self) -> set[Acl]:
        response = await self._send(_DescribeAllAcls())
        _check([(response.error_code, response.error_message)])
        return _parse(response.resources)

    async def create(self, acls: list[Acl]) -> None:
        for start in range(0, len(acls), BATCH):
            response = await self._send(_CreateAcls(acls[start : start + BATCH]))
            _check(response.creation_responses)

    async def delete(self, acls: list[Acl]) -> None:
        for start in range(0, len(acls), BATCH):
            response = await self._send(_DeleteAcls(acls[start : start + BATCH]))
            _check((code, message) for code, message, _matching in response.filter_responses)


async def apply_acls(
    bootstrap_servers: str,
    wanted: Iterable[Acl],
    *,
    ours: Callable[[Acl], bool],
    prune: bool = True,
    dry_run: bool = False,
    seconds: float = 30.0,
) -> AclChanges:
    """Make the cluster hold ``wanted``: create the missing bindings and, with ``prune``, delete the bindings
    ``ours`` claims (our principals, our resources) that are not wanted. Others' ACLs are left alone. Returns
    once the broker answering enforces the result (ACLs reach brokers through the metadata log)."""
    target = set(wanted)
    async with AclAdmin(bootstrap_servers) as admin:
        present = await admin.bindings()
        missing = sorted(target - present)
        stale = sorted(acl for acl in present - target if ours(acl)) if prune else []
        if dry_run:
            return AclChanges(missing, stale, len(target & present))
        if stale:
            await admin.delete(stale)
        if missing:
            await admin.create(missing)
        deadline = time.monotonic() + seconds
        while True:
            now = await admin.bindings()
            if target <= now and not (set(stale) & now):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ACLs did not reach the broker within {seconds:.0f}s")
            await asyncio.sleep(0.1)
    return AclChanges(missing, stale, len(target & present))
