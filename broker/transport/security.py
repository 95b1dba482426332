"""How a Kafka client proves who it is and whom it talks to: TLS, mTLS and SASL/SCRAM.

A :class:`ClientSecurity` is built once at start-up and handed to every producer, consumer
and admin client. The TLS context is always strict: TLS 1.2 or later, the broker's
certificate checked against the CA bundle we are given (never the system store) and its
hostname checked, so a network attacker cannot stand in for the cluster. The SCRAM password
never appears in a ``repr`` or a log line.

``SASL_PLAINTEXT`` sends the SCRAM exchange and every record in clear; it exists only for a
broker on loopback, and only when the caller says ``unsafe_allow_sasl_plaintext=True``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import ssl
from pathlib import Path
from typing import Final, Literal

from broker.errors import UsageError

__all__ = [
    "PLAINTEXT",
    "ClientSecurity",
    "Protocol",
    "ScramMechanism",
    "tls_context",
]

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
ScramMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]

_MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_TLS_PROTOCOLS: Final = ("SSL", "SASL_SSL")
_SASL_PROTOCOLS: Final = ("SASL_PLAINTEXT", "SASL_SSL")


def tls_context(
    *, ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A client TLS context trusting only ``ca_file``; with ``cert_file`` + ``key_file``, mTLS.

    Raises :class:`UsageError` naming the file when a file is missing, unreadable or not
    PEM of the right kind. The key must be unencrypted PEM (the daemons run unattended).
    """
    if (cert_file is None) != (key_file is None):
        raise UsageError("a client certificate and its key go together (mTLS) or not at all")
    _require_readable(ca_file, "CA bundle")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    except ssl.SSLError as exc:
        raise UsageError(f"{ca_file}: not a PEM CA bundle ({_reason(exc)})") from exc
    except OSError as exc:
        raise UsageError(f"{ca_file}: cannot read the CA bundle: {_strerror(exc)}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if cert_file is not None and key_file is not None:
        _require_readable(cert_file, "client certificate")
        _require_readable(key_file, "client key")
        try:
            # a callback, so an encrypted key fails here instead of prompting on a terminal
            context.load_cert_chain(str(cert_file), str(key_file), password=_no_passphrase)
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(
                f"{cert_file}, {key_file}: the client certificate and unencrypted PEM key do "
                f"not load as a pair ({_reason(exc)})"
            ) from exc
    return context


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True, repr=False)
class ClientSecurity:
    """The security every client of one daemon uses; the default is PLAINTEXT.

    Build it with :meth:`tls` (protocol SSL), :meth:`sasl_ssl` or :meth:`sasl_plaintext`, or
    directly with a context from :func:`tls_context`. A context given directly must still
    verify the broker (``CERT_REQUIRED``, hostname checking, TLS >= 1.2), or it is refused.
    """

    protocol: Protocol = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    sasl_mechanism: ScramMechanism | None = None
    username: str | None = None
    password: str | None = None
    unsafe_allow_sasl_plaintext: bool = False
    """SASL_PLAINTEXT is refused without this, and to anything but loopback even with it."""

    def __post_init__(self) -> None:
        if self.protocol not in ("PLAINTEXT", *_TLS_PROTOCOLS, *_SASL_PROTOCOLS):
            raise UsageError(f"unknown Kafka security protocol {self.protocol!r}")
        self._check_tls()
        self._check_sasl()

    def _check_tls(self) -> None:
        context = self.ssl_context
        if self.protocol not in _TLS_PROTOCOLS:
            if context is not None:
                raise UsageError(f"{self.protocol} takes no TLS context")
            return
        if context is None:
            raise UsageError(f"{self.protocol} needs a TLS context (a CA bundle)")
        if (
            context.verify_mode != ssl.CERT_REQUIRED
            or not context.check_hostname
            or context.minimum_version < ssl.TLSVersion.TLSv1_2
        ):
            raise UsageError(
                "the TLS context must verify the broker: CERT_REQUIRED, hostname checking on, "
                "TLS 1.2 or later"
            )

    def _check_sasl(self) -> None:
        given = (self.sasl_mechanism, self.username, self.password)
        if self.protocol not in _SASL_PROTOCOLS:
            if any(value is not None for value in given):
                raise UsageError(f"{self.protocol} takes no SASL mechanism, username or password")
            return
        if self.sasl_mechanism not in _MECHANISMS:
            raise UsageError(
                f"{self.protocol} needs a SASL mechanism, one of {', '.join(_MECHANISMS)}"
            )
        if not self.username or not self.password:
            raise UsageError(f"{self.protocol} needs a username and a password")
        if self.protocol == "SASL_PLAINTEXT" and not self.unsafe_allow_sasl_plaintext:
            raise UsageError(
                "SASL_PLAINTEXT sends credentials and records in clear: use SASL_SSL, or set "
                "unsafe_allow_sasl_plaintext for a broker on loopback"
            )

    @classmethod
    def tls(
        cls, *, ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None
    ) -> ClientSecurity:
        """TLS trusting ``ca_file``; with a client certificate and key, mTLS."""
        context = tls_context(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
        return cls(protocol="SSL", ssl_context=context)

    @classmethod
    def sasl_ssl(
        cls,
        *,
        ca_file: Path,
        mechanism: ScramMechanism,
        username: str,
        password: str,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> ClientSecurity:
        """SASL/SCRAM over TLS trusting ``ca_file`` (optionally with a client certificate)."""
        context = tls_context(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
        return cls(
            protocol="SASL_SSL",
            ssl_context=context,
            sasl_mechanism=mechanism,
            username=username,
            password=password,
        )

    @classmethod
    def sasl_plaintext(
        cls,
        *,
        mechanism: ScramMechanism,
        username: str,
        password: str,
        unsafe_allow_sasl_plaintext: bool,
    ) -> ClientSecurity:
        """SASL/SCRAM without TLS: loopback only, and only with the unsafe flag set."""
        return cls(
            protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            username=username,
            password=password,
            unsafe_allow_sasl_plaintext=unsafe_allow_sasl_plaintext,
        )

    def check_bootstrap(self, bootstrap: str) -> None:
        """Raise :class:`UsageError` if this security may not be used towards ``bootstrap``."""
        if self.protocol != "SASL_PLAINTEXT":
            return
        remote = [server for server in _servers(bootstrap) if not _is_loopback(server)]
        if remote:
            raise UsageError(f"SASL_PLAINTEXT to non-loopback {', '.join(remote)}: use SASL_SSL")

    def client_options(self) -> dict[str, object]:
        """The security keyword arguments for aiokafka's clients."""
        options: dict[str, object] = {
            "security_protocol": self.protocol,
            "ssl_context": self.ssl_context,
        }
        if self.protocol in _SASL_PROTOCOLS:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return options

    def __repr__(self) -> str:
        parts = [f"protocol={self.protocol!r}"]
        if self.ssl_context is not None:
            parts.append("ssl_context=<verifying>")
        if self.protocol in _SASL_PROTOCOLS:
            parts += [
                f"sasl_mechanism={self.sasl_mechanism!r}",
                f"username={self.username!r}",
                "password=<hidden>",
            ]
        return f"ClientSecurity({', '.join(parts)})"

    __str__ = __repr__


#: no transport security: the default, for the embedded broker on loopback
PLAINTEXT: Final = ClientSecurity()


def _no_passphrase() -> bytes:
    return b""


def _require_readable(path: Path, what: str) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what}: {_strerror(exc)}") from exc


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return exc.strerror or type(exc).__name__


def _servers(bootstrap: str) -> list[str]:
    return [part.strip() for part in bootstrap.split(",") if part.strip()]


def _is_loopback(server: str) -> bool:
    host = server.rsplit(":", 1)[0].strip("[]") if ":" in server else server
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
