"""S3 storage for the embedded broker, and a loopback S3 server to hold it in tests and soaks.

The embedded broker's memory engine loses everything when the process stops; its ``s3://``
engine keeps every batch and committed group offset as objects in a bucket, described by
:class:`S3Storage` (``EmbeddedBroker(storage=...)``). For a broker bounce on one machine,
:class:`LoopbackS3` runs moto's S3 server (``pip install 'moto[server]'``, in the ``test``
extra) as a child process on 127.0.0.1, creates a bucket and hands out its settings. The
server keeps the objects in its own memory, so it must outlive every broker restart that
should find the data again. It answers a request in milliseconds, so a broker on it is far
slower than on the memory engine (docs/RELIABILITY.md).

moto is never imported here: it runs as a separate process (``python -m moto.server``), and
its absence is reported as one clear error when the server is started.

>>> with LoopbackS3() as s3:  # doctest: +SKIP
...     with EmbeddedBroker(port=0, storage=s3.storage()) as kafka:
...         kafka.stop(); kafka.start()  # same port, same data
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from types import TracebackType
from typing import IO, Final, Self

from broker.errors import EmbeddedBrokerError
from broker.transport._child import ChildHandle, free_port, terminate, wait_ready
from broker.transport._state import HOST

__all__ = ["DEFAULT_BUCKET", "LoopbackS3", "S3Storage"]

DEFAULT_BUCKET: Final = "tansu"
_INSTALL_HINT: Final = "install it with pip install 'moto[server]' (the project's test extra)"
_WHAT: Final = "the loopback S3 server"
# a loopback request never needs long; a slow answer only means "not ready yet"
_PROBE_TIMEOUT_S: Final = 1.0
# no proxy from the environment: every request goes straight to 127.0.0.1
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class S3Storage:
    """Tansu's ``s3://`` engine against an S3-compatible server on this machine's loopback.

    Every produced batch is one object under ``bucket``, committed group offsets are JSON
    objects beside them, so a broker restarted on the same bucket finds its topics, records
    and group offsets again. The endpoint must be plain ``http://`` on a loopback address
    (the server is a test fixture, like the broker's own plaintext listener); the keys are
    passed to the broker explicitly, so it never looks for credentials elsewhere (cloud
    metadata endpoints, profiles).
    """

    bucket: str
    endpoint: str
    region: str = "us-east-1"
    access_key_id: str = "loopback"
    secret_access_key: str = "loopback"  # noqa: S105 - a loopback test server's dummy key

    def __post_init__(self) -> None:
        S3Storage.check_bucket(self.bucket)
        parsed = urllib.parse.urlsplit(self.endpoint)
        try:
            port = parsed.port
        except ValueError:
            port = None
        host = parsed.hostname or ""
        if parsed.scheme != "http" or port is None or parsed.path not in ("", "/"):
            raise EmbeddedBrokerError(
                f"S3 endpoint {self.endpoint!r} must be http://<loopback address>:<port>"
            )
        if not _is_loopback(host):
            raise EmbeddedBrokerError(
                f"S3 endpoint {self.endpoint!r} is not on loopback; the embedded broker "
                f"stores data only on a server on this machine (127.0.0.1)"
            )
        for name, value in (("region", self.region), ("access key id", self.access_key_id)):
            if not value or not value.isprintable() or " " in value:
                raise EmbeddedBrokerError(f"S3 {name} {value!r} is empty or not printable")
        if not self.secret_access_key or not self.secret_access_key.isprintable():
            raise EmbeddedBrokerError("the S3 secret access key is empty or not printable")

    @staticmethod
    def check_bucket(bucket: str) -> None:
        """Raise :class:`EmbeddedBrokerError` unless ``bucket`` is a valid S3 bucket name."""
        allowed = all(c.islower() or c.isdigit() or c in ".-" for c in bucket)
        if not (3 <= len(bucket) <= 63 and allowed and bucket[0].isalnum() and bucket.isascii()):
            raise EmbeddedBrokerError(
                f"{bucket!r} is not a valid S3 bucket name "
                f"(3-63 lowercase letters, digits, dots and hyphens)"
            )

    @property
    def url(self) -> str:
        """The broker's ``--storage-engine`` value."""
        return f"s3://{self.bucket}/"

    def environment(self) -> dict[str, str]:
        """The variables the broker's object store client is given (and no other AWS_*)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT": self.endpoint.rstrip("/"),
            "AWS_ALLOW_HTTP": "true",
        }

    def __repr__(self) -> str:
        # never print the secret, even a dummy one, in logs and tracebacks
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self.endpoint!r})"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackS3(ChildHandle):
    """moto's S3 server as a child process on 127.0.0.1, with one bucket created.

    ``port=0`` picks a free port. :meth:`start` returns once the server answers HTTP and the
    bucket exists; :meth:`stop` terminates it (SIGKILL after ``stop_timeout_s``), and with it
    every object it held.
    """

    what = _WHAT

    def __init__(
        self,
        *,
        port: int = 0,
        bucket: str = DEFAULT_BUCKET,
        ready_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        if not 0 <= port < 65536:
            raise EmbeddedBrokerError(f"port {port} is not a valid TCP port (0-65535)")
        S3Storage.check_bucket(bucket)
        # an S3 bucket name: lowercase letters, digits, dots and hyphens, 3-63 characters
        super().__init__()
        self._requested_port = port
        self.bucket = bucket
        self._ready_timeout_s = ready_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The server's base URL, ``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def storage(self) -> S3Storage:
        """Storage settings that point the embedded broker at this server's bucket."""
        return S3Storage(bucket=self.bucket, endpoint=self.endpoint)

    def add_bucket(self, bucket: str) -> S3Storage:
        """Create another bucket (so brokers can share one server without sharing data) and
        return the storage settings for it."""
        S3Storage.check_bucket(bucket)
        self._create_bucket(bucket)
        return S3Storage(bucket=bucket, endpoint=self.endpoint)

    def start(self) -> None:
        """Start the server, wait until it answers, and create the bucket."""
        if self._process is not None:
            raise EmbeddedBrokerError("the loopback S3 server is already started")
        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
            raise EmbeddedBrokerError(f"the loopback S3 server needs moto: {_INSTALL_HINT}")
        port = free_port() if self._requested_port == 0 else self._requested_port
        # kept open while the server runs (its last line explains a failed start); closed by stop()
        log = tempfile.TemporaryFile()  # noqa: SIM115
        argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        except OSError as exc:
            log.close()
            raise EmbeddedBrokerError(f"cannot run the loopback S3 server: {exc.strerror}") from exc
        self._process, self._log, self._port = process, log, port
        try:
            self._wait_ready()
            self._create_bucket(self.bucket)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate the server and wait for it to exit (SIGKILL after the stop timeout)."""
        process, self._process = self._process, None
        log, self._log = self._log, None
        try:
            if process is not None:
                terminate(process, timeout_s=self._stop_timeout_s, what=_WHAT)
        finally:
            if log is not None:
                log.close()

    def _wait_ready(self) -> None:
        assert self._process is not None  # noqa: S101 - set by start() before this is called
        wait_ready(
            self._process,
            self._answers,
            what=_WHAT,
            where=f"{HOST}:{self.port}",
            log=self._log,
            timeout_s=self._ready_timeout_s,
            interval_s=0.05,
        )

    def _answers(self) -> bool:
        # ListBuckets; moto does not check signatures, so an unsigned GET is answered
        try:
            with _OPENER.open(self.endpoint + "/", timeout=_PROBE_TIMEOUT_S) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _create_bucket(self, bucket: str) -> None:
        url = f"{self.endpoint}/{bucket}"  # always http://127.0.0.1:<port>/<valid bucket>
        request = urllib.request.Request(url, method="PUT")  # noqa: S310
        try:
            with _OPENER.open(request, timeout=10.0) as reply:
                status = reply.status
        except urllib.error.HTTPError as exc:
            raise EmbeddedBrokerError(
                f"the loopback S3 server refused to create bucket {bucket!r}: HTTP {exc.code}"
            ) from exc
        except OSError as exc:
            raise EmbeddedBrokerError(
                f"cannot create bucket {bucket!r} on the loopback S3 server: {exc}"
            ) from exc
        if status != 200:
            raise EmbeddedBrokerError(
                f"the loopback S3 server answered HTTP {status} to creating {bucket!r}"
            )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
