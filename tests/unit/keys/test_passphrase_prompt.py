"""On a terminal, with no passphrase file or variable, key commands prompt for it (twice for
new keys) without echoing it; the key files open with what was typed."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from broker import keys

_HANG_GUARD_S = 60.0


def _run_on_a_terminal(args: list[str], typed: list[bytes]) -> tuple[int, bytes]:
    """Run ``broker ARGS`` with a pseudo-terminal as stdin and stderr, typing each of
    ``typed`` after each prompt; its exit status and everything it wrote there."""
    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != keys.DEFAULT_PASSPHRASE_ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", *args],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    seen = b""
    answers = list(typed)
    try:
        while process.poll() is None:
            ready, _, _ = select.select([main], [], [], _HANG_GUARD_S)
            if not ready:
                process.kill()
                break
            try:
                chunk = os.read(main, 1024)
            except OSError:  # the terminal closed: the process has exited
                break
            seen += chunk
            if answers and seen.rstrip().endswith(b":"):
                os.write(main, answers.pop(0) + b"\n")
                seen += b"<typed>"
        process.wait(timeout=_HANG_GUARD_S)
    finally:
        os.close(main)
        assert process.stdout is not None
        process.stdout.close()
    return process.returncode, seen


def test_a_new_key_asks_twice_and_opens_with_what_was_typed(tmp_path: Path) -> None:
    out = tmp_path / "roots"
    code, seen = _run_on_a_terminal(
        ["keys", "generate-root", "--out", str(out), "--name", "root-gb"],
        [b"correct horse battery", b"correct horse battery"],
    )
    assert code == 0, seen
    assert b"correct horse" not in seen  # not echoed
    assert seen.count(b"Passphrase for the new key files") == 1
    assert b"Repeat for confirmation" in seen
    (key_file,) = out.glob("root-*.pem")
    keys.load_signing_key(key_file, passphrase=b"correct horse battery")


def test_two_different_answers_are_asked_again(tmp_path: Path) -> None:
    out = tmp_path / "roots"
    code, seen = _run_on_a_terminal(
        ["keys", "generate-root", "--out", str(out), "--name", "root-gb"],
        [
            b"correct horse battery",
            b"correct horse batterz",
            b"staple staple staple",
            b"staple staple staple",
        ],
    )
    assert code == 0, seen
    assert b"do not match" in seen
    (key_file,) = out.glob("root-*.pem")
    keys.load_signing_key(key_file, passphrase=b"staple staple staple")


def test_without_a_terminal_or_a_source_it_says_how(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != keys.DEFAULT_PASSPHRASE_ENV}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker",
            "keys",
            "generate-root",
            "--out",
            str(tmp_path),
            "--name",
            "r",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=_HANG_GUARD_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "passphrase" in done.stderr
