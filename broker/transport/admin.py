"""Cluster administration beyond topics: ACLs, and who leads what (for fault tests and tools).

aiokafka's admin client has no ACL call, but its protocol layer has ``CreateAcls`` and
negotiates the version per connection (Kafka 4 serves v1 and later, which carry the pattern
type); :func:`create_acls` sends one request per rule and operation and reports the first
refusal. The grants are anything shaped like :class:`AclGrant`, so the ACL plan (a pure
table above this layer) is applied as it is, with no copy of its types here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Literal, Protocol

import aiokafka.client
from aiokafka.protocol.admin import CreateAclsRequest

from broker.errors import TransportError
from broker.transport.kafka import _transport_errors, open_admin
from broker.transport.security import PLAINTEXT, ClientSecurity

__all__ = ["AclGrant", "broker_ids", "create_acls", "partition_leaders"]

# Kafka's wire codes (org.apache.kafka.common.resource / acl)
_RESOURCE: Final = {"topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
_PATTERN: Final = {"literal": 3, "prefixed": 4}
_OPERATION: Final = {
    "All": 2,
    "Read": 3,
    "Write": 4,
    "Create": 5,
    "Delete": 6,
    "Alter": 7,
    "Describe": 8,
    "IdempotentWrite": 12,
}
_ALLOW: Final = 3


class AclGrant(Protocol):
    """One principal allowed some operations on one resource (``broker.config.AclRule``)."""

    @property
    def principal(self) -> str: ...
    @property
    def resource_type(self) -> str: ...
    @property
    def resource_name(self) -> str: ...
    @property
    def operations(self) -> Sequence[str]: ...
    @property
    def pattern_type(self) -> Literal["literal", "prefixed"]: ...


async def create_acls(
    bootstrap: str,
    grants: Sequence[AclGrant],
    *,
    security: ClientSecurity = PLAINTEXT,
    client_id: str = "broker-admin",
    request_timeout_ms: int = 30_000,
) -> int:
    """Add an ALLOW binding for every operation of every grant, from any host; returns how
    many bindings were sent. Adding one that exists already is not an error (Kafka keeps
    one copy). Raises :class:`TransportError` with the broker's reason for the first refusal
    (an authoriser-less cluster refuses them all: SECURITY_DISABLED).
    """
    requests = []
    for grant in grants:
        for operation in grant.operations:
            requests.append(
                CreateAclsRequest(
                    resource_type=_code(_RESOURCE, grant.resource_type, "resource type"),
                    resource_name=grant.resource_name,
                    resource_pattern_type_filter=_code(_PATTERN, grant.pattern_type, "pattern"),
                    principal=grant.principal,
                    host="*",
                    operation=_code(_OPERATION, operation, "operation"),
                    permission_type=_ALLOW,
                )
            )
    async with _client(bootstrap, security, client_id, request_timeout_ms) as client:
        node = client.get_random_node()
        for request, described in zip(requests, _each_operation(grants), strict=True):
            with _transport_errors("creating ACLs"):
                response = await client.send(node, request)
            for error_code, message in response.creation_responses:
                if error_code:
                    raise TransportError(
                        f"the cluster refused the ACL {described}: "
                        f"{message or f'error code {error_code}'}"
                    )
    return len(requests)


async def broker_ids(
    bootstrap: str, *, security: ClientSecurity = PLAINTEXT, request_timeout_ms: int = 10_000
) -> list[int]:
    """The ids of the brokers the cluster's metadata lists now (fenced ones are left out)."""
    async with open_admin(
        bootstrap, request_timeout_ms=request_timeout_ms, security=security
    ) as admin:
        with _transport_errors("describing the cluster"):
            cluster = await admin.describe_cluster()
    return sorted(int(broker["node_id"]) for broker in cluster["brokers"])


async def partition_leaders(
    bootstrap: str,
    topic: str,
    *,
    security: ClientSecurity = PLAINTEXT,
    request_timeout_ms: int = 10_000,
) -> dict[int, tuple[int, tuple[int, ...]]]:
    """``{partition: (leader id, in-sync replica ids)}`` of ``topic`` now (leader -1: none)."""
    async with open_admin(
        bootstrap, request_timeout_ms=request_timeout_ms, security=security
    ) as admin:
        with _transport_errors(f"describing {topic}"):
            (described,) = await admin.describe_topics([topic])
    if described["error_code"]:
        raise TransportError(f"cannot describe {topic}: error code {described['error_code']}")
    return {
        int(p["partition"]): (int(p["leader"]), tuple(sorted(int(r) for r in p["isr"])))
        for p in described["partitions"]
    }


def _code(table: dict[str, int], name: str, what: str) -> int:
    try:
        return table[name]
    except KeyError:
        raise TransportError(f"unknown ACL {what} {name!r}") from None


def _each_operation(grants: Sequence[AclGrant]) -> list[str]:
    return [
        f"{g.principal} {op} {g.resource_type} {g.resource_name!r} ({g.pattern_type})"
        for g in grants
        for op in g.operations
    ]


@contextlib.asynccontextmanager
async def _client(
    bootstrap: str, security: ClientSecurity, client_id: str, request_timeout_ms: int
) -> AsyncIterator[Any]:
    security.check_bootstrap(bootstrap)
    client = aiokafka.client.AIOKafkaClient(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        request_timeout_ms=request_timeout_ms,
        **security.client_options(),
    )
    try:
        with _transport_errors(f"connecting an admin client to {bootstrap}"):
            await client.bootstrap()
        yield client
    finally:
        with _transport_errors("closing an admin client"):
            await client.close()
