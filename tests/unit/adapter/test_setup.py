"""An adapter is built from an operator's files: a verified registry, co-signed accords and
encrypted keys; an accord its parties did not all sign never decides, and stops nothing."""

from __future__ import annotations

import json
import pathlib

import pytest

from broker import cosign, errors, keys
from broker.adapter import build_adapter
from broker.config import AdapterConfig, load_config
from broker.policy import parse_accord
from broker.runtime import Metrics

from .world import GB, NOW, ROOT, RS, WORLD

PASSPHRASE = "correct horse battery staple adapter"


def _files(tmp: pathlib.Path, *, sign: bool) -> AdapterConfig:
    (tmp / "registry.json").write_bytes(WORLD.data)
    (tmp / "trusted.json").write_bytes(WORLD.data)
    accords = tmp / "accords"
    accords.mkdir()
    text = (ROOT / "policies" / "gb-rs.yaml").read_bytes()
    (accords / "gb-rs.yaml").write_bytes(text)
    if sign:
        accord = parse_accord(text, source="gb-rs.yaml")
        signatures = None
        for partner in (GB, RS):
            signatures = cosign.sign_accord(
                accord, signatures, key=WORLD.partners[partner].policy, partner=partner
            )
        assert signatures is not None
        cosign.write_signature_file(accords / "gb-rs.yaml.sigs.json", signatures)
    mine = WORLD.partners[RS]
    keys.save_private_key(tmp / "sign.key", mine.signing, passphrase=PASSPHRASE.encode())
    keys.save_private_key(tmp / "kem.key", mine.decryption, passphrase=PASSPHRASE.encode())
    config = {
        "partner": "RS",
        "registry": {"path": "registry.json", "trusted_roots": "trusted.json"},
        "accords": {"dir": "accords"},
        "keys": {
            "signing_key": "sign.key",
            "decryption_keys": ["kem.key"],
            "passphrase": {"env": "XB_TEST_PASSPHRASE"},
        },
        "store": {"path": "inbox.sqlite"},
        "spool": {"dir": "spool"},
    }
    (tmp / "adapter.yaml").write_text(json.dumps(config))
    return load_config(tmp / "adapter.yaml", AdapterConfig, env={})


def test_an_adapter_is_built_from_its_files(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys, the accord with the UK, the stores and the spool are all in place."""
    monkeypatch.setenv("XB_TEST_PASSPHRASE", PASSPHRASE)
    adapter = build_adapter(_files(tmp_path, sign=True), metrics=Metrics())
    try:
        assert set(adapter.accords.book(NOW).counterparts(RS)) == {GB}
        assert set(adapter.keys.decryption) == {WORLD.partners[RS].encryption_key_id}
        assert (tmp_path / "send-journal.sqlite").exists()
        assert adapter.spool is not None
        assert (tmp_path / "spool" / "incoming").is_dir()
    finally:
        adapter.journal.close()
        adapter.inbox.close()


def test_an_accord_without_co_signatures_is_refused_and_counted(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed without failing the daemon: an accord the parties did not both sign never
    decides (the pair has no accord), the refusal is counted, the adapter still starts."""
    monkeypatch.setenv("XB_TEST_PASSPHRASE", PASSPHRASE)
    metrics = Metrics()
    adapter = build_adapter(_files(tmp_path, sign=False), metrics=metrics)
    try:
        assert adapter.accords.book(NOW).counterparts(RS) == {}
        assert "xb_accord_refusals_total 1" in metrics.render()
    finally:
        adapter.journal.close()
        adapter.inbox.close()


def test_a_missing_passphrase_is_a_usage_error(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error names the variable, never a value."""
    monkeypatch.delenv("XB_TEST_PASSPHRASE", raising=False)
    with pytest.raises(errors.UsageError, match="XB_TEST_PASSPHRASE"):
        build_adapter(_files(tmp_path, sign=True), metrics=Metrics())
