"""The partner registry: who the partners are, which keys they hold, and since when.

A TUF-style signed document (versioned, expiring, signed by a threshold of root keys) lists
each partner's signing, encryption and policy-signing keys with validity windows and
revocations, plus the gateways' and witnesses' signing keys. :func:`verify_registry` turns
document bytes into a :class:`Registry`, checked against the one held (``broker.trust`` holds
it for a daemon, and remembers it across restarts). Private keys live in encrypted files
(:mod:`.storage`). docs/KEYS.md describes the ceremonies and the file formats.
"""

from __future__ import annotations

from broker.keys._canonical import (
    SIGNING_CONTEXT,
    canonical_json,
    format_timestamp,
    parse_timestamp,
    signing_input,
)
from broker.keys.cards import (
    KeyCard,
    KeyKind,
    PartnerCard,
    PartnerKeys,
    RotatedKeys,
    generate_partner_keys,
    generate_service_key,
    rotate_partner_keys,
)
from broker.keys.diff import RegistryChange, TrustEffect, diff_registries
from broker.keys.document import RegistryDraft
from broker.keys.registry import KeyRecord, KeyRole, PartnerUnit, Registry, RootKey
from broker.keys.storage import (
    DEFAULT_PASSPHRASE_ENV,
    MIN_PASSPHRASE_BYTES,
    load_decryption_key,
    load_signing_key,
    read_passphrase,
    save_private_key,
    write_public_file,
)
from broker.keys.verify import load_trusted_registry, verify_registry

__all__ = [
    "DEFAULT_PASSPHRASE_ENV",
    "MIN_PASSPHRASE_BYTES",
    "SIGNING_CONTEXT",
    "KeyCard",
    "KeyKind",
    "KeyRecord",
    "KeyRole",
    "PartnerCard",
    "PartnerKeys",
    "PartnerUnit",
    "Registry",
    "RegistryChange",
    "RegistryDraft",
    "RootKey",
    "RotatedKeys",
    "TrustEffect",
    "canonical_json",
    "diff_registries",
    "format_timestamp",
    "generate_partner_keys",
    "generate_service_key",
    "load_decryption_key",
    "load_signing_key",
    "load_trusted_registry",
    "parse_timestamp",
    "read_passphrase",
    "rotate_partner_keys",
    "save_private_key",
    "signing_input",
    "verify_registry",
    "write_public_file",
]
