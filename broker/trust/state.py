"""A daemon's trust memory on disk: what it must never go back from, across restarts.

In memory alone, "never go back" lasts until the next restart: then an older registry that is
still signed and unexpired could undo a revocation, an older accord revive laxer rules, a
truncated acts file lift a suspension. So every daemon keeps, in ``trust-state.json`` beside
its store:

- the last registry document it verified (all of it, signatures included), which is what a
  new registry file must verify against, as TUF keeps its trusted root;
- for each accord, the highest version that has been in force (the floor);
- for each accord, how far its chain of signed acts went and the standing it left.

The file is canonical JSON ``{"key_id", "signature", "state"}``, where the daemon's own signing
key signs ``TRUST_STATE_CONTEXT || 0x00 || uint64_be(len(c)) || c`` over the canonical JSON
``c`` of ``state``: a file edited at rest (a lowered floor, an older registry) does not verify,
and the daemon refuses to start on it. Only the daemon's own key is accepted: nothing inside the
file (its registry above all) may vouch for the key that signed it, or whoever can write the
file could sign a state of their own choosing. After a rotation of the daemon's key the
operator, who holds the previous key, vouches for it (``broker trust rekey``): the file is
verified with that key, which must not have been revoked, and re-signed with the new one.

It is written to a temporary file, fsynced and renamed, then the directory is fsynced: a crash
leaves the old state or the new, never half.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import pathlib
from collections.abc import Mapping

import pydantic

from broker import crypto, errors, strictjson
from broker.bounded import read_bounded
from broker.durable import replace_durably
from broker.ids import AccordId, KeyId
from broker.keys import Registry, canonical_json, load_trusted_registry
from broker.reasons import ReasonCode
from broker.trust.acts import ActMemory, Halt

__all__ = ["TRUST_STATE_CONTEXT", "TrustMemory", "TrustStateFile"]

TRUST_STATE_CONTEXT = b"broker/trust-state/v1"
_MAX_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class TrustMemory:
    """What a daemon remembers: the registry document and each accord's floor and acts."""

    registry: bytes
    floors: Mapping[AccordId, int]
    acts: Mapping[AccordId, ActMemory]


def _encode(memory: TrustMemory) -> dict[str, object]:
    return {
        "v": 1,
        "registry": base64.b64encode(memory.registry).decode("ascii"),
        "floors": {str(a): v for a, v in sorted(memory.floors.items())},
        "acts": {
            str(a): {
                "length": m.length,
                "head": m.head,
                "halt": None
                if m.halt is None
                else {"code": str(m.halt.code), "reason": m.halt.reason},
            }
            for a, m in sorted(memory.acts.items())
        },
    }


class _HaltModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)
    code: ReasonCode
    reason: str


class _ActsModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)
    length: int
    head: str
    halt: _HaltModel | None


class _StateModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)
    v: int
    registry: str
    floors: dict[str, int]
    acts: dict[str, _ActsModel]


class _FileModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)
    key_id: str
    signature: str
    state: _StateModel


def _signing_input(state: bytes) -> bytes:
    return TRUST_STATE_CONTEXT + b"\x00" + len(state).to_bytes(8, "big") + state


class TrustStateFile:
    """``trust-state.json``: load (verifying it) and save (atomically) a daemon's memory."""

    def __init__(
        self,
        path: pathlib.Path,
        *,
        key: crypto.SigningKey,
        previous: crypto.VerifyKey | None = None,
    ) -> None:
        """``previous``: the daemon's key before a rotation, given by its operator; a file
        it signed is accepted (unless the stored registry revoked it) to be re-signed."""
        self.path = path
        self._key = key
        self._previous = previous

    def load(self) -> TrustMemory | None:
        """The memory on disk, or None when there is none; raises TrustStateError (a
        RegistryError) when the file exists but does not verify."""
        if not self.path.exists() and not self.path.is_symlink():
            return None
        data = read_bounded(
            self.path,
            limit=_MAX_BYTES,
            what="the trust state",
            too_large=errors.RegistryError,
            unreadable=errors.RegistryError,
        )
        document = self._parse(data)
        state = document.state
        try:
            registry_bytes = base64.b64decode(state.registry, validate=True)
        except binascii.Error as exc:
            raise self._bad("its registry is not base64") from exc
        stored = load_trusted_registry(registry_bytes)
        self._check_signature(document, stored)
        return TrustMemory(
            registry=registry_bytes,
            floors={AccordId(a): v for a, v in state.floors.items()},
            acts={
                AccordId(a): ActMemory(
                    m.length,
                    m.head,
                    None if m.halt is None else Halt(m.halt.code, m.halt.reason),
                )
                for a, m in state.acts.items()
            },
        )

    def save(self, memory: TrustMemory) -> None:
        """Sign and write ``memory``: temporary file, fsync, rename, fsync the directory."""
        state = canonical_json(_encode(memory))
        signature = self._key.sign(_signing_input(state))
        document = canonical_json(
            {
                "key_id": self._key.public_key().key_id,
                "signature": base64.b64encode(signature).decode("ascii"),
                "state": strictjson.loads(state, max_depth=8, allow_floats=False),
            }
        )
        replace_durably(self.path, document)

    def _parse(self, data: bytes) -> _FileModel:
        try:
            raw = strictjson.loads(data, max_depth=8, allow_floats=False)
            return _FileModel.model_validate_json(canonical_json(raw))
        except (strictjson.StrictJSONError, pydantic.ValidationError) as exc:
            raise self._bad(f"it is malformed ({type(exc).__name__})") from exc

    def _check_signature(self, document: _FileModel, stored: Registry) -> None:
        own = self._key.public_key()
        if document.key_id == own.key_id:
            key = own
        elif self._previous is not None and document.key_id == self._previous.key_id:
            key = self._previous
            revoked = self._revocation(KeyId(key.key_id), stored)
            if revoked is not None:
                raise self._bad(
                    f"it is signed by the previous key {key.key_id}, which the registry it "
                    f"holds revoked ({revoked}): whoever held that key could have written it"
                )
        else:
            raise self._bad(
                f"it is signed by key {document.key_id}, not this daemon's key {own.key_id} "
                "(after a rotation of the daemon's key, `broker trust rekey --previous-key` "
                "re-signs it)"
            )
        state = canonical_json(document.state.model_dump(mode="json"))
        try:
            key.verify(
                signature=base64.b64decode(document.signature, validate=True),
                message=_signing_input(state),
            )
        except (errors.VerificationError, binascii.Error) as exc:
            raise self._bad("its signature does not verify: it was changed at rest") from exc

    @staticmethod
    def _revocation(key_id: KeyId, stored: Registry) -> str | None:
        for record in stored.key_records():
            if record.key_id == key_id and record.revoked_at is not None:
                return f"revoked: {record.reason}"
        return None

    def _bad(self, why: str) -> errors.RegistryError:
        return errors.RegistryError(
            f"{self.path}: the trust state does not verify: {why}; refusing to start. Restore "
            "it from a backup, or re-anchor with `broker trust reset` after checking the "
            "registry out of band"
        )
