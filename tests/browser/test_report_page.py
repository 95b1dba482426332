"""The HTML audit report in a real headless Chromium: it opens with no console messages, its
script runs, and the sharing matrix is in the DOM; a log that does not verify is shown in its
own colour with its first bad index, its forged entries left out of every count. Screenshots
are kept as CI artifacts.

Chromium is Debian's ``chromium`` package, installed by the README's test command when it is
missing; without it these tests fail (never skip), because an unchecked page is exactly what
this test exists to prevent.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import html.parser
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

from broker.crypto import SigningKey, Suite
from broker.replay import read_header
from broker.schema.labels import Classification
from tests.unit.replay.audit_log import NOW, AuditLog, checkpointed_topic, decide, labels

CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "artifacts"
HANG_GUARD_S = 120
# Chromium logs every console message (log, warning, error, uncaught exception, CSP refusal)
# on stderr as "...:CONSOLE:<line>] ..." when started with --enable-logging=stderr --v=0.
CONSOLE_LINE = re.compile(r":CONSOLE(?::|\()\d*\)?\] (.*)")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with no network side-channels and a throwaway profile."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium package, which "
            "the README's test command installs (apt-get install -y chromium)",
            pytrace=False,
        )
    with tempfile.TemporaryDirectory(prefix="broker-chromium-") as profile:
        return subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
            check=False,
        )


def console_messages(stderr: str) -> list[str]:
    """Every console message Chromium reported while loading the page."""
    return [m[1] for m in map(CONSOLE_LINE.search, stderr.splitlines()) if m is not None]


class _Cells(html.parser.HTMLParser):
    """Collects the matrix cells (their data attributes and text), the body's and the
    verification result's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self.body: dict[str, str | None] = {}
        self.verification: dict[str, str | None] = {}
        self._open: tuple[str, str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = found
        if found.get("id") == "verification":
            self.verification = found
        if tag == "td" and "data-category" in found:
            self._open = (
                found["data-sender"] or "",
                found["data-recipient"] or "",
                found["data-category"] or "",
            )
            self.cells[self._open] = ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.cells[self._open] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._open = None


def _report(
    directory: pathlib.Path, log: AuditLog, values: list[bytes]
) -> tuple[int, pathlib.Path]:
    """``broker audit report --html`` on a bundle of ``values``: its exit status and page."""
    bundle = directory / "audit.bundle"
    bundle.write_bytes(log.bundle_bytes(values))
    page = directory / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "broker", "audit", "report", str(bundle), "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert page.is_file(), result.stderr
    return result.returncode, page


@pytest.fixture(scope="module")
def log_values() -> tuple[AuditLog, list[bytes]]:
    """A small checkpointed log: 3 GB->RS disclosures of operational and identity data, 1
    refusal."""
    log = AuditLog.create()
    v1, v2 = log.accords
    values = [decide(v1, labels(), key=log.gateway_key, at=NOW) for _ in range(3)]
    sensitive = labels(classification=Classification.OFFICIAL_SENSITIVE)
    values.append(decide(v2, sensitive, key=log.gateway_key, at=NOW))
    topic = asyncio.run(
        checkpointed_topic(values, key=log.gateway_key, registry=log.fixture.registry)
    )
    return log, topic.contents()


@pytest.fixture(scope="module")
def report_page(
    tmp_path_factory: pytest.TempPathFactory, log_values: tuple[AuditLog, list[bytes]]
) -> pathlib.Path:
    """The page ``broker audit report --html`` writes for the small log, which verifies."""
    status, page = _report(tmp_path_factory.mktemp("report"), *log_values)
    assert status == 0
    return page


@pytest.fixture(scope="module")
def forged_page(
    tmp_path_factory: pytest.TempPathFactory, log_values: tuple[AuditLog, list[bytes]]
) -> pathlib.Path:
    """The page for the same log with two forged disclosures to XK after it (signed by a key
    the registry does not list): the report is written, and the command exits 11."""
    log, values = log_values
    stranger = SigningKey.generate(Suite.CLASSIC)
    forged = [
        decide(log.accords[0], labels(), key=stranger, at=NOW, recipient="XK") for _ in range(2)
    ]
    status, page = _report(tmp_path_factory.mktemp("forged"), log, [*values, *forged])
    assert status == 11
    return page


def test_the_report_opens_without_console_messages_and_shows_the_matrix(
    report_page: pathlib.Path,
) -> None:
    """Loaded in Chromium, the page logs nothing (no errors, no blocked external asset), its
    script has run, and the DOM holds the matrix cells with the right counts."""
    loaded = chromium("--dump-dom", report_page.as_uri())
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert console_messages(loaded.stderr) == []
    cells = _Cells()
    cells.feed(loaded.stdout)
    assert cells.body.get("data-ready") == "1"
    assert cells.cells[("GB", "RS", "identity")] == "3"
    assert cells.cells[("GB", "RS", "operational")] == "3"
    assert 'id="refusals"' in loaded.stdout
    assert "policy_denied" in loaded.stdout
    assert cells.verification.get("data-verified") == "true"
    assert cells.verification.get("data-colour") == OK_COLOUR


#: the background Chromium computes for the verification result: green-tinted when it
#: verifies, red-tinted when it does not
OK_COLOUR = "rgb(240, 255, 244)"
FAILED_COLOUR = "rgb(255, 245, 245)"


def test_a_log_that_does_not_verify_is_shown_unmistakably(forged_page: pathlib.Path) -> None:
    """In Chromium, the verification result of a forged log has its own colour, says DOES NOT
    VERIFY and carries the first bad index (4: the first forgery); the forged disclosures to
    XK appear in no count, and the genuine ones are all still there."""
    loaded = chromium("--dump-dom", forged_page.as_uri())
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert console_messages(loaded.stderr) == []
    cells = _Cells()
    cells.feed(loaded.stdout)
    assert cells.body.get("data-ready") == "1"
    assert cells.verification.get("data-verified") == "false"
    assert cells.verification.get("data-first-bad-index") == "4"
    assert cells.verification.get("data-colour") == FAILED_COLOUR != OK_COLOUR
    assert "DOES NOT VERIFY: invalid_record at index 4" in loaded.stdout
    assert "2 records left out of every count" in loaded.stdout
    assert not [key for key in cells.cells if key[1] == "XK"]
    assert cells.cells[("GB", "RS", "identity")] == "3"


def test_the_console_check_sees_a_script_error(tmp_path: pathlib.Path) -> None:
    """The detector is not blind: a page with an uncaught error is reported."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><body><script>notDefined()</script></body>", "utf-8")
    loaded = chromium("--dump-dom", broken.as_uri())
    assert any("notDefined" in message for message in console_messages(loaded.stderr))


@pytest.mark.parametrize("name", ["report", "report-forged"])
def test_a_screenshot_of_the_report_is_kept(
    report_page: pathlib.Path, forged_page: pathlib.Path, name: str
) -> None:
    """artifacts/report.png and report-forged.png are written for CI to keep."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    page = report_page if name == "report" else forged_page
    taken = chromium(f"--screenshot={shot}", "--window-size=1200,900", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def _dom(page_uri: str) -> str:
    loaded = chromium("--dump-dom", page_uri)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert console_messages(loaded.stderr) == []
    return loaded.stdout


def _attributes(dom: str, tag: str, attribute: str) -> dict[str, str]:
    """``attribute`` value -> text of each ``tag`` carrying it."""
    found = re.findall(rf"<{tag}[^>]*\b{attribute}=\"([^\"]*)\"[^>]*>([^<]*)</{tag}>", dom)
    return dict(found)


def test_the_report_says_what_was_verified_with_totals_and_a_legend(
    report_page: pathlib.Path,
) -> None:
    """The registry's digest and version, the newest checkpoint, totals by kind, a legend."""
    bundle = report_page.parent / "audit.bundle"
    header = read_header(bundle)
    dom = _dom(report_page.as_uri())
    provenance = _attributes(dom, "td", "data-field")
    registry_digest = hashlib.sha256(header.registry_bytes).hexdigest()
    assert provenance["registry"] == (
        f"version {header.registry().version}, SHA-256 {registry_digest}"
    )
    assert re.search(r" size 4 root [0-9a-f]{64} at ", provenance["checkpoint"])
    totals = _attributes(dom, "td", "data-total")
    assert (totals["disclosure"], totals["refusal"], totals["refusals in all"]) == ("3", "1", "1")
    assert totals["left out, not authenticated"] == "0"
    assert 'id="legend"' in dom


def test_the_decisions_filter_by_the_address_fragment(report_page: pathlib.Path) -> None:
    """Four decisions listed; ``#reason=policy_denied`` leaves the one refusal shown and hides
    the three disclosures; an unknown value filters nothing."""
    dom = _dom(report_page.as_uri())
    assert 'data-shown="4"' in dom
    assert dom.count("<details>") == 4
    filtered = _dom(report_page.as_uri() + "#reason=policy_denied")
    assert 'data-shown="1"' in filtered
    assert filtered.count(" hidden=") == 3
    unknown = _dom(report_page.as_uri() + "#partner=ZZ")
    assert 'data-shown="4"' in unknown


def test_forged_records_are_in_no_list_and_no_filter(forged_page: pathlib.Path) -> None:
    """The two forged disclosures to XK are neither rows nor a partner to filter by."""
    dom = _dom(forged_page.as_uri())
    assert 'data-shown="4"' in dom
    assert '<option value="XK">' not in dom
    assert 'data-recipient="XK"' not in dom


def test_the_csv_lists_every_authenticated_decision(
    tmp_path: pathlib.Path, log_values: tuple[AuditLog, list[bytes]]
) -> None:
    log, values = log_values
    stranger = SigningKey.generate(Suite.CLASSIC)
    forged = decide(log.accords[0], labels(), key=stranger, at=NOW, recipient="XK")
    bundle = tmp_path / "audit.bundle"
    bundle.write_bytes(log.bundle_bytes([*values, forged]))
    out = tmp_path / "decisions.csv"
    result = subprocess.run(
        [sys.executable, "-m", "broker", "audit", "report", str(bundle), "--csv", str(out)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert result.returncode == 11  # the forgery: written first, then the failure
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["kind"], r["recipient"]) for r in rows] == [("disclosure", "RS")] * 3 + [
        ("refusal", "RS")
    ]
    assert rows[3]["reason_code"] == "policy_denied"
