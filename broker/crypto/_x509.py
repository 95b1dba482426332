"""When the X.509 certificates of a PEM file stop being valid: the Kafka TLS files are read
here, not trusted, only dated (``broker doctor`` and the daemons' expiry gauges)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from cryptography import x509
from cryptography.x509.oid import NameOID

from broker import errors

__all__ = ["CertificateValidity", "certificate_validity"]


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateValidity:
    """One certificate's subject (its common name, else the whole name) and validity window."""

    subject: str
    not_before: dt.datetime
    not_after: dt.datetime


def certificate_validity(pem: bytes, *, source: str) -> tuple[CertificateValidity, ...]:
    """Every certificate in the PEM bundle ``pem``, in file order; raises
    :class:`errors.UsageError` naming ``source`` when it holds none or one that does not parse."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise errors.UsageError(f"{source}: not a PEM certificate file ({exc})") from None
    return tuple(
        CertificateValidity(
            _subject(certificate),
            certificate.not_valid_before_utc,
            certificate.not_valid_after_utc,
        )
        for certificate in certificates
    )


def _subject(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        value = names[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return certificate.subject.rfc4514_string()
