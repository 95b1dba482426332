"""Signed acts on an accord: a suspension, a resumption, a termination.

Either party may stop sharing under an accord at once, without waiting for its expiry, by
signing a **suspension** with its policy key; sharing resumes only when **every** party signs
a **resumption**; a **termination**, signed by either party, is final. The acts on one accord
form a chain in ``<accord id>.acts.json`` beside the accord file::

    {"accord": "gb-rs", "acts": [{"act": {...}, "signatures": [...]}, ...]}

Each act is ``{"accord", "seq", "previous", "kind", "by", "at", "reason"}``: ``seq`` counts from
1, ``previous`` is the hex SHA-256 of the previous act's canonical bytes (64 zeros for the
first), so no act can be dropped, reordered or replaced without breaking the chain. A party
signs ``ACT_SIGNING_CONTEXT || 0x00 || uint64_be(len(c)) || c`` with its current policy key,
where ``c`` is the act's canonical JSON (docs/ACCORDS.md). A resumption that not every party has
signed yet is *pending*: it must be the last act and has no effect until complete.

Daemons apply an act when they first read it (that is its effect, audited by the gateway);
``at`` is the signer's own statement of when it signed. A daemon remembers how long the chain
was and its last digest, and refuses a file that does not extend it (a suspension is never
undone by deleting or truncating the file). Nothing here reads the clock or a file.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from typing import Annotated, Literal

import pydantic
from pydantic import Field

from broker import crypto, errors, strictjson
from broker.clock import parse_instant
from broker.envelope import DEFAULT_MAX_SKEW
from broker.ids import KeyId, PartnerCode
from broker.keys import Registry, canonical_json, format_timestamp
from broker.reasons import ReasonCode
from broker.schema._base import StrictModel

__all__ = [
    "ACT_SIGNING_CONTEXT",
    "GENESIS",
    "MAX_ACTS_FILE_BYTES",
    "Act",
    "ActKind",
    "ActMemory",
    "ActsFile",
    "Halt",
    "SignedAct",
    "Standing",
    "act_digest",
    "act_signers",
    "add_act",
    "declared_halt",
    "new_act",
    "parse_acts_file",
    "sign_act",
    "stand",
]

ACT_SIGNING_CONTEXT = b"broker/accord-act/v1"
#: the ``previous`` of the first act
GENESIS = "0" * 64
MAX_ACTS_FILE_BYTES = 256 * 1024
ActKind = Literal["suspend", "resume", "terminate"]
_PARTNER = r"^[A-Z]{2}$"
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


class Act(StrictModel):
    """One act on one accord, as signed."""

    accord: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    seq: Annotated[int, Field(ge=1, le=10_000)]
    previous: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    kind: ActKind
    by: Annotated[str, Field(pattern=_PARTNER)]
    at: Annotated[str, Field(pattern=_TIME)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ActSignature(StrictModel):
    """One party's signature over one act."""

    partner: Annotated[str, Field(pattern=_PARTNER)]
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    signature: Annotated[str, Field(min_length=1, max_length=16_384)]


class SignedAct(StrictModel):
    """An act and the signatures gathered on it so far."""

    act: Act
    signatures: Annotated[tuple[ActSignature, ...], Field(max_length=16)] = ()


class ActsFile(StrictModel):
    """``<accord>.acts.json``: every act on one accord, in order."""

    accord: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    acts: Annotated[tuple[SignedAct, ...], Field(max_length=1_000)] = ()

    def to_bytes(self) -> bytes:
        """Readable JSON (the file is reviewed like the accord beside it)."""
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")


@dataclasses.dataclass(frozen=True, slots=True)
class Halt:
    """Why an accord's flows are refused whatever its rules say."""

    code: ReasonCode
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class ActMemory:
    """What a daemon keeps of an accord's chain: its length, last digest and standing."""

    length: int
    head: str
    halt: Halt | None


@dataclasses.dataclass(frozen=True, slots=True)
class Standing:
    """An accord's chain, read and checked: the memory to keep, and a pending resumption."""

    memory: ActMemory
    #: the parties that have signed a pending resumption (empty when there is none)
    pending: frozenset[PartnerCode] = frozenset()
    #: acts applied by this reading that the previous memory did not hold (to be audited)
    new_acts: tuple[Act, ...] = ()


def act_bytes(act: Act) -> bytes:
    """The canonical JSON of ``act``."""
    return canonical_json(act.model_dump(mode="json"))


def act_digest(act: Act) -> str:
    """Lowercase hex SHA-256 of the act's canonical bytes: the next act's ``previous``."""
    return crypto.sha256(act_bytes(act)).hex()


def _signing_input(act: Act) -> bytes:
    canonical = act_bytes(act)
    return ACT_SIGNING_CONTEXT + b"\x00" + len(canonical).to_bytes(8, "big") + canonical


def parse_acts_file(data: bytes, *, source: str) -> ActsFile:
    """Parse an acts file strictly (duplicate keys, floats, unknown fields refused)."""
    if len(data) > MAX_ACTS_FILE_BYTES:
        raise errors.PolicyError(f"{source}: over {MAX_ACTS_FILE_BYTES} bytes")
    try:
        raw = strictjson.loads(data, max_depth=8, allow_floats=False)
        return ActsFile.model_validate_json(canonical_json(raw))
    except strictjson.StrictJSONError as exc:
        raise errors.PolicyError(f"{source}: not strict JSON: {exc}") from exc
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise errors.PolicyError(f"{source}: {where}: {first['msg']}") from exc


def new_act(
    chain: ActsFile, *, kind: ActKind, by: PartnerCode, at: dt.datetime, reason: str
) -> Act:
    """The next act on ``chain`` (not yet signed)."""
    last = chain.acts[-1].act if chain.acts else None
    return Act(
        accord=chain.accord,
        seq=1 if last is None else last.seq + 1,
        previous=GENESIS if last is None else act_digest(last),
        kind=kind,
        by=by,
        at=format_timestamp(at.replace(microsecond=0)),
        reason=reason,
    )


def sign_act(signed: SignedAct, *, key: crypto.SigningKey, partner: PartnerCode) -> SignedAct:
    """``signed`` with ``partner``'s signature added (replacing one by the same key)."""
    key_id = key.public_key().key_id
    kept = tuple(s for s in signed.signatures if (s.partner, s.key_id) != (partner, key_id))
    signature = ActSignature(
        partner=partner,
        key_id=key_id,
        signature=base64.b64encode(key.sign(_signing_input(signed.act))).decode("ascii"),
    )
    return SignedAct(act=signed.act, signatures=(*kept, signature))


def add_act(
    chain: ActsFile,
    *,
    kind: ActKind,
    key: crypto.SigningKey,
    partner: PartnerCode,
    parties: frozenset[PartnerCode],
    at: dt.datetime,
    reason: str,
) -> ActsFile:
    """``chain`` with ``partner``'s signed act appended; a resumption another party has begun
    is co-signed instead. Raises PolicyError for an act the chain does not allow (a
    suspension of a suspended accord, anything after a termination, ...). Signatures already
    on file are not checked here (the daemons check every one)."""
    if partner not in parties:
        raise errors.PolicyError(f"{partner} is not a party to accord {chain.accord}")
    last = chain.acts[-1] if chain.acts else None
    if last is not None and last.act.kind == "resume":
        signed_by = {PartnerCode(s.partner) for s in last.signatures}
        if not parties <= signed_by:  # a resumption still being co-signed
            if kind != "resume":
                raise errors.PolicyError(
                    f"{chain.accord}: a resumption awaits {', '.join(sorted(parties - signed_by))}"
                    "; nothing else can follow it until it is complete"
                )
            signed = sign_act(last, key=key, partner=partner)
            return chain.model_copy(update={"acts": (*chain.acts[:-1], signed)})
    halt: Halt | None = None
    for index, entry in enumerate(chain.acts):
        halt = _apply(halt, entry.act, f"{chain.accord} act {index + 1}")
    act = new_act(chain, kind=kind, by=partner, at=at, reason=reason)
    _apply(halt, act, f"{chain.accord}: the new act")
    signed = sign_act(SignedAct(act=act), key=key, partner=partner)
    return chain.model_copy(update={"acts": (*chain.acts, signed)})


def declared_halt(chain: ActsFile) -> Halt | None:
    """What ``chain`` says of the accord when its signatures are NOT checked (for tools that
    have no registry at hand, and say so); a resumption counts only with every signature on
    it, a broken chain raises PolicyError."""
    halt: Halt | None = None
    for index, entry in enumerate(chain.acts):
        if entry.act.kind == "resume" and index == len(chain.acts) - 1:
            signed = {s.partner for s in entry.signatures}
            if entry.act.by not in signed or len(signed) < 2:
                break
        halt = _apply(halt, entry.act, f"{chain.accord} act {index + 1}")
    return halt


def stand(
    chain: ActsFile,
    *,
    parties: frozenset[PartnerCode],
    registry: Registry,
    now: dt.datetime,
    memory: ActMemory | None = None,
) -> Standing:
    """Check ``chain`` and fold it into the accord's standing; raise PolicyError if it is
    broken, badly signed, or does not extend ``memory`` (what this daemon applied before).

    The acts ``memory`` covers were verified when first applied and are not judged again:
    the chain's digests tie them to its head, and a signer's key expiring or being revoked
    since must not undo a suspension. Each new act needs signatures by keys valid at its own
    time and not revoked by now (whoever holds a revoked key could date an act before the
    revocation), and may not be dated ahead of ``now`` by more than the clock skew allowed.
    """
    halt: Halt | None = None
    previous = GENESIS
    complete = 0
    pending: frozenset[PartnerCode] = frozenset()
    known = 0 if memory is None else memory.length
    for index, signed in enumerate(chain.acts):
        act = signed.act
        where = f"{chain.accord} act {index + 1}"
        if act.accord != chain.accord or act.seq != index + 1 or act.previous != previous:
            raise errors.PolicyError(f"{where}: the chain is broken (seq, previous or accord)")
        if act.by not in parties:
            raise errors.PolicyError(f"{where}: {act.by} is not a party to {chain.accord}")
        if index >= known:
            at = _act_time(act, where, now=now)
            signers = _valid_signers(signed, parties=parties, registry=registry, at=at, now=now)
            needed = parties if act.kind == "resume" else frozenset({PartnerCode(act.by)})
            if not needed <= signers:
                if act.kind != "resume" or index != len(chain.acts) - 1:
                    missing = ", ".join(sorted(needed - signers))
                    raise errors.PolicyError(f"{where}: lacks a valid signature by {missing}")
                pending = signers  # a resumption still being co-signed: no effect yet
                break
        halt = _apply(halt, act, where)
        previous = act_digest(act)
        complete = index + 1
    new_acts = tuple(signed.act for signed in chain.acts[:complete])
    if memory is not None:
        if complete < memory.length or (
            memory.length and act_digest(chain.acts[memory.length - 1].act) != memory.head
        ):
            raise errors.PolicyError(
                f"{chain.accord}: the acts file does not extend the {memory.length} acts already "
                "applied (rollback refused)"
            )
        new_acts = new_acts[memory.length :]
    return Standing(ActMemory(complete, previous, halt), pending, new_acts)


def _act_time(act: Act, where: str, *, now: dt.datetime) -> dt.datetime:
    at = parse_instant(act.at)
    if at > now + DEFAULT_MAX_SKEW:
        raise errors.PolicyError(f"{where}: dated {act.at}, ahead of this daemon's clock")
    return at


def _apply(halt: Halt | None, act: Act, where: str) -> Halt | None:
    if halt is not None and halt.code is ReasonCode.ACCORD_TERMINATED:
        raise errors.PolicyError(f"{where}: the accord was terminated; nothing may follow")
    if act.kind == "suspend":
        if halt is not None:
            raise errors.PolicyError(f"{where}: the accord is already suspended")
        return Halt(ReasonCode.ACCORD_SUSPENDED, _words(act, "suspended"))
    if act.kind == "resume":
        if halt is None:
            raise errors.PolicyError(f"{where}: the accord is not suspended")
        return None
    return Halt(ReasonCode.ACCORD_TERMINATED, _words(act, "terminated"))


def _words(act: Act, done: str) -> str:
    return f"{act.by} {done} accord {act.accord} at {act.at}: {act.reason}"


def act_signers(
    signed: SignedAct, *, parties: frozenset[PartnerCode], registry: Registry
) -> frozenset[PartnerCode]:
    """The parties whose signature on ``signed`` is by a policy key valid at the act's own
    time: an auditor's check of an act the log records (the daemon applying it also asked
    that the key was not revoked by then, which the log's record of it attests)."""
    at = parse_instant(signed.act.at)
    return _valid_signers(signed, parties=parties, registry=registry, at=at, now=at)


def _valid_signers(
    signed: SignedAct,
    *,
    parties: frozenset[PartnerCode],
    registry: Registry,
    at: dt.datetime,
    now: dt.datetime,
) -> frozenset[PartnerCode]:
    """The parties whose signature on ``signed`` is by a policy key valid at ``at`` (the act's
    time) and not revoked by ``now``: a key that merely expired since still vouches for what
    it signed in its time, a revoked one for nothing not already applied."""
    message = _signing_input(signed.act)
    revoked = {
        r.key_id
        for r in registry.key_records()
        if r.role == "policy" and r.revoked_at is not None and r.revoked_at <= now
    }
    valid: set[PartnerCode] = set()
    for entry in signed.signatures:
        partner = PartnerCode(entry.partner)
        if partner not in parties or partner in valid or entry.key_id in revoked:
            continue
        try:
            keys = {k.key_id: k for k in registry.policy_keys(partner, at=at)}
            key = keys.get(KeyId(entry.key_id))
            if key is None:
                continue
            key.verify(signature=base64.b64decode(entry.signature, validate=True), message=message)
        except (errors.KeyTrustError, errors.VerificationError, binascii.Error):
            continue
        valid.add(partner)
    return frozenset(valid)
