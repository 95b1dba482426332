"""`broker trust rekey`: after a rotation of the gateway's key its memory is re-signed, kept
whole, and accepted by nothing but the new key."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from broker import crypto, keys
from broker.clock import FixedClock
from broker.demo.federation import GATEWAY, provision

NOW = dt.datetime.now(dt.UTC)


def _trust(*args: str) -> subprocess.CompletedProcess[str]:
    """``broker trust ARGS`` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "broker", "trust", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_rotated_gateway_key_needs_rekey_and_keeps_its_memory(tmp_path: Path) -> None:
    federation = provision(
        tmp_path / "federation", bootstrap="127.0.0.1:9092", prefix="t.", clock=FixedClock(NOW)
    )
    config = str(federation.config_path(GATEWAY))
    assert _trust("reset", "--config", config, "--yes").returncode == 0
    before = _trust("show", "--json", "--config", config)
    assert before.returncode == 0, before.stderr

    # rotate: a new key in the configured place, the old one kept aside by the operator
    key_file = federation.root / "keys" / GATEWAY / "signing.pem"
    old_file = tmp_path / "old-signing.pem"
    key_file.rename(old_file)
    passphrase = federation.passphrase_file(GATEWAY).read_bytes().rstrip(b"\n")
    keys.save_private_key(
        key_file, crypto.SigningKey.generate(crypto.Suite.CLASSIC), passphrase=passphrase
    )

    refused = _trust("show", "--config", config)
    assert refused.returncode == 9, refused.stderr
    assert "not this daemon's key" in refused.stderr
    assert "trust rekey" in refused.stderr

    # a key that was never this daemon's is no way in
    stranger = tmp_path / "stranger.pem"
    keys.save_private_key(
        stranger, crypto.SigningKey.generate(crypto.Suite.CLASSIC), passphrase=passphrase
    )
    wrong = _trust("rekey", "--config", config, "--previous-key", str(stranger))
    assert wrong.returncode == 9, wrong.stderr
    assert "not this daemon's key" in wrong.stderr

    rekeyed = _trust("rekey", "--config", config, "--previous-key", str(old_file))
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert "re-signed" in rekeyed.stdout
    after = _trust("show", "--json", "--config", config)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
