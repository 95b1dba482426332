"""How the exchange reaches one Kafka cluster: where, which engine, whose credentials.

:class:`KafkaAccess` is what a federation, the demo and the tests are given instead of a bare
bootstrap address. The engine decides what the clients may ask of the broker
(:data:`ENGINES`): the embedded broker refuses idempotent producers and transactions, Apache
Kafka serves both. A secured cluster's access also knows its CA and, per principal, the file
holding the SCRAM password, so daemon configurations name files and never a password.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from broker.errors import UsageError
from broker.transport.security import PLAINTEXT, ClientSecurity, ScramMechanism

__all__ = ["ADMIN_USER", "ENGINES", "Capabilities", "Engine", "KafkaAccess"]

Engine = Literal["apache", "embedded"]
#: the super user of a secured local cluster, for operators' and tests' own clients
ADMIN_USER: Final = "admin"


@dataclasses.dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine serves beyond plain produce and consume."""

    #: InitProducerId for idempotent producers (aiokafka asks with version 0)
    idempotence: bool
    #: transactions: transactional producers, offsets in transactions, read_committed
    transactions: bool


ENGINES: Final[Mapping[Engine, Capabilities]] = MappingProxyType(
    {
        # probed: aiokafka 0.14's InitProducerId v0 is accepted by Kafka 4.3, refused by Tansu
        "apache": Capabilities(idempotence=True, transactions=True),
        "embedded": Capabilities(idempotence=False, transactions=False),
    }
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class KafkaAccess:
    """One cluster as the exchange's processes reach it.

    ``ca_file`` and ``secrets_dir`` are set for a SASL_SSL cluster only: the CA every client
    trusts, and a directory with one file per SCRAM user holding its password.
    """

    bootstrap: str
    engine: Engine
    ca_file: Path | None = None
    secrets_dir: Path | None = None
    mechanism: ScramMechanism = "SCRAM-SHA-512"

    def __post_init__(self) -> None:
        if (self.ca_file is None) != (self.secrets_dir is None):
            raise UsageError("a secured cluster's access names both its CA and its secrets")

    @property
    def capabilities(self) -> Capabilities:
        """What this cluster's engine serves."""
        return ENGINES[self.engine]

    @property
    def secured(self) -> bool:
        """Whether clients must log in (SASL_SSL) rather than connect in PLAINTEXT."""
        return self.ca_file is not None

    def password_file(self, user: str) -> Path:
        """The file holding ``user``'s SCRAM password."""
        if self.secrets_dir is None:
            raise UsageError("a PLAINTEXT cluster has no passwords")
        path = self.secrets_dir / user
        if not path.is_file():
            raise UsageError(f"the cluster has no SCRAM user {user!r} (no {path})")
        return path

    def security(self, user: str = ADMIN_USER) -> ClientSecurity:
        """How ``user`` connects: SCRAM over TLS on a secured cluster, else PLAINTEXT."""
        if self.ca_file is None:
            return PLAINTEXT
        password = self.password_file(user).read_text(encoding="utf-8").strip()
        return ClientSecurity.sasl_ssl(
            ca_file=self.ca_file, mechanism=self.mechanism, username=user, password=password
        )
