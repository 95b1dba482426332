"""The envelope: one signed, encrypted view of one message for one recipient.

:func:`seal` builds it (or :func:`seal_unsigned`, then :func:`sign_all` signs a batch of them
under one Merkle head); :func:`parse` splits it without trusting anything; :func:`verify`
checks what can be checked without decrypting (gateways, auditors); :func:`open` verifies,
decrypts and checks the content against its signed commitments. :func:`disclose` (or
:func:`disclose_kept`, from what a recipient kept) and :func:`verify_disclosure` reveal chosen
fields to a third party. De-duplication (redeliveries
versus reused ids) is the daemons' durable store, :mod:`broker.store.dedup`. The exact bytes
are in docs/PROTOCOL.md.
"""

from __future__ import annotations

from broker.envelope._batch import Unsigned, sign_all
from broker.envelope._disclosure import (
    Disclosure,
    check_revealed,
    disclose,
    disclose_kept,
    verify_disclosure,
)
from broker.envelope._format import MAX_BATCH, MAX_ENVELOPE_BYTES, BatchProof
from broker.envelope._header import EnvelopeHeader, Origin, parse_header
from broker.envelope._open import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_SKEW,
    KeyRegistry,
    OpenedEnvelope,
    ParsedEnvelope,
    VerifiedHeader,
    parse,
    verify,
)
from broker.envelope._open import open_envelope as open
from broker.envelope._seal import seal, seal_revealing, seal_unsigned

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_SKEW",
    "MAX_BATCH",
    "MAX_ENVELOPE_BYTES",
    "BatchProof",
    "Disclosure",
    "EnvelopeHeader",
    "KeyRegistry",
    "OpenedEnvelope",
    "Origin",
    "ParsedEnvelope",
    "Unsigned",
    "VerifiedHeader",
    "check_revealed",
    "disclose",
    "disclose_kept",
    "open",
    "parse",
    "parse_header",
    "seal",
    "seal_revealing",
    "seal_unsigned",
    "sign_all",
    "verify",
    "verify_disclosure",
]
