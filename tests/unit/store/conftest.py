"""The inbox store's tests use the project's real AEAD sealer, and inboxes as older versions of
the program left them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from broker.crypto import AeadSealer


@pytest.fixture
def sealer() -> AeadSealer:
    return AeadSealer()


def as_left_by_version(path: Path, version: int) -> None:
    """Turn an inbox this version wrote into the one version ``version`` (1 to 9) would
    have written: the later tables and columns dropped, its number set back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        if version <= 9:  # version 10 kept each message's origin
            conn.execute("ALTER TABLE messages DROP COLUMN origin")
        if version <= 8:  # version 9 listed officers
            conn.execute("DROP TABLE officers")
            conn.execute("DROP TABLE officer_changes")
        if version <= 7:  # version 8 logged reads
            conn.execute("DROP TABLE reads")
        if version <= 6:  # version 7 kept withdrawals
            conn.execute("DROP TABLE withdrawals")
        if version <= 5:  # version 6 indexed after storing
            conn.execute("DROP TABLE search_pending")
        if version <= 4:  # version 5 added the search index
            for table in ("search_terms", "search_key"):
                conn.execute(f"DROP TABLE {table}")
        if version <= 3:  # version 4 added the evidence and each message's retention rule
            conn.execute("DROP TABLE evidence")
            for column in ("retention_rule", "retention_reason", "shred_reason"):
                conn.execute(f"ALTER TABLE messages DROP COLUMN {column}")
        if version <= 2:  # version 3 counted pruned refusals
            conn.execute("DROP TABLE rejected_pruned")
        if version <= 1:  # version 2 kept refused deliveries
            conn.execute("DROP TABLE rejected")
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    finally:
        conn.close()
