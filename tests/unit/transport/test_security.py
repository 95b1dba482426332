"""Kafka client security: from the ``kafka.security`` section to aiokafka's options.

SASL/SCRAM cannot be exercised against the embedded broker (its credential store keeps
nothing), so SASL is specified here by its mapping; TLS and mTLS are also proven end to end
in ``tests/integration/test_tls_proxy.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiokafka
import aiokafka.admin
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from broker.config import KafkaSettings, kafka_client_security
from broker.errors import UsageError
from broker.transport.kafka import ConsumerSettings, ProducerSettings, create_topics
from broker.transport.security import PLAINTEXT, ClientSecurity, tls_context


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)  # noqa: S607


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a client certificate it signed, made with the openssl command."""
    root = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    ca = ["-subj", "/CN=test-ca", "-addext", "basicConstraints=critical,CA:TRUE"]
    _openssl("req", "-x509", *ec, *ca, "-keyout", "ca.key", "-out", "ca.crt", cwd=root)
    _openssl("req", *ec, "-subj", "/CN=gb", "-keyout", "client.key", "-out", "client.csr", cwd=root)
    sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "2", "-days", "2"]
    _openssl("x509", "-req", *sign, "-in", "client.csr", "-out", "client.crt", cwd=root)
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "other.key",
        cwd=root,
    )
    return Pki(root / "ca.crt", root / "client.crt", root / "client.key", root / "other.key")


def _kafka(security: dict[str, Any], bootstrap: str = "kafka-1.example:9093") -> KafkaSettings:
    return KafkaSettings.model_validate({"bootstrap": bootstrap, "security": security})


def _sasl_plaintext(*, password: str = "p", unsafe: bool = True) -> ClientSecurity:  # noqa: S107
    return ClientSecurity.sasl_plaintext(
        mechanism="SCRAM-SHA-256",
        username="u",
        password=password,
        unsafe_allow_sasl_plaintext=unsafe,
    )


def _sasl(pki: Pki, **extra: Any) -> dict[str, Any]:
    return {
        "protocol": "SASL_SSL",
        "ca_file": str(pki.ca),
        "username": "gateway",
        "password": {"env": "KAFKA_PASSWORD"},
        **extra,
    }


class TestConfigMapping:
    def test_plaintext_maps_to_no_tls_and_no_sasl(self) -> None:
        """PLAINTEXT (loopback) needs nothing read and gives aiokafka no context."""
        security = kafka_client_security(
            _kafka({"protocol": "PLAINTEXT"}, "127.0.0.1:9092"), env={}
        )
        assert security is PLAINTEXT
        assert security.client_options() == {"security_protocol": "PLAINTEXT", "ssl_context": None}

    @pytest.mark.parametrize("mtls", [False, True], ids=["server-auth", "mtls"])
    def test_ssl_maps_to_a_verifying_context(self, pki: Pki, mtls: bool) -> None:
        """SSL trusts only the configured CA, checks hostnames and needs TLS 1.2 or later."""
        section: dict[str, Any] = {"protocol": "SSL", "ca_file": str(pki.ca)}
        if mtls:
            section |= {"cert_file": str(pki.cert), "key_file": str(pki.key)}
        options = kafka_client_security(_kafka(section), env={}).client_options()
        assert options["security_protocol"] == "SSL"
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
        assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]
        assert "sasl_plain_password" not in options

    @pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
    def test_sasl_ssl_maps_mechanism_user_and_password_from_env(
        self, pki: Pki, mechanism: str
    ) -> None:
        """SASL_SSL gives aiokafka the SCRAM mechanism, the user and the password read from env."""
        kafka = _kafka(_sasl(pki, mechanism=mechanism))
        options = kafka_client_security(kafka, env={"KAFKA_PASSWORD": "s3cret"}).client_options()
        assert options["security_protocol"] == "SASL_SSL"
        assert isinstance(options["ssl_context"], ssl.SSLContext)
        assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (mechanism, "gateway")
        assert options["sasl_plain_password"] == "s3cret"

    def test_sasl_password_file_drops_one_trailing_newline(self, pki: Pki, tmp_path: Path) -> None:
        """A password file is read with read_secret's rule: one trailing newline is not part."""
        secret = tmp_path / "kafka.password"
        secret.write_text("from-a-file\n")
        kafka = _kafka(_sasl(pki, password={"file": str(secret)}))
        security = kafka_client_security(kafka, env={})
        assert security.client_options()["sasl_plain_password"] == "from-a-file"

    def test_an_unset_password_variable_is_a_usage_error(self, pki: Pki) -> None:
        """The error names the variable, never a value."""
        with pytest.raises(UsageError, match="KAFKA_PASSWORD"):
            kafka_client_security(_kafka(_sasl(pki)), env={})

    def test_a_missing_ca_file_is_one_line_naming_the_path(self, tmp_path: Path) -> None:
        """A configured CA bundle that is not there fails at start-up, naming the file."""
        missing = tmp_path / "nowhere" / "ca.pem"
        with pytest.raises(UsageError) as caught:
            kafka_client_security(_kafka({"protocol": "SSL", "ca_file": str(missing)}), env={})
        message = caught.value.diagnostics()
        assert str(missing) in message
        assert "\n" not in message


class TestTlsContext:
    @pytest.mark.parametrize(
        ("which", "content", "expected"),
        [
            ("ca", None, "cannot read the CA bundle"),
            ("ca", b"not a certificate\n", "not a PEM CA bundle"),
            ("cert", None, "cannot read the client certificate"),
            ("key", None, "cannot read the client key"),
            ("key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "pair"),
            ("key", "other", "pair"),
        ],
        ids=["missing-ca", "garbage-ca", "missing-cert", "missing-key", "garbage-key", "wrong-key"],
    )
    def test_bad_files_are_one_line_usage_errors_naming_the_file(
        self, pki: Pki, tmp_path: Path, which: str, content: bytes | str | None, expected: str
    ) -> None:
        """Missing, unreadable or mismatched PEM files never surface as an ssl traceback."""
        files = {"ca": pki.ca, "cert": pki.cert, "key": pki.key}
        bad = tmp_path / f"bad-{which}.pem"
        if content == "other":
            bad = pki.other_key
        elif content is not None:
            assert isinstance(content, bytes)
            bad.write_bytes(content)
        files[which] = bad
        with pytest.raises(UsageError, match=expected) as caught:
            tls_context(ca_file=files["ca"], cert_file=files["cert"], key_file=files["key"])
        assert str(bad) in caught.value.diagnostics()
        assert "\n" not in caught.value.diagnostics()

    def test_a_certificate_without_its_key_is_refused(self, pki: Pki) -> None:
        """mTLS needs both halves."""
        with pytest.raises(UsageError, match="go together"):
            tls_context(ca_file=pki.ca, cert_file=pki.cert)

    @pytest.mark.parametrize(
        "weakening",
        [
            {"check_hostname": False},
            {"check_hostname": False, "verify_mode": ssl.CERT_NONE},
            {"minimum_version": ssl.TLSVersion.MINIMUM_SUPPORTED},
        ],
        ids=["no-hostname-check", "no-verification", "any-tls-version"],
    )
    def test_a_context_that_does_not_verify_the_broker_is_refused(
        self, pki: Pki, weakening: dict[str, object]
    ) -> None:
        """A hand-made context must still authenticate the broker with TLS >= 1.2."""
        context = tls_context(ca_file=pki.ca)
        for name, value in weakening.items():  # in order: hostname checks go before CERT_NONE
            setattr(context, name, value)
        with pytest.raises(UsageError, match="must verify the broker"):
            ClientSecurity(protocol="SSL", ssl_context=context)


class TestClientSecurity:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({"protocol": "SSL"}, "needs a TLS context"),
            ({"protocol": "SASL_SSL"}, "needs a TLS context"),
            ({"protocol": "PLAINTEXT", "password": "x"}, "takes no SASL"),
            ({"protocol": "PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"}, "takes no SASL"),
            ({"protocol": "SASL_PLAINTEXT", "username": "u", "password": "p"}, "mechanism"),
            ({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512"}, "username"),
            ({"protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}, "mechanism"),
            ({"protocol": "TLS"}, "unknown Kafka security protocol"),
        ],
        ids=lambda v: str(v) if isinstance(v, str) else None,
    )
    def test_incomplete_or_contradictory_settings_are_refused(
        self, fields: dict[str, Any], expected: str
    ) -> None:
        """Every combination aiokafka would reject, or silently ignore, is our UsageError."""
        with pytest.raises(UsageError, match=expected):
            ClientSecurity(**fields)

    def test_sasl_plaintext_is_refused_without_the_unsafe_flag(self) -> None:
        """Credentials in clear need an explicit, written opt-in."""
        with pytest.raises(UsageError, match="unsafe_allow_sasl_plaintext"):
            _sasl_plaintext(unsafe=False)

    @pytest.mark.parametrize(
        ("bootstrap", "allowed"),
        [
            ("127.0.0.1:9092", True),
            ("localhost:9092,[::1]:9093", True),
            ("127.0.0.1:9092,kafka.example:9092", False),
            ("10.0.0.5:9092", False),
        ],
    )
    def test_sasl_plaintext_with_the_flag_is_for_loopback_only(
        self, bootstrap: str, allowed: bool
    ) -> None:
        """Even with the flag, a non-loopback bootstrap server is refused by the settings."""
        security = _sasl_plaintext()
        if allowed:
            settings = ProducerSettings(bootstrap=bootstrap, client_id="p", security=security)
            assert settings.client_options()["security_protocol"] == "SASL_PLAINTEXT"
            assert settings.client_options()["sasl_mechanism"] == "SCRAM-SHA-256"
        else:
            with pytest.raises(UsageError, match="non-loopback"):
                ConsumerSettings(
                    bootstrap=bootstrap, group_id="g", client_id="c", security=security
                )

    async def test_create_topics_refuses_sasl_plaintext_to_a_remote_host(self) -> None:
        """The admin client obeys the same rule, before it connects anywhere."""
        security = _sasl_plaintext()
        with pytest.raises(UsageError, match="non-loopback"):
            await create_topics("kafka.example:9092", [], security=security)

    @given(password=st.text(min_size=4, max_size=40).filter(lambda p: "hidden" not in p))
    def test_the_password_never_appears_in_a_repr(self, password: str) -> None:
        """Settings are logged and shown in errors; the SCRAM password is never in them."""
        security = _sasl_plaintext(password=password)
        producer = ProducerSettings(bootstrap="127.0.0.1:1", client_id="p", security=security)
        consumer = ConsumerSettings(
            bootstrap="127.0.0.1:1", group_id="g", client_id="c", security=security
        )
        # a password spelled like a setting shown beside it (the mechanism, a client id) would
        # be found there, not leaked: only what no other field holds can tell
        without = _sasl_plaintext(password="x" * 8)
        others = (repr(without), repr(ProducerSettings(bootstrap="127.0.0.1:1", client_id="p")))
        assume(all(repr(password) not in shown for shown in others))
        for shown in (repr(security), str(security), repr(producer), repr(consumer)):
            assert repr(password) not in shown
            assert "password=<hidden>" in shown

    @pytest.mark.parametrize(
        "client",
        [aiokafka.AIOKafkaProducer, aiokafka.AIOKafkaConsumer, aiokafka.admin.AIOKafkaAdminClient],
        ids=["producer", "consumer", "admin"],
    )
    def test_every_option_is_a_real_aiokafka_parameter(self, client: type, pki: Pki) -> None:
        """A misspelt security option would be rejected by aiokafka at run time; catch it here."""
        accepted = set(inspect.signature(client).parameters)
        security = ClientSecurity.sasl_ssl(
            ca_file=pki.ca, mechanism="SCRAM-SHA-512", username="u", password="p"
        )
        assert set(security.client_options()) <= accepted
        assert set(PLAINTEXT.client_options()) <= accepted
