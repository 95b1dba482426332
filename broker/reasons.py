"""Why something was refused: one stable vocabulary for the sender, the gateway and the receiver.

A sending adapter refuses a recipient (``broker send``, the spool's ``.reason`` files), the
gateway quarantines a record, a receiving adapter rejects a delivery: each names its reason
with one of these codes. The values are stable names, documented in docs/GATEWAY.md and
docs/ADAPTER.md; logs, metrics labels, quarantine and audit records carry them as text.
"""

from __future__ import annotations

import enum

__all__ = ["ReasonCode"]


class ReasonCode(enum.StrEnum):
    """A stable reason for a refusal, a quarantine or a rejection."""

    # the record or message itself
    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    INVALID_MESSAGE = "invalid_message"
    EXPIRED = "expired"  # the message's own expiry has passed
    # signatures and keys
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_SENDER = "unknown_sender"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    EXPIRED_KEY = "expired_key"
    SUITE_MISMATCH = "suite_mismatch"
    STALE = "stale"
    FUTURE_DATED = "future_dated"
    UNDECRYPTABLE = "undecryptable"
    # routing
    SENDER_MISMATCH = "sender_mismatch"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    RECIPIENT_KEY_INVALID = "recipient_key_invalid"
    RECIPIENT_MISMATCH = "recipient_mismatch"
    # the accord
    NO_ACCORD = "no_accord"
    ACCORD_MISMATCH = "accord_mismatch"
    ACCORD_EXPIRED = "accord_expired"
    ACCORD_NOT_YET_EFFECTIVE = "accord_not_yet_effective"
    ACCORD_SUSPENDED = "accord_suspended"  # by a party's signed suspension, until resumed
    ACCORD_TERMINATED = "accord_terminated"  # by a party's signed termination, for good
    POLICY_DENIED = "policy_denied"
    RATE_LIMITED = "rate_limited"
    # the sender's own four-eyes rule: a flow whose views a second officer must release
    NOT_RELEASED = "not_released"
    # a unit the registry does not list for that partner: a view's origin, or a
    # restrict-to-units condition naming units its recipient has not declared
    UNLISTED_UNIT = "unlisted_unit"
    # de-duplication
    REPLAY_CONFLICT = "replay_conflict"
    # the gateway's attestation, checked by the receiver
    UNKNOWN_GATEWAY_KEY = "unknown_gateway_key"
    BAD_GATEWAY_SIGNATURE = "bad_gateway_signature"
    BAD_ATTESTATION = "bad_attestation"
    ATTESTATION_MISMATCH = "attestation_mismatch"
    # the content, checked by the receiver against the signed labels
    LABEL_MISMATCH = "label_mismatch"
    # an onward forward without a valid grant from the originator for this third party
    ONWARD_NOT_GRANTED = "onward_not_granted"
