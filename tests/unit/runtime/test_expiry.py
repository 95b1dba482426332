"""What expires, and when: gauges of seconds left for the registry, each owner's keys and the
Kafka TLS files; readiness degrades, without stopping the daemon, once something the daemon
cannot work without is inside the configured window."""

from __future__ import annotations

import datetime as dt
import pathlib
import subprocess

import pytest

from broker import errors
from broker.ids import KeyId, PartnerCode
from broker.keys.testing import build_registry
from broker.runtime import (
    Expiry,
    ExpiryReporter,
    Health,
    Metrics,
    certificate_expiries,
    registry_expiries,
    serve_observability,
)

from .test_http import _get

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
FIXTURE = build_registry(
    now=NOW, partners=("GB", "RS"), valid_for=dt.timedelta(days=20), expires_in=dt.timedelta(days=9)
)
GB_SIGNING = KeyId(FIXTURE.partners[PartnerCode("GB")].signing.public_key().key_id)


def test_the_registry_and_each_owners_keys_have_one_expiry_each() -> None:
    """The registry expires when it says; each owner's keys of a role end with its last key;
    only the roles holding the daemon's own keys (and the registry) are vital."""
    expiries = {e.name: e for e in registry_expiries(FIXTURE.registry, own=[GB_SIGNING])}
    registry = expiries.pop(f"registry v{FIXTURE.registry.version}")
    assert (registry.at, registry.vital) == (NOW + dt.timedelta(days=9), True)
    key_end = NOW - dt.timedelta(days=1) + dt.timedelta(days=20)
    assert {e.at for e in expiries.values()} == {key_end}
    assert [name for name, e in expiries.items() if e.vital] == ["GB signing keys"]
    assert {"RS encryption keys", "RS policy keys", "GB encryption keys"} <= set(expiries)
    assert dict(expiries["RS encryption keys"].labels) == {"owner": "RS", "role": "encryption"}


def _reporter(window_days: int) -> tuple[ExpiryReporter, Metrics, Health]:
    metrics, health = Metrics(), Health()
    health.set_ready()
    window = dt.timedelta(days=window_days)
    return ExpiryReporter(metrics, health=health, readiness_window=window), metrics, health


def test_gauges_count_down_and_go_negative() -> None:
    """Seconds left for the registry, a role's keys and a certificate file; negative once
    lapsed."""
    reporter, metrics, _ = _reporter(7)
    expiries = registry_expiries(FIXTURE.registry, own=[GB_SIGNING])
    lapsed = Expiry("certificate", "ca.pem (cluster CA)", NOW - dt.timedelta(hours=1), True,
                    (("file", "ca.pem"),))  # fmt: skip
    reporter.observe([*expiries, lapsed], now=NOW)
    assert metrics.gauge("xb_registry_expiry_seconds", "").value() == 9 * 86_400
    keys = metrics.gauge("xb_key_expiry_seconds", "", ("owner", "role"))
    assert keys.value(owner="RS", role="encryption") == 19 * 86_400
    certificates = metrics.gauge("xb_certificate_expiry_seconds", "", ("file",))
    assert certificates.value(file="ca.pem") == -3_600


async def test_readiness_degrades_inside_the_window_and_recovers_on_renewal() -> None:
    """Nine days before the registry expires nothing changes under a 7-day window; at five
    days /readyz answers 503 naming it while /healthz stays 200; a renewed registry (further
    out) makes it ready again. Another partner's keys ending soon never degrade it."""
    reporter, _, health = _reporter(7)
    expiries = registry_expiries(FIXTURE.registry, own=[GB_SIGNING])
    async with serve_observability(port=0, metrics=Metrics(), health=health) as server:
        reporter.observe(expiries, now=NOW)
        assert await _get(server.port, "/readyz") == (200, b"ready\n")
        reporter.observe(expiries, now=NOW + dt.timedelta(days=4))
        status, body = await _get(server.port, "/readyz")
        assert status == 503
        assert (
            body == f"degraded: registry v{FIXTURE.registry.version} expires in 5.0 days\n".encode()
        )
        assert await _get(server.port, "/healthz") == (200, b"ok\n")
        renewed = [e for e in expiries if e.kind != "registry"]
        renewed.append(Expiry("registry", "registry v2", NOW + dt.timedelta(days=60), True))
        reporter.observe(renewed, now=NOW + dt.timedelta(days=4))
        assert await _get(server.port, "/readyz") == (200, b"ready\n")
        others = registry_expiries(FIXTURE.registry, own=[])
        reporter.observe([e for e in others if e.kind == "key"], now=NOW + dt.timedelta(days=18))
        assert await _get(server.port, "/readyz") == (200, b"ready\n")


def test_a_zero_window_never_degrades_readiness() -> None:
    """``expiry_readiness_days: 0`` keeps readiness as it is until the expiry itself."""
    reporter, _, health = _reporter(0)
    reporter.observe(registry_expiries(FIXTURE.registry), now=NOW + dt.timedelta(days=8))
    assert health.degraded is None


def _certificate(path: pathlib.Path, *, days: int, name: str) -> pathlib.Path:
    args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(path.with_suffix(".key")), "-out", str(path), "-days", str(days),
            "-subj", f"/CN={name}"]  # fmt: skip
    subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: S607
    return path


def test_a_certificate_file_expires_with_its_first_certificate_to_end(
    tmp_path: pathlib.Path,
) -> None:
    """A CA bundle of two certificates is as good as the one that ends first; the file and
    that certificate's subject are named."""
    short = _certificate(tmp_path / "short.pem", days=3, name="short-lived CA")
    long = _certificate(tmp_path / "long.pem", days=300, name="long-lived CA")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(long.read_bytes() + short.read_bytes())
    (expiry,) = certificate_expiries([bundle])
    assert expiry.name == f"certificate {bundle} (short-lived CA)"
    left = expiry.left(dt.datetime.now(dt.UTC))
    assert dt.timedelta(days=2) < left <= dt.timedelta(days=3)
    assert (expiry.vital, dict(expiry.labels)) == (True, {"file": str(bundle)})


def test_a_file_without_certificates_is_named(tmp_path: pathlib.Path) -> None:
    """A file that is not PEM certificates is a usage error naming it, never a traceback."""
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate\n")
    with pytest.raises(errors.UsageError, match=r"ca\.pem: not a PEM certificate file"):
        certificate_expiries([path])
