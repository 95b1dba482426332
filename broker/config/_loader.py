"""Loading the configuration: one YAML file, then ``BROKER_*`` environment overrides.

The file is read with a YAML 1.2 safe loader (so ``NO`` stays a string and no tag builds an
object); duplicate keys, anchors and aliases, and files over 256 KiB are refused before any
value is used.

Environment overrides
---------------------
A variable ``BROKER_<SECTION>__<FIELD>[__<SUBFIELD>...]`` sets one field: the name after
``BROKER_`` is split on double underscores, lowercased, and each part is one level of nesting
(single underscores stay inside a field name). For example::

    BROKER_KAFKA__BOOTSTRAP=kafka-1:9093,kafka-2:9093
    BROKER_KAFKA__SECURITY__PROTOCOL=SASL_SSL
    BROKER_KAFKA__SESSION_TIMEOUT_MS=15000
    BROKER_PARTNER=RS

Each value is read as one YAML 1.2 flow value: ``15000`` is a number, ``true`` a boolean,
``[a, b]`` a list, anything else text (quote it, ``'"0123"'``, to force text). Variables
``BROKER_<SECTION>_...`` with a single underscore after a known section are refused as a likely
typo; other ``BROKER_`` variables (secrets named by ``env:``, test settings) are ignored.
Overrides win over the file. Secrets are never given this way: the file names where they are.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, overload

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent

from broker import errors
from broker.bounded import read_bounded
from broker.config._base import SecretSource
from broker.config.roles import ROLES, BaseDaemonConfig, DaemonConfig, any_role, role_of
from broker.schema.export import portable_patterns

__all__ = ["ENV_PREFIX", "MAX_CONFIG_BYTES", "config_json_schema", "load_config", "read_secret"]

ENV_PREFIX = "BROKER_"
MAX_CONFIG_BYTES = 256 * 1024
#: a configuration nests three levels; deeper input is refused on the event stream, before
#: the YAML scanner (quadratic in flow nesting) or the recursive composer meets it
_MAX_DEPTH = 32
_MAX_ERRORS_SHOWN = 5
#: every top-level section some role has: a variable naming one is an override
_SECTIONS = frozenset(name for role in ROLES.values() for name in role.model_fields)

ConfigT = TypeVar("ConfigT", bound=BaseDaemonConfig)


@overload
def load_config(
    path: str | os.PathLike[str], role: type[ConfigT], *, env: Mapping[str, str] = ...
) -> ConfigT: ...


@overload
def load_config(
    path: str | os.PathLike[str], role: None = None, *, env: Mapping[str, str] = ...
) -> DaemonConfig: ...


def load_config(
    path: str | os.PathLike[str],
    role: type[BaseDaemonConfig] | None = None,
    *,
    env: Mapping[str, str] = os.environ,
) -> BaseDaemonConfig:
    """Read the configuration file at ``path``, with ``env``'s overrides applied, as the
    configuration of ``role`` (:class:`AdapterConfig`, :class:`GatewayConfig` or
    :class:`WitnessConfig`), or of the role its shape names (:func:`role_of`) when ``role`` is
    None. Each daemon loads its file with its own role, as ``deploy check-config --role`` does.

    Raises :class:`errors.UsageError` if the file cannot be read or an override variable is
    malformed, and :class:`errors.SchemaError` naming the file (or variable) and the field path
    if the content is invalid, or a section the role needs is missing or one it does not use
    is present.
    """
    file = Path(path)
    raw = read_bounded(
        file, limit=MAX_CONFIG_BYTES, what="configuration", too_large=errors.SchemaError
    )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.SchemaError(f"{file}: configuration is not UTF-8") from exc
    data = _parse_yaml(text, origin=str(file))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise errors.SchemaError(f"{file}: the configuration must be a mapping of sections")
    from_env = _apply_env(data, env)
    model = role or ROLES[role_of(data)]
    try:
        return model.model_validate(data, context={"base_dir": file.resolve().parent})
    except pydantic.ValidationError as exc:
        raise errors.SchemaError(
            _describe(exc, origin=str(file), from_env=from_env, role=model.role)
        ) from None


def read_secret(source: SecretSource, *, env: Mapping[str, str] = os.environ) -> bytes:
    """The secret a :class:`SecretSource` points at; one trailing newline is dropped.

    Raises :class:`errors.UsageError` if the file is unreadable, the variable is unset, or the
    secret is empty. The error names the place, never the value.
    """
    if source.file is not None:
        try:
            value = source.file.read_bytes()
        except OSError as exc:
            raise errors.UsageError(f"{source.file}: cannot read secret: {exc.strerror}") from exc
        where = str(source.file)
    else:
        name = source.env or ""
        if name not in env:
            raise errors.UsageError(f"environment variable {name} (a secret) is not set")
        value = env[name].encode("utf-8")
        where = f"environment variable {name}"
    value = value.removesuffix(b"\n").removesuffix(b"\r")
    if not value:
        raise errors.UsageError(f"{where}: the secret is empty")
    return value


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file, as published in ``schemas/config.schema.json``:
    one of the three role types, each requiring the sections its daemon needs."""
    schema = portable_patterns(any_role.json_schema(mode="validation"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "broker daemon configuration"
    schema["description"] = (
        "The configuration of one daemon: an adapter (it has 'partner'), a witness (it has a "
        "'witness' section) or the gateway. Each role requires the sections its daemon needs "
        "and allows no other, so exactly one of the three matches a valid file."
    )
    return schema


def _parse_yaml(text: str, *, origin: str) -> Any:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    yaml.allow_duplicate_keys = False
    try:
        # Aliases can multiply a small file into a huge tree (the "billion laughs"); a
        # configuration never needs them, so refuse them before building anything.
        depth = 0
        for event in yaml.parse(io.StringIO(text)):
            line = event.start_mark.line + 1 if event.start_mark else 0
            if isinstance(event, AliasEvent):
                raise errors.SchemaError(f"{origin}: line {line}: YAML aliases are not allowed")
            if isinstance(event, CollectionEndEvent):
                depth -= 1
            elif isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    raise errors.SchemaError(
                        f"{origin}: line {line}: nested deeper than {_MAX_DEPTH} levels"
                    )
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise errors.SchemaError(f"{origin}: {where}{problem or 'invalid YAML'}") from None
    except YAMLError as exc:
        raise errors.SchemaError(f"{origin}: invalid YAML: {type(exc).__name__}") from None
    except ValueError:  # an integer past Python's int-from-text digit limit
        raise errors.SchemaError(f"{origin}: a number has too many digits") from None


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Merge override variables into ``data``; return which field path each variable set."""
    sections = _SECTIONS
    applied: dict[tuple[str, ...], str] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        parts = tuple(rest.split("__"))
        if parts[0] not in sections:
            near = next((s for s in sections if rest.startswith(s + "_")), None)
            if near is not None:
                raise errors.UsageError(
                    f"environment variable {name}: nesting uses a double underscore, "
                    f"e.g. {ENV_PREFIX}{near.upper()}__..."
                )
            continue
        if any(not part for part in parts):
            raise errors.UsageError(f"environment variable {name}: empty name part")
        if any(part.startswith("unsafe_") for part in parts):
            raise errors.UsageError(
                f"environment variable {name}: an unsafe_ setting is taken from the "
                "configuration file only, where it is seen and reviewed"
            )
        value = _parse_yaml(env[name], origin=f"environment variable {name}")
        node: dict[str, Any] = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise errors.UsageError(f"environment variable {name}: {where} is not a section")
            node = child
        node[parts[-1]] = value
        applied[parts] = name
    return applied


def _describe(
    exc: pydantic.ValidationError,
    *,
    origin: str,
    from_env: Mapping[tuple[str, ...], str],
    role: str,
) -> str:
    lines = []
    for error in exc.errors(include_url=False)[:_MAX_ERRORS_SHOWN]:
        loc = tuple(str(part) for part in error["loc"])
        # Drop the discriminator tags pydantic inserts for unions: they are not in the file.
        shown = [p for p in loc if p not in {"PLAINTEXT", "SSL", "SASL_SSL"}]
        field = ".".join(shown) or "(top level)"
        source = next(
            (var for path, var in from_env.items() if tuple(shown[: len(path)]) == path), None
        )
        where = f"environment variable {source}" if source else origin
        lines.append(f"{where}: {field}: {_reason(error, top_level=len(shown) == 1, role=role)}")
    more = exc.error_count() - _MAX_ERRORS_SHOWN
    if more > 0:
        lines.append(f"... and {more} more")
    return "; ".join(lines)


def _reason(error: Any, *, top_level: bool, role: str) -> str:
    # A section the role lacks or must not have is the usual mistake: say it in the role's terms.
    if top_level and error["type"] == "missing":
        return f"required for the {role}"
    if top_level and error["type"] == "extra_forbidden":
        return f"not a setting of the {role}"
    return str(error["msg"])
