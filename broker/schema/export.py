"""The JSON Schema documents generated from the models, byte for byte deterministic.

Pure: this returns file names and contents; the CLI writes them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from broker.schema.labels import Labels
from broker.schema.message import MESSAGE_MODELS

__all__ = ["SCHEMA_DIALECT", "json_schemas"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_ID_BASE = "urn:broker:schemas:"


def _document(model: type[BaseModel], name: str, title: str) -> bytes:
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{_ID_BASE}{name}",
        **model.model_json_schema(mode="validation"),
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
