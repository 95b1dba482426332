"""Strict message schemas: the models, their parser and canonical bytes, labels and redaction.

The pydantic models are the source of truth; ``broker schemas export`` writes them as JSON
Schema to ``schemas/``. Every body field declares one data category, so labelling and redaction
are mechanical (:mod:`broker.schema.categories`).
"""

from __future__ import annotations

from broker.schema.categories import categories_present, field_categories, labels_of, redact
from broker.schema.classification import (
    NationalMarking,
    equivalence_partners,
    from_gsc,
    national_markings,
    to_gsc,
)
from broker.schema.evaluation import (
    AdmiraltyEvaluation,
    EuropolEvaluation,
    Evaluation,
    EvaluationScheme,
    EvaluationTranslation,
    UkEvaluation,
    translate_evaluation,
)
from broker.schema.export import json_schemas
from broker.schema.handling import ConditionKind, HandlingCondition
from broker.schema.labels import (
    TLP,
    Classification,
    DataCategory,
    HandlingCode,
    Labels,
    MessageType,
    Purpose,
)
from broker.schema.message import MESSAGE_MODELS, Message
from broker.schema.wire import MAX_DEPTH, MAX_MESSAGE_BYTES, message_bytes, parse_message

__all__ = [
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_MODELS",
    "TLP",
    "AdmiraltyEvaluation",
    "Classification",
    "ConditionKind",
    "DataCategory",
    "EuropolEvaluation",
    "Evaluation",
    "EvaluationScheme",
    "EvaluationTranslation",
    "HandlingCode",
    "HandlingCondition",
    "Labels",
    "Message",
    "MessageType",
    "NationalMarking",
    "Purpose",
    "UkEvaluation",
    "categories_present",
    "equivalence_partners",
    "field_categories",
    "from_gsc",
    "json_schemas",
    "labels_of",
    "message_bytes",
    "national_markings",
    "parse_message",
    "redact",
    "to_gsc",
    "translate_evaluation",
]
