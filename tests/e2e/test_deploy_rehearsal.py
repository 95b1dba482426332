"""deploy/README.md section 9, run exactly as written: from nothing (keys, registry, accord,
topics, daemons, officers) to an officer's message delivered, found by search, and its
receipt shown by ``broker status``. Each step a new operator would type, in bash, with the
daemons as real processes on the embedded broker the script starts itself."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
_HEADING = "## 9. Rehearsal: an officer's first message, from nothing, on one machine"
_RUN_S = 420


def _script() -> str:
    """The first indented block of section 9, unindented."""
    text = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    lines = text[text.index(_HEADING) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    block: list[str] = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip("\n") + "\n"


def test_the_rehearsal_runs_as_written(tmp_path: Path) -> None:
    bash, curl = shutil.which("bash"), shutil.which("curl")
    if bash is None or curl is None:
        pytest.skip("bash and curl are needed, as the section says")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "REPO": str(ROOT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for name in ("BROKER_OFFICER", "BROKER_OFFICER_TOKEN", "BROKER_CONFIG"):
        env.pop(name, None)
    process = subprocess.Popen(
        [bash, "-eu", "-c", _script()],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=_RUN_S)
    finally:
        # the daemons (the script's background jobs, in its process group) and the broker,
        # whatever happened: nothing outlives the test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        subprocess.run(
            [sys.executable, "-m", "broker", "kafka", "down", "--state-dir",
             str(tmp_path / "rehearsal" / "kafka")],
            check=False, capture_output=True,
        )  # fmt: skip
    logs = {
        name: (tmp_path / "rehearsal" / name).read_text(errors="replace")[-2000:]
        for name in ("gateway.log", "adapter-gb.log", "adapter-rs.log")
        if (tmp_path / "rehearsal" / name).exists()
    }
    assert process.returncode == 0, f"{err[-3000:]}\n{logs}"

    sent = re.search(r"^sent ([0-9a-f-]{36})$", out, re.MULTILINE)
    assert sent is not None, out
    message_id = sent.group(1)
    found = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    (row,) = [r for r in found if r["message_id"] == message_id]
    assert row["sender"] == "GB"
    assert row["origin"] == {
        "agency": "Border Force",
        "officer": "d.clarke",
        "unit": "Maritime Intelligence",
    }
    assert f"RS  {message_id}  receipt accepted by RS" in out
    assert "submitted by d.clarke (Border Force, Maritime Intelligence)" in out
    assert "stopped the embedded broker" in out
