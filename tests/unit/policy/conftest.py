"""Shared fixtures for the accord tests: the shipped accords and a small accord written inline."""

from __future__ import annotations

import pathlib

import pytest

from broker.policy import Accord, parse_accord

POLICIES = pathlib.Path(__file__).resolve().parents[3] / "policies"

SMALL_ACCORD = """\
accord: gb-zz
title: A small accord for tests
version: 2
parties: [GB, ZZ]
effective: 2026-01-01
expires: 2027-01-01
suite: classic
flows:
  - id: GB-ZZ
    from: GB
    to: ZZ
    tier: operational
    types: [network.report, person.alert]
    purposes: [people-smuggling]
    max_classification: OFFICIAL-SENSITIVE
    max_tlp: AMBER
    handling_codes: [H0, H2]
    categories:
      allow: [operational, identity]
      redact: [biometric]
      deny: [source-identifying]
    handling: {onward_sharing: with-originator-consent, retention_days: 365}
    rate_limit: 10/hour
"""


@pytest.fixture
def small_accord() -> Accord:
    """A two-party accord with one flow GB -> ZZ, written out in this module."""
    return parse_accord(SMALL_ACCORD.encode(), source="gb-zz.yaml")
