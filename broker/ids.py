"""Typed identifiers: partner codes, key ids, message ids (UUIDv7), accord ids, officer ids and
agency or unit names.

``NewType`` keeps a key id from being passed where a message id is expected; the constructors
here validate the shape once, at the boundary.
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
import uuid
from typing import Final, NewType

__all__ = [
    "MIN_ID_PREFIX",
    "OFFICER_ID",
    "AccordId",
    "CaseId",
    "KeyId",
    "MessageId",
    "PartnerCode",
    "is_unit_name",
    "message_id_range",
    "new_message_id",
    "parse_message_id",
    "partner_code",
]

PartnerCode = NewType("PartnerCode", str)
"""An ISO 3166-1 alpha-2 style code for a partner (GB, RS, MK, XK, TR, AL, ...)."""

KeyId = NewType("KeyId", str)
"""The lowercase hex SHA-256 of a public key's raw bytes, truncated to 32 characters."""

MessageId = NewType("MessageId", str)
"""A UUIDv7 in canonical lowercase text form: time-ordered, so logs and dedup windows sort."""

AccordId = NewType("AccordId", str)
"""An accord's short name, for example ``gb-rs``."""

CaseId = NewType("CaseId", str)
"""A case identifier threading requests, replies and receipts."""

_PARTNER_RE = re.compile(r"^[A-Z]{2}$")
#: an officer's id on its adapter: lower-case letters, digits, ``.``, ``_`` and ``-``
OFFICER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: the Unicode categories no agency or unit name holds: controls (C0 and C1), format
#: characters (zero-width, bidirectional overrides, byte order mark), surrogates, private
#: use, line and paragraph separators, and code points unassigned in this Python's Unicode
#: data: each prints as nothing, reorders what is printed around it, prints as whatever a
#: font makes of it, or means nothing yet
_UNSEEN: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Cn"})
#: code points of other categories that print as nothing too: the default-ignorable ones
#: (combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other
#: variation selectors) and the blank Braille pattern
_IGNORABLE: Final = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)
_UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def is_unit_name(text: str) -> bool:
    """Whether ``text`` is an agency or unit name (what ``restrict-to-units`` conditions and
    the registry name): 1 to 120 characters in Unicode NFC, no character of the categories
    Cc, Cf, Cs, Co, Zl, Zp or Cn nor any other that prints as nothing (``_IGNORABLE``), no
    white space but single U+0020 spaces inside. Names are compared exactly: NFC is
    required, never applied, and nothing invisible may tell two names apart. (Letters of
    other scripts that look alike, Cyrillic Em (U+041C) beside Latin M, stay two names:
    agree names as the registry lists them.)"""
    if not 1 <= len(text) <= 120 or text[0] == " " or text[-1] == " " or "  " in text:
        return False
    if not unicodedata.is_normalized("NFC", text):
        return False
    return not any(_unseen(c) for c in text)


def _unseen(c: str) -> bool:
    if c != " " and c.isspace():
        return True
    code = ord(c)
    return unicodedata.category(c) in _UNSEEN or any(lo <= code <= hi for lo, hi in _IGNORABLE)


def partner_code(text: str) -> PartnerCode:
    """Return ``text`` as a partner code, or raise ``ValueError`` if it is not two capitals."""
    if not _PARTNER_RE.fullmatch(text):
        raise ValueError(f"a partner code is two capital letters, got {text!r}")
    return PartnerCode(text)


def new_message_id(*, unix_ms: int | None = None, random_bytes: bytes | None = None) -> MessageId:
    """Make a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Both inputs can be fixed for known-answer tests; in production neither is given.
    """
    ms = int(time.time() * 1000) if unix_ms is None else unix_ms
    rnd = os.urandom(10) if random_bytes is None else random_bytes
    if len(rnd) != 10:
        raise ValueError("random_bytes must be 10 bytes")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (int.from_bytes(rnd[:2], "big") & 0x0FFF) << 64
    value |= 0b10 << 62
    value |= int.from_bytes(rnd[2:], "big") & ((1 << 62) - 1)
    return MessageId(str(uuid.UUID(int=value)))


def parse_message_id(text: str) -> MessageId:
    """Return ``text`` as a message id, or raise ``ValueError`` if it is not a canonical UUIDv7."""
    if not _UUID7_RE.fullmatch(text):
        raise ValueError(f"a message id is a lowercase UUIDv7, got {text!r}")
    return MessageId(text)


#: the fewest characters of a message id that commands take for the whole id
MIN_ID_PREFIX = 8


def message_id_range(prefix: str) -> tuple[str, str]:
    """The message ids starting with ``prefix`` (any case; at least :data:`MIN_ID_PREFIX`
    characters), as the half-open range ``[low, high)`` an indexed lookup takes. ValueError
    for a prefix too short, too long or holding a character no message id has."""
    wanted = prefix.strip().lower()
    if not MIN_ID_PREFIX <= len(wanted) <= 36 or wanted.strip("0123456789abcdef-"):
        raise ValueError(
            f"{prefix!r}: give a message id, or at least its first {MIN_ID_PREFIX} characters"
        )
    return wanted, wanted + "\x7f"  # ids are ASCII: DEL sorts after every character of one
