"""The JSON Schema documents generated from the models, byte for byte deterministic.

Pure: this returns file names and contents; the CLI writes them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from broker.schema.labels import Labels
from broker.schema.message import MESSAGE_MODELS

__all__ = ["SCHEMA_DIALECT", "json_schemas", "portable_patterns"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_ID_BASE = "urn:broker:schemas:"
_NO_FINAL_NEWLINE = "(?!\\n)"
# JSON Schema judges decoded values; these rules are about the text, so they are said in words.
_SPELLING = (
    "A document is also held to its JSON text, which this schema cannot see: each key once, "
    "integers without a fraction or exponent (1, never 1.0), no NaN or Infinity; "
    "'broker schemas validate' refuses any other spelling."
)


def portable_patterns(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``pattern`` that ends in ``$`` made to end there in every engine.

    The models' patterns run on Rust's regex engine, where ``$`` is the end of the text, as it
    is in ECMA-262, the dialect JSON Schema names. Python's ``re``, which Python validators
    use, also lets ``$`` match before one final newline, so ``"GB\n"`` would pass ``^[A-Z]{2}$``
    there while the parser refuses it. ``(?!\n)`` after the ``$`` means nothing in ECMA-262 and
    closes that door in Python; Rust has no lookahead, so it is added here, on the way out.
    """
    portable: dict[str, Any] = _portable(schema)
    return portable


def _portable(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            key: (
                value + _NO_FINAL_NEWLINE
                if key == "pattern" and isinstance(value, str) and value.endswith("$")
                else _portable(value)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_portable(item) for item in schema]
    return schema


def _document(model: type[BaseModel], name: str, title: str) -> bytes:
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{_ID_BASE}{name}",
        "$comment": _SPELLING,
        **portable_patterns(model.model_json_schema(mode="validation")),
    }
    schema["title"] = title
    text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def json_schemas() -> dict[str, bytes]:
    """``{file name: JSON Schema}``: one per message type and version, plus the labels."""
    documents = {
        f"{message_type}.v{version}.schema.json": _document(
            model,
            f"{message_type}.v{version}.schema.json",
            f"{message_type} version {version}",
        )
        for (message_type, version), model in sorted(MESSAGE_MODELS.items())
    }
    documents["labels.schema.json"] = _document(Labels, "labels.schema.json", "message labels")
    return documents
