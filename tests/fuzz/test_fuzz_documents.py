"""Hostile documents: message JSON, accord YAML, daemon config YAML, the partner registry and
adapter spool submissions are each parsed or refused with our error, never a crash.

Seeds are the real files (``schemas/examples/``, ``policies/``, ``deploy/examples/``) and a
real signed registry; mutations are structural (edited trees written back as JSON or YAML,
duplicate keys, deep nesting, huge numbers, YAML tags, anchors, aliases and directives) and
blind (bit flips, truncations, splices).
"""

from __future__ import annotations

import pathlib
import tempfile

import pytest
from hypothesis import given

from broker.adapter.spool import parse_submission
from broker.config import load_config
from broker.keys import verify_registry
from broker.policy import lint_accord, parse_accord
from broker.schema import parse_message
from tests.fuzz.mutations import (
    CAMPAIGN,
    hostile,
    json_mutants,
    refused_or_accepted,
    yaml_mutants,
)
from tests.fuzz.seeds import (
    NOW,
    accord_seeds,
    config_seeds,
    message_seeds,
    submission_seeds,
    world,
)

# A failing example can be megabytes of nesting; its repr must not hide the real failure.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


@CAMPAIGN
@given(data=json_mutants(message_seeds()) | hostile(message_seeds()))
def test_parse_message_never_crashes(data: bytes) -> None:
    """parse_message() of any bytes returns a Message or raises our error."""
    refused_or_accepted(lambda: parse_message(data))


@CAMPAIGN
@given(data=yaml_mutants(accord_seeds()) | hostile(accord_seeds()))
def test_parse_accord_never_crashes(data: bytes) -> None:
    """parse_accord() of any bytes returns an Accord or raises our error."""
    refused_or_accepted(lambda: parse_accord(data, source="fuzz.yaml"))


@CAMPAIGN
@given(data=yaml_mutants(accord_seeds()) | hostile(accord_seeds()))
def test_lint_accord_never_crashes(data: bytes) -> None:
    """lint_accord() reports problems as a list; it does not raise for any bytes."""
    problems = lint_accord(data, source="fuzz.yaml")
    assert isinstance(problems, list)


@CAMPAIGN
@given(data=yaml_mutants(config_seeds()) | hostile(config_seeds()))
def test_load_config_never_crashes(data: bytes) -> None:
    """load_config() of any file content returns a Config or raises our error."""
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / "broker.yaml"
        path.write_bytes(data)
        refused_or_accepted(lambda: load_config(path, env={}))


@CAMPAIGN
@given(data=json_mutants([world().registry_bytes]) | hostile([world().registry_bytes]))
def test_verify_registry_never_crashes(data: bytes) -> None:
    """verify_registry() of any bytes, bootstrapping or against the trusted registry, returns a
    Registry or raises our error."""
    refused_or_accepted(lambda: verify_registry(data, trusted=None, now=NOW))
    refused_or_accepted(lambda: verify_registry(data, trusted=world().registry, now=NOW))


@CAMPAIGN
@given(data=json_mutants(submission_seeds()) | hostile(submission_seeds()))
def test_parse_submission_never_crashes(data: bytes) -> None:
    """parse_submission() of any spool file returns a Submission or raises our error."""
    refused_or_accepted(lambda: parse_submission(data))
