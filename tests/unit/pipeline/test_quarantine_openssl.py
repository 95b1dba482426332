"""docs/GATEWAY.md's OpenSSL recipe really checks the gateway's signature on a quarantine
record: the block is read from the document, so the page and the code cannot drift."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from broker import crypto
from broker.pipeline import ReasonCode, SourcePosition, sign_quarantine_record
from broker.pipeline.records import format_time

GATEWAY = Path(__file__).parents[3] / "docs" / "GATEWAY.md"
_BLOCK = re.compile(r"<!-- openssl-recipe:[^>]*-->\n```sh\n(.*?)```", re.DOTALL)
KEY = crypto.SigningKey.generate(crypto.Suite.CLASSIC)


def _record(reason: str = 'refused: "signature":"AAAA", and \u2603') -> bytes:
    fields = {
        "id": "xb.outbox.XK/0/41",
        "reason_code": ReasonCode.MALFORMED,
        "reason": reason,
        "quarantined_at": format_time(dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)),
        "source": SourcePosition(topic="xb.outbox.XK", partition=0, offset=41),
        "message_id": None,
        "sender": None,
        "recipient": None,
        "decision": {"reasons": ['a quoted "signature":"x", too']},
    }
    return sign_quarantine_record(fields, b"\x89XBE junk", gateway_key=KEY).to_bytes()


def _verify(directory: Path, record: bytes, key: bytes) -> subprocess.CompletedProcess[str]:
    match = _BLOCK.search(GATEWAY.read_text())
    assert match is not None, "the marked OpenSSL recipe is missing from docs/GATEWAY.md"
    (directory / "record.json").write_bytes(record)
    (directory / "gateway.key").write_bytes(key)
    shell = shutil.which("sh")
    assert shell is not None
    return subprocess.run(
        [shell, "-c", match.group(1)], cwd=directory, capture_output=True, text=True, check=False
    )


def test_openssl_verifies_a_quarantine_record_the_gateway_signed(tmp_path: Path) -> None:
    """Even with a reason and decision that quote a signature member, as an attacker might."""
    result = _verify(tmp_path, _record(), KEY.public_key().to_bytes())
    assert result.returncode == 0, result.stderr
    assert "Signature Verified Successfully" in result.stdout


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda r: r.replace(b'"malformed"', b'"stale"'), id="another reason code"),
        pytest.param(lambda r: r.replace(b'"offset":41', b'"offset":42'), id="another source"),
    ],
)
def test_openssl_refuses_a_changed_record(tmp_path: Path, tamper: Callable[[bytes], bytes]) -> None:
    """One changed field, and the documented check fails."""
    result = _verify(tmp_path, tamper(_record()), KEY.public_key().to_bytes())
    assert result.returncode != 0


def test_openssl_refuses_another_key(tmp_path: Path) -> None:
    """A record signed by anyone but the registered gateway does not verify."""
    other = crypto.SigningKey.generate(crypto.Suite.CLASSIC).public_key().to_bytes()
    assert _verify(tmp_path, _record(), other).returncode != 0
