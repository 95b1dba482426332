"""What every section of the configuration is built from: the strict section base, paths read
against the configuration file, partner codes, and secrets named by place, never inline."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from broker.ids import PartnerCode, partner_code

__all__ = ["NAME_PATTERN", "FilePath", "Partner", "SecretSource", "Section", "is_loopback"]

_ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,127}$"
_MAX_PATH = 4096
#: a path is text without NUL (the C library would cut it there)
_PATH_RE = re.compile(f"^[^\\x00]{{1,{_MAX_PATH}}}$")
_ONE_SOURCE: dict[str, Any] = {
    # _exactly_one() in the published schema's terms: one of the two is a string
    "oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}} for name in ("file", "env")
    ]
}
#: a client id, user or group name: what Kafka and the generated ACLs accept
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def _to_path(value: object, info: ValidationInfo) -> Path:
    # Relative paths are read against the configuration file's directory, not the working
    # directory, so a unit file and a shell reading the same file mean the same files.
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and _PATH_RE.fullmatch(value):
        try:
            path = Path(value).expanduser()
        except RuntimeError:  # "~name/..." for a user this machine does not know
            raise ValueError(f"cannot expand {value.split('/', 1)[0]!r}: no such user") from None
    else:
        raise ValueError(f"a path is a non-empty string of at most {_MAX_PATH} characters")
    base = (info.context or {}).get("base_dir") if isinstance(info.context, dict) else None
    if not path.is_absolute() and isinstance(base, Path):
        path = base / path
    return path


def _list_as_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


#: a YAML list given where a section holds a tuple (strict sections take no list otherwise)
LIST_AS_TUPLE = BeforeValidator(_list_as_tuple)

FilePath = Annotated[
    Path,
    BeforeValidator(_to_path),
    WithJsonSchema({"type": "string", "format": "path", "pattern": _PATH_RE.pattern}),
]
"""A filesystem path; relative paths resolve against the configuration file's directory."""


def _to_partner(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("a partner code is a string of two capital letters")  # noqa: TRY004 - pydantic wants ValueError
    return partner_code(value)


Partner = Annotated[PartnerCode, BeforeValidator(_to_partner)]


class Section(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        str_max_length=4096,
        validate_default=True,
        use_attribute_docstrings=True,
    )


class SecretSource(Section):
    """Where a secret is read from at start-up: a file or an environment variable, never inline.

    The configuration file only names the place, so the file can be shown, logged and
    committed without disclosing anything.
    """

    file: FilePath | None = None
    """A file holding the secret (one trailing newline is ignored); keep it mode 0600."""
    env: Annotated[str, Field(pattern=_ENV_NAME)] | None = None
    """The name of an environment variable holding the secret: capitals, digits and
    underscores."""

    model_config = ConfigDict(json_schema_extra=_ONE_SOURCE)

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of 'file' or 'env'")
        return self


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
