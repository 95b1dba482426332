"""The signed clear header: its strict model, its canonical bytes, and the content commitment."""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from broker import crypto, errors
from broker.clock import format_instant, parse_instant
from broker.envelope._format import (
    DST_FIELD,
    DST_KEY_COMMITMENT,
    MAX_HEADER_BYTES,
    canonical_json,
    canonical_loads,
    length_prefixed,
)
from broker.schema._base import OfficerIdText, StrictModel, UnitNameText
from broker.schema.labels import Labels

__all__ = [
    "HEADER_VERSIONS",
    "Commitment",
    "EnvelopeHeader",
    "Origin",
    "encoded_field_digest",
    "field_digest",
    "format_time",
    "key_commitment",
    "parse_header",
    "parse_time",
    "top_level_fields",
]

_HEX64 = r"^[0-9a-f]{64}$"
_KEY_ID = r"^[0-9a-f]{32}$"
_PARTNER = r"^[A-Z]{2}$"
_UUID7 = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
#: header version 1 names the partner alone; version 2 also names, in ``origin``, the
#: officer who submitted the view (and only version 2 has ``origin``)
HEADER_VERSIONS = (1, 2)
_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63})?$")
_FIELD_PREFIX = length_prefixed(DST_FIELD)
_U32 = struct.Struct(">I").pack
_MAX_FIELDS = 256


class Commitment(StrictModel):
    """Salted per-field digests of the content, and the commitment to the content key."""

    fields: Annotated[dict[str, Annotated[str, Field(pattern=_HEX64)]], Field(max_length=256)]
    key: Annotated[str, Field(pattern=_HEX64)]


class Origin(StrictModel):
    """Who, inside the sending partner, submitted the view: the sender's signed word for its
    own officer, agency and unit (docs/OFFICERS.md)."""

    # the officer directory's own shapes, so a header names what a directory can hold
    agency: UnitNameText
    unit: UnitNameText
    officer: OfficerIdText

    @property
    def label(self) -> str:
        """How logs and listings name the sender's officer: ``<id> (<agency>, <unit>)``."""
        return f"{self.officer} ({self.agency}, {self.unit})"

    @classmethod
    def stored(cls, text: str) -> Origin:
        """An origin a store of ours kept as JSON, read as it was kept: it was checked when
        it was sealed or received, perhaps under an earlier release's looser name rule, and
        a tightened rule must not make the rows that hold it unreadable."""
        try:
            kept = json.loads(text)
            agency, unit, officer = kept["agency"], kept["unit"], kept["officer"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"a stored origin is not one: {text[:200]!r}") from exc
        if not all(isinstance(v, str) for v in (agency, unit, officer)):
            raise ValueError(f"a stored origin is not one: {text[:200]!r}")
        return cls.model_construct(agency=agency, unit=unit, officer=officer)


class EnvelopeHeader(StrictModel):
    """Every field of the clear header (versions 1 and 2). Parsed from bytes; never
    re-serialised to verify."""

    version: Literal[1, 2]
    suite: crypto.Suite
    message_id: Annotated[str, Field(pattern=_UUID7)]
    case_id: Annotated[str, Field(min_length=1, max_length=128)] | None
    sender: Annotated[str, Field(pattern=_PARTNER)]
    sender_key_id: Annotated[str, Field(pattern=_KEY_ID)]
    recipient: Annotated[str, Field(pattern=_PARTNER)]
    recipient_key_id: Annotated[str, Field(pattern=_KEY_ID)]
    created: Annotated[str, Field(pattern=_TIME)]
    expires: Annotated[str, Field(pattern=_TIME)]
    labels: Labels
    accord_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    accord_digest: Annotated[str, Field(pattern=_HEX64)]
    commitment: Commitment
    #: version 2 only: the officer who submitted the view
    origin: Origin | None = None

    @pydantic.model_validator(mode="after")
    def _origin_iff_version_2(self) -> EnvelopeHeader:
        if (self.origin is not None) != (self.version == 2):
            raise ValueError("a version 2 header names its origin, and only version 2 does")
        return self


def format_time(value: dt.datetime) -> str:
    """:func:`broker.clock.format_instant`: the only time form a header carries."""
    try:
        return format_instant(value)
    except ValueError as exc:
        raise errors.UsageError(f"header times: {exc}") from exc


def parse_time(text: str) -> dt.datetime:
    """:func:`broker.clock.parse_instant`; any other form is an EnvelopeError."""
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise errors.EnvelopeError(f"bad header time {text!r}") from exc


def parse_header(data: bytes) -> EnvelopeHeader:
    """Parse header bytes that must already be in canonical form, into the strict model."""
    if len(data) > MAX_HEADER_BYTES:
        raise errors.EnvelopeError("envelope header too large")
    try:
        # A unique byte form: the signature covers these exact bytes, and no two byte
        # strings may mean the same header.
        raw = canonical_loads(data, what="envelope header")
    except errors.SchemaError as exc:
        raise errors.EnvelopeError(str(exc)) from None
    if not isinstance(raw, dict):
        raise errors.EnvelopeError("envelope header is not a JSON object")
    version = raw.get("version")
    if type(version) is not int or version not in HEADER_VERSIONS:
        raise errors.EnvelopeError(f"unsupported header version {version!r:.80}")
    if ("origin" in raw) != (version == 2):
        # absent in version 1, never null: one byte form per header
        raise errors.EnvelopeError(
            f"a version {version} header {'must not name' if version == 1 else 'must name'} "
            "an origin"
        )
    suite = raw.get("suite")
    # Checked for type first: a hostile list or object here is unhashable.
    if not isinstance(suite, str) or suite not in {s.value for s in crypto.Suite}:
        raise errors.EnvelopeError(f"unsupported suite {suite!r:.80}")
    try:
        header = EnvelopeHeader.model_validate_json(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise errors.EnvelopeError(f"envelope header field {where}: {first['msg']}") from None
    for path in header.commitment.fields:
        if not _FIELD_PATH.fullmatch(path):
            raise errors.EnvelopeError(f"bad committed field path {path!r}")
    return header


def top_level_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    """The committed fields: each top-level key, with ``body``'s own keys as ``body.<key>``."""
    fields: dict[str, Any] = {}
    for key, value in message.items():
        if key == "body" and isinstance(value, dict) and value:
            for inner, inner_value in value.items():
                fields[f"body.{inner}"] = inner_value
        else:
            fields[key] = value
    if len(fields) > _MAX_FIELDS:
        raise errors.SchemaError(f"message has more than {_MAX_FIELDS} committed fields")
    for path in fields:
        if not _FIELD_PATH.fullmatch(path):
            raise errors.SchemaError(f"field name {path!r} cannot be committed")
    return fields


def field_digest(*, salt: bytes, path: str, value: Any) -> bytes:
    """SHA-256(lp(DST) || lp(salt) || lp(path) || lp(canonical JSON of value))."""
    return encoded_field_digest(salt=salt, path=path, encoded=canonical_json(value))


def encoded_field_digest(*, salt: bytes, path: str, encoded: bytes) -> bytes:
    """:func:`field_digest` of a value whose canonical JSON ``encoded`` is already at hand."""
    name = path.encode("ascii")
    return crypto.sha256(
        b"".join(
            (
                _FIELD_PREFIX,
                _U32(len(salt)),
                salt,
                _U32(len(name)),
                name,
                _U32(len(encoded)),
                encoded,
            )
        )
    )


def key_commitment(*, content_key: bytes, message_id: str) -> bytes:
    """SHA-256(lp(DST) || lp(content key) || lp(message id))."""
    return crypto.sha256(
        length_prefixed(DST_KEY_COMMITMENT)
        + length_prefixed(content_key)
        + length_prefixed(message_id.encode("ascii"))
    )
