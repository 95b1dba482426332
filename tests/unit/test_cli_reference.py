"""docs/CLI.md against the command tree itself: every command is named there and everything
named there exists, and every option says what it does in its --help."""

from __future__ import annotations

import pathlib
import re
import shlex

import click
import pytest

from broker.cli import cli

_DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "CLI.md"


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _leaves(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def _command_lines() -> list[set[str]]:
    """The words of each `broker ...` line of the command-groups block (split on spaces and |),
    up to its description (after a wide gap), less the value an option takes (`--engine
    apache`)."""
    text = _DOC.read_text(encoding="utf-8")
    block = text.split("## Command groups", 1)[1].split("```", 2)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("broker "):
            continue
        syntax = re.split(r"\s{2,}", line.strip())[0]
        tokens = re.split(r"[\s|]+", syntax)
        lines.append(
            {t for before, t in zip(["", *tokens], tokens, strict=False) if not _option(before)}
        )
    return lines


def _option(token: str) -> bool:
    """An option that takes a value (a flag, `[--json]`, closes its bracket)."""
    return token.lstrip("[").startswith("-") and not token.endswith("]")


LEAVES = _leaves(cli)


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_is_named_in_the_cli_reference(path: tuple[str, ...]) -> None:
    """`broker a b c` is named by a line of the block holding a, b and c."""
    assert any(set(path) <= words for words in _command_lines()), (
        f"broker {' '.join(path)} is missing from docs/CLI.md's command groups"
    )


def test_every_command_the_reference_names_exists() -> None:
    """Every lower-case word of a line's syntax that is not an option or its value is a
    command or subcommand."""
    known = {name for path in LEAVES for name in path}
    for words in _command_lines():
        named = {w for w in words if re.fullmatch(r"[a-z][a-z0-9-]*", w)} - {"broker"}
        unknown = named - known
        assert not unknown, f"docs/CLI.md names commands that do not exist: {sorted(unknown)}"


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append((" ".join((*path, name)), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(cli), ids=lambda v: str(v))
def test_every_command_and_option_has_help(name: str, command: click.Command) -> None:
    """`--help` explains the command and each of its options."""
    assert (command.help or "").strip(), f"broker {name} has no help text"
    bare = [
        "/".join(param.opts)
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert not bare, f"broker {name}: options without help: {bare}"


_DOCUMENTS = [
    _DOC.parents[1] / "README.md",
    _DOC.parents[1] / "deploy" / "README.md",
    *sorted(_DOC.parent.glob("*.md")),
]


def _invocations(text: str) -> list[str]:
    """Every `broker ...` a document shows: code lines (joined over `\\` continuations) and
    inline code spans."""
    lines = text.splitlines()
    found = []
    for index, line in enumerate(lines):
        shown = re.sub(r"^(\$ |\.venv/bin/)", "", line.strip())
        if shown.startswith("broker ") and line.startswith(("    ", "broker ")):
            while shown.endswith("\\") and index + 1 < len(lines):
                index += 1
                shown = shown[:-1] + " " + lines[index].strip()
            found.append(shown)
    return found + re.findall(r"`(broker [^`]+)`", text)


_SHELL = frozenset({"|", "||", "&&", ";", "&"})


def _problem(invocation: str) -> str | None:
    """Why ``invocation`` would not run: a command or option that does not exist. Lines that
    only sketch a command (placeholders, alternatives) are checked as far as they go."""
    try:
        tokens = shlex.split(invocation.split(" #")[0])[1:]
    except ValueError:
        tokens = invocation.split()[1:]
    # a shell line goes on past the command: a pipe, a redirection, a list
    ends = [i for i, t in enumerate(tokens) if t in _SHELL or t.startswith((">", "2>", "<"))]
    tokens = tokens[: ends[0]] if ends else tokens
    if not tokens or tokens[0] not in cli.commands:
        return None  # prose that happens to start with the word
    command: click.Command = cli
    path: list[str] = []
    while isinstance(command, click.Group) and tokens:
        word = tokens[0]
        if word in command.commands:
            command, tokens = command.commands[word], tokens[1:]
            path.append(word)
        elif re.fullmatch(r"[a-z][a-z0-9-]*", word):
            return f"broker {' '.join([*path, word])} does not exist"
        else:
            return None
    if isinstance(command, click.Group):
        return None
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    unknown = [
        name
        for token in tokens
        if re.fullmatch(r"--?[a-z][a-z0-9-]*", name := token.strip("[]()|,.;:").split("=")[0])
        and name not in known
    ]
    return f"broker {' '.join(path)} has no option {', '.join(unknown)}" if unknown else None


@pytest.mark.parametrize("document", _DOCUMENTS, ids=lambda p: p.name)
def test_every_command_a_document_shows_exists_with_its_options(document: pathlib.Path) -> None:
    """A reader copying a command from the README, deploy/README.md or docs/ never meets
    "No such command" or "No such option"."""
    problems = [
        f"{why}: {shown[:100]}"
        for shown in _invocations(document.read_text(encoding="utf-8"))
        if (why := _problem(shown)) is not None
    ]
    assert not problems, "\n".join(problems)
