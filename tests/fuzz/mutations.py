"""Hypothesis strategies that turn valid seeds into hostile input.

Three layers, from blind to structure-aware:

- :func:`byte_mutants`: bit flips, truncations, deletions, random insertions, duplicated and
  spliced ranges, 32-bit length fields overwritten with huge values, and "interesting" tokens
  (huge numbers, NaN, lone surrogates, overlong UTF-8, BOMs, deep nesting) dropped anywhere;
- :func:`json_mutants`: parse the seed, change one or more places in the tree (edge values,
  wrong types, unknown or missing keys, deep nesting), serialise it again, canonically or not,
  and sometimes repeat a key in the text (duplicate keys never survive a ``dict``);
- :func:`yaml_mutants`: the same tree mutations written back as YAML, plus YAML's own weapons
  inserted at line starts: tags, anchors and aliases, directives, several documents, merge
  keys, tabs, complex keys.

Everything is a pure function of hypothesis draws, so every failure shrinks and replays.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from broker import errors

__all__ = [
    "CAMPAIGN",
    "EDGE_VALUES",
    "JSON_TOKENS",
    "YAML_TOKENS",
    "byte_mutants",
    "hostile",
    "json_mutants",
    "json_tree_mutants",
    "refused_or_accepted",
    "yaml_mutants",
]

_DEEP = 100_000
#: textual tokens that break naive JSON parsers or the code right after them
JSON_TOKENS: tuple[bytes, ...] = (
    b"9" * 5000,  # past Python's int-from-text digit limit
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1e999",
    b"-1e999",
    b"1.5",
    b"-0",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b'""',
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"\\u0000"',
    b'"\\u202e"',
    "\u202e\u0301\ufeff\U0010ffff".encode(),
    b"\xc0\x80",  # overlong NUL
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xef\xbb\xbf",  # byte-order mark
    b"\xff\xfe\x00",
    b"[" * 600 + b"]" * 600,  # parses, but deep enough to overflow a recursive walk
    b'{"a":' * 600 + b"1" + b"}" * 600,
    b"[" * _DEEP,
    b'{"a":' * _DEEP,
    b"]" * 64,
    b",,",
    b'"a":1,"a":2,',
)
#: tokens YAML readers must refuse or survive
YAML_TOKENS: tuple[bytes, ...] = (
    b"!!python/object/apply:os.system ['true']\n",
    b"!!python/name:builtins.exec\n",
    b"x: !!binary aGVsbG8=\n",
    b"x: !!set {a, b}\n",
    b"x: !!timestamp 2001-12-14\n",
    b"x: !custom 1\n",
    b"x: &a [1, 2]\ny: *a\n",
    b"<<: *undefined\n",
    b"x: &a {k: v}\n<<: *a\n",
    b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    b"%YAML 1.1\n---\n",
    b"%TAG ! tag:example.com,2000:\n---\n",
    b"---\nsecond: document\n",
    b"...\n",
    b"? [complex, key]\n: value\n",
    b"? {a: 1}\n: value\n",
    b"1: integer key\n",
    b"null: null key\n",
    b"\t",
    b"x: NO\n",
    b"x: 0o777\n",
    b"x: 0x" + b"f" * 5000 + b"\n",
    b"x: " + b"9" * 5000 + b"\n",
    b"x: .inf\n",
    b"x: 1e999\n",
    b"x: 2001-02-30\n",
    b"x: '" + b"\n",
    b'x: "\\x"\n',
    b'x: "\\ud800"\n',
    b"x: " + b"[" * _DEEP + b"\n",
    b"x: " + b"{a: " * _DEEP + b"\n",
    b"- " * 2000 + b"x\n",
    b"x:\n" + b"".join(b" " * i + b"- \n" for i in range(0, 400, 2)),
)
#: JSON-able values placed anywhere in a tree
EDGE_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    10**4000,
    1.5,
    1e308,
    -0.0,
    "",
    "\x00",
    "\ud800",
    "\u202e\u0301",
    "x" * 70_000,
    "GB",
    "00000000-0000-7000-8000-000000000000",
    "2026-02-30T25:61:61Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "ab" * 32,
    [],
    {},
    [None] * 5000,
)


_ODD_TEXT = ("\u00e9", "\u2014", "\u202e", "\ud800", "\x00", "\uffff", "\U0001f600", "\u0661")


def _at(draw: st.DrawFn, data: bytes) -> int:
    return draw(st.integers(0, len(data)))


def _flip(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    if not data:
        return data
    i = draw(st.integers(0, len(data) - 1))
    return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]


def _truncate(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    return data[: _at(draw, data)]


def _delete(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    i = _at(draw, data)
    return data[:i] + data[i + draw(st.integers(1, 64)) :]


def _insert(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    i = _at(draw, data)
    return data[:i] + draw(st.binary(min_size=1, max_size=64)) + data[i:]


def _token(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    i, j = sorted((_at(draw, data), _at(draw, data)))
    j = min(j, i + 32)  # replace a short stretch, or insert when i == j
    return data[:i] + draw(st.sampled_from(JSON_TOKENS)) + data[j:]


def _duplicate(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    i, j = sorted((_at(draw, data), _at(draw, data)))
    k = _at(draw, data)
    return data[:k] + data[i:j] + data[k:]


def _splice(draw: st.DrawFn, data: bytes, seeds: Sequence[bytes]) -> bytes:
    other = draw(st.sampled_from(seeds))
    return data[: _at(draw, data)] + other[_at(draw, other) :]


def _huge_length(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    # Every binary frame here carries 32- or 16-bit big-endian lengths near its start.
    i = draw(st.integers(0, min(len(data), 64)))
    value = draw(st.sampled_from((0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, len(data), len(data) + 1)))
    return data[:i] + struct.pack(">I", value) + data[i + 4 :]


def _deep(draw: st.DrawFn, data: bytes, _seeds: Sequence[bytes]) -> bytes:
    # Nesting gets its own operation: it is the classic way to crash a recursive parser.
    i = _at(draw, data)
    depth = draw(st.sampled_from((40, 600, 5000, _DEEP)))
    opener = draw(st.sampled_from((b"[", b'{"a":', b"- ", b"{a: ")))
    closer = {b"[": b"]", b'{"a":': b"}", b"- ": b"", b"{a: ": b"}"}[opener]
    middle = b"1" + closer * depth if draw(st.booleans()) else b""
    return data[:i] + opener * depth + middle + data[i:]


_Operation = Callable[[st.DrawFn, bytes, Sequence[bytes]], bytes]
_OPERATIONS: tuple[_Operation, ...] = (
    _flip,
    _truncate,
    _delete,
    _insert,
    _token,
    _duplicate,
    _splice,
    _huge_length,
    _deep,
)


@st.composite
def _mutate(draw: st.DrawFn, seeds: Sequence[bytes], start: bytes | None = None) -> bytes:
    data = draw(st.sampled_from(seeds)) if start is None else start
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.sampled_from(_OPERATIONS))(draw, data, seeds)
    return data


def byte_mutants(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """One to four blind byte-level mutations of one of ``seeds``."""
    return _mutate(tuple(seeds))


def hostile(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """The seeds themselves, blind mutations of them, or random bytes."""
    return st.one_of(st.sampled_from(tuple(seeds)), byte_mutants(seeds), st.binary(max_size=2048))


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


def _replace(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        return {**tree, head: _replace(tree[head], rest, value)}
    copy = list(tree)
    copy[head] = _replace(tree[head], rest, value)
    return copy


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def _tree_edit(draw: st.DrawFn, tree: Any) -> Any:
    path = draw(st.sampled_from(_paths(tree)))
    target = _get(tree, path)
    kind = draw(st.sampled_from(("edge", "deep", "drop", "add", "wrap", "random", "unicode")))
    if kind == "drop" and path:
        parent = _get(tree, path[:-1])
        if isinstance(parent, dict):
            return _replace(tree, path[:-1], {k: v for k, v in parent.items() if k != path[-1]})
        return _replace(tree, path[:-1], [v for i, v in enumerate(parent) if i != path[-1]])
    if kind == "add" and isinstance(target, dict):
        key = draw(st.sampled_from(("unknown", "__proto__", "", "v", "signature", "\x00")))
        return _replace(tree, path, {**target, key: draw(st.sampled_from(EDGE_VALUES))})
    if kind == "wrap":
        return _replace(tree, path, draw(st.sampled_from(([target], {"x": target}, [target] * 3))))
    if kind == "deep":
        return _replace(tree, path, _nested(draw(st.sampled_from((31, 33, 64, 400)))))
    if kind == "unicode":
        # Non-ASCII where ASCII is expected (base64, hex, ids, codes) trips many decoders.
        odd = draw(st.sampled_from(_ODD_TEXT))
        return _replace(tree, path, odd + target if isinstance(target, str) else odd)
    if kind == "random":
        return _replace(tree, path, draw(st.text(max_size=40) | st.integers() | st.booleans()))
    return _replace(tree, path, draw(st.sampled_from(EDGE_VALUES)))


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


@st.composite
def json_tree_mutants(draw: st.DrawFn, tree: Any) -> Any:
    """``tree`` (parsed JSON or YAML) after one to three structural edits."""
    for _ in range(draw(st.integers(1, 3))):
        tree = draw(_tree_edit(tree))
    return tree


def _dumps(tree: Any, style: str) -> bytes:
    try:
        if style == "canonical":
            return json.dumps(tree, sort_keys=True, separators=(",", ":")).encode()
        if style == "unicode":
            return json.dumps(tree, ensure_ascii=False).encode("utf-8", "surrogatepass")
        return json.dumps(tree, indent=2).encode()
    except (ValueError, RecursionError):
        return b'{"unserialisable": true}'


@st.composite
def _json_mutant(draw: st.DrawFn, seeds: Sequence[bytes], styles: Sequence[str]) -> bytes:
    tree = draw(json_tree_mutants(json.loads(draw(st.sampled_from(seeds)))))
    data = _dumps(tree, draw(st.sampled_from(styles)))
    if draw(st.booleans()) and data.startswith(b"{") and b":" in data:
        # Repeat the first member: only the text can carry a duplicate key.
        first = data[1 : data.index(b",") if b"," in data else len(data) - 1]
        data = b"{" + first + b"," + data[1:]
    if draw(st.integers(0, 3)) == 0:
        data = draw(_mutate(seeds, data))
    return data


def json_mutants(
    seeds: Sequence[bytes], *, styles: Sequence[str] = ("canonical", "unicode", "indented")
) -> st.SearchStrategy[bytes]:
    """Structure-aware mutants of JSON ``seeds``, serialised in one of ``styles``."""
    return _json_mutant(tuple(seeds), tuple(styles))


def _yaml_dump(tree: Any) -> bytes:
    out = io.StringIO()
    try:
        YAML(typ="safe", pure=True).dump(tree, out)
    except (ValueError, RecursionError, TypeError):
        return b"unserialisable: true\n"
    return out.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def _yaml_mutant(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    seed = draw(st.sampled_from(seeds))
    how = draw(st.sampled_from(("tree", "token", "bytes")))
    if how == "tree":
        tree = YAML(typ="safe", pure=True).load(seed)
        return _yaml_dump(draw(json_tree_mutants(tree)))
    if how == "token":
        lines = seed.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines)))
        indent = draw(st.sampled_from((b"", b"  ", b"    ")))
        token = draw(st.sampled_from(YAML_TOKENS))
        return b"".join(lines[:at]) + indent + token + b"".join(lines[at:])
    return draw(_mutate(seeds, seed))


def yaml_mutants(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Structure-aware and YAML-specific mutants of YAML ``seeds``."""
    return _yaml_mutant(tuple(seeds))


def _examples() -> int:
    return int(os.environ.get("BROKER_FUZZ_EXAMPLES", "300"))


#: the per-target budget in CI; BROKER_FUZZ_EXAMPLES raises it for a longer local campaign.
#: No deadline: a slow example is not a failure here, an exception is.
CAMPAIGN = settings(
    max_examples=_examples(),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)


def refused_or_accepted(call: Callable[[], object]) -> None:
    """Run ``call``; our own errors are the expected refusal, anything else fails the test.

    RecursionError, MemoryError and every other exception propagate, so hypothesis reports
    and shrinks them as crashes.
    """
    with contextlib.suppress(errors.BrokerError):
        call()
