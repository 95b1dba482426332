"""The pinned Apache Kafka release, resolved with Maven from Maven Central into a cache.

``deploy/kafka/pom.xml`` names the release; :func:`resolve` runs ``mvn
dependency:copy-dependencies`` on it once, into ``$BROKER_CACHE_DIR/kafka-<version>/``
(default ``~/.cache/broker/kafka-<version>``, outside any work tree), with Maven's own local
repository beside it, so a fresh clone never downloads the same jars twice and never writes
into the repository. Nothing is fetched from anywhere but Maven Central.

A resolution is complete only when ``resolved.json`` names every jar it copied and each is
there: an interrupted ``mvn`` leaves no marker, and the next call resolves again.

``java`` (17 or newer; Kafka 4 needs it) and ``mvn`` are looked up on ``PATH`` (``JAVA_HOME``
first for java); a missing one is a :class:`~broker.errors.LocalClusterError` with one line
that says what to install.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

from broker.errors import LocalClusterError

__all__ = [
    "CACHE_ENV",
    "KAFKA_VERSION",
    "Distribution",
    "default_cache_dir",
    "find_java",
    "pom_path",
    "repository_file",
    "resolve",
]

#: the Apache Kafka release of every test, deployment artefact and image in the repository
KAFKA_VERSION: Final = "4.3.1"
CACHE_ENV: Final = "BROKER_CACHE_DIR"

_MIN_JAVA: Final = 17
_MARKER: Final = "resolved.json"
_RESOLVE_TIMEOUT_S: Final = 900.0
_VERSION_RE: Final = re.compile(r'version "(?:1\.)?(\d+)')


@dataclasses.dataclass(frozen=True, slots=True)
class Distribution:
    """A resolved release: where its jars are, and the ``java`` that runs them."""

    version: str
    lib_dir: Path
    java: Path

    @property
    def classpath(self) -> str:
        """The JVM class path: every jar of the release (a JVM wildcard, not a shell glob)."""
        return str(self.lib_dir / "*")

    def java_argv(self, main_class: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
        """The command line that runs ``main_class`` of this release with ``args``."""
        return [str(self.java), *jvm, "-cp", self.classpath, main_class, *args]


def repository_file(relative: str) -> Path:
    """A file of the repository this package runs from (``deploy/...``).

    The local cluster uses the repository's own pom and certificate script, so it runs from a
    checkout (an editable install), not from a wheel.
    """
    path = Path(__file__).resolve().parents[3] / relative
    if not path.is_file():
        raise LocalClusterError(
            f"{path} is missing: the Apache Kafka engine runs from a checkout of the repository"
        )
    return path


def pom_path() -> Path:
    """``deploy/kafka/pom.xml``: the release, as Maven coordinates."""
    return repository_file("deploy/kafka/pom.xml")


def default_cache_dir() -> Path:
    """``$BROKER_CACHE_DIR``, else ``$XDG_CACHE_HOME/broker``, else ``~/.cache/broker``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "broker"


def find_java() -> Path:
    """A ``java`` of version 17 or newer: ``$JAVA_HOME/bin/java``, else the one on ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    if candidate is None or not os.access(candidate, os.X_OK):
        found = shutil.which("java")
        if found is None:
            raise LocalClusterError(
                "java is not on PATH: the Apache Kafka engine needs Java 17 or newer "
                "(e.g. apt-get install openjdk-17-jre-headless)"
            )
        candidate = Path(found)
    version = _java_major(candidate)
    if version < _MIN_JAVA:
        raise LocalClusterError(
            f"{candidate} is Java {version}; Apache Kafka {KAFKA_VERSION} needs Java "
            f"{_MIN_JAVA} or newer (set JAVA_HOME to one)"
        )
    return candidate


def resolve(*, cache_dir: Path | None = None, version: str = KAFKA_VERSION) -> Distribution:
    """The release's jars, resolved from Maven Central now unless the cache holds them."""
    java = find_java()
    root = (cache_dir or default_cache_dir()) / f"kafka-{version}"
    lib_dir = root / "lib"
    if _complete(root, lib_dir):
        return Distribution(version=version, lib_dir=lib_dir, java=java)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalClusterError(
            f"mvn is not on PATH: Apache Kafka {version} is resolved from Maven Central with "
            f"Maven 3 (e.g. apt-get install maven), or point {CACHE_ENV} at a resolved cache"
        )
    if lib_dir.exists():
        shutil.rmtree(lib_dir)  # a partial copy from an interrupted run
    root.mkdir(parents=True, exist_ok=True)
    argv = [
        mvn,
        "--batch-mode",
        "--quiet",
        "--file",
        str(pom_path()),
        f"-Dmaven.repo.local={root / 'm2'}",
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={lib_dir}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_RESOLVE_TIMEOUT_S,
            check=False,
            env=os.environ | {"JAVA_HOME": str(java.resolve().parents[1])},
        )
    except subprocess.TimeoutExpired as exc:
        raise LocalClusterError(
            f"resolving Apache Kafka {version} with Maven took over {_RESOLVE_TIMEOUT_S:g} s"
        ) from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise LocalClusterError(
            f"mvn could not resolve Apache Kafka {version} (status {result.returncode}): "
            f"{_last_error(output)}"
        )
    jars = sorted(path.name for path in lib_dir.glob("*.jar"))
    if not any(name.startswith("kafka_2.13-") for name in jars):
        raise LocalClusterError(f"mvn resolved no kafka_2.13 jar into {lib_dir}")
    (root / _MARKER).write_text(json.dumps({"version": version, "jars": jars}, indent=1))
    return Distribution(version=version, lib_dir=lib_dir, java=java)


def _complete(root: Path, lib_dir: Path) -> bool:
    try:
        recorded = json.loads((root / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    jars = recorded.get("jars") if isinstance(recorded, dict) else None
    return isinstance(jars, list) and bool(jars) and all((lib_dir / j).is_file() for j in jars)


def _java_major(java: Path) -> int:
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalClusterError(f"cannot run {java} -version: {exc}") from exc
    match = _VERSION_RE.search(result.stderr.decode(errors="replace"))
    if match is None:
        raise LocalClusterError(f"{java} -version does not say which Java it is")
    return int(match[1])


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines or ["no output"])[0][:300]
