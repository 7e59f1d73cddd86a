"""Tests for kanta_guard.detectors.registry: test codes judged by pool and case, in fields and
in the screen."""

from __future__ import annotations

from functools import cache

import pytest
from helpers import FIXTURES, code

from kanta_guard.detectors.registry import RegistryCodeDetector
from kanta_guard.model import HETU_OID, Context, Field, Role
from kanta_guard.policy import TestingMode as Mode
from kanta_guard.registry import Registry, load_registry

MAIJA = "010181-900C"  # independent
ANNA = "020516C903K"  # joint TC-101, TC-102
ARTO = "231069-9711"  # joint TC-101
UNKNOWN = code("150390", "-", 950)
INDEPENDENT = Mode()
TC101 = Mode(True, "TC-101")
TC102 = Mode(True, "TC-102")


@cache
def registry() -> Registry:
    return load_registry(FIXTURES / "personal" / "registry.toml")


def rule_of(test_code: str, mode: Mode) -> str | None:
    judged = RegistryCodeDetector(registry(), mode).verdict(test_code)
    return judged[0] if judged else None


@pytest.mark.parametrize(
    ("test_code", "mode", "rule"),
    [
        (MAIJA, INDEPENDENT, None),
        (MAIJA, TC101, "registry.wrong_pool"),
        (ANNA, INDEPENDENT, "registry.wrong_pool"),
        (ANNA, TC101, None),
        (ANNA, TC102, None),
        (ARTO, TC101, None),
        (ARTO, TC102, "registry.wrong_case"),
        (UNKNOWN, INDEPENDENT, "registry.unknown_code"),
        (UNKNOWN, TC101, "registry.unknown_code"),
    ],
)
def test_verdicts(test_code: str, mode: Mode, rule: str | None) -> None:
    """Each code in each mode: allowed, from the other pool, outside its cases, or unknown."""
    assert rule_of(test_code, mode) == rule


def test_explanations_name_pool_and_cases() -> None:
    """The explanation says which pool and cases the code belongs to."""
    detector = RegistryCodeDetector(registry(), TC102)
    assert "TC-101" in (detector.verdict(ARTO) or ("", ""))[1]
    assert "joint" in (RegistryCodeDetector(registry(), INDEPENDENT).verdict(ANNA) or ("", ""))[1]


@pytest.mark.parametrize(
    ("value", "identifier"),
    [
        (ANNA, True),
        (ANNA.lower(), True),
        (f"Potilas {ANNA} ja {MAIJA}", False),
        (f"hetu {ANNA.replace('C', 'c')}", False),
        (f"tunnus {ANNA[:6]} {ANNA[6:]}", False),  # split by a space
    ],
)
def test_detect_in_fields(value: str, identifier: bool) -> None:
    """Free text and identifier fields are read in the written forms codes take; the evidence
    is the normalised test code; a code allowed in the mode is not reported."""
    field = Field(
        value,
        Context(Role.PATIENT, "id", HETU_OID if identifier else None),
        "x",
        identifier=identifier,
    )
    hits = list(RegistryCodeDetector(registry(), INDEPENDENT).detect(field))
    assert [(h.rule, h.masked) for h in hits] == [("registry.wrong_pool", ANNA)]


@pytest.mark.parametrize("mode", [INDEPENDENT, TC101, TC102])
def test_screen_names_every_reported_code(mode: Mode) -> None:
    """The screen's needles cover every code detect reports, and none it would not."""
    detector = RegistryCodeDetector(registry(), mode)
    data = f"<a>{MAIJA}</a><b>{ANNA}</b><c>{ARTO}</c><d>{UNKNOWN}</d>".encode()
    needles = detector.screen(data)
    assert needles is not None
    reported = {c for c in (MAIJA, ANNA, ARTO, UNKNOWN) if rule_of(c, mode) is not None}
    assert {n.decode() for n in needles} == reported
