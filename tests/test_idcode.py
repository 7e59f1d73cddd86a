"""Tests for kanta_guard.idcode: token finding, classification, masking."""

from __future__ import annotations

import pytest

from kanta_guard import idcode
from kanta_guard.idcode import Kind


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        # The test codes of DVV/Kela (kanta.md): every century sign, all pass the checksum.
        ("010181-900C", Kind.TEST),
        ("030875-999Y", Kind.TEST),
        ("231069-9711", Kind.TEST),
        ("020516C903K", Kind.TEST),
        ("010594Y9032", Kind.TEST),
        ("020594X903P", Kind.TEST),
        ("030594W903B", Kind.TEST),
        ("040594V9030", Kind.TEST),
        ("050594U903M", Kind.TEST),
        ("010516B903X", Kind.TEST),
        # Real-range codes from public samples (Kela, HL7 Finland).
        ("050775-0251", Kind.REAL),
        ("160345-0277", Kind.REAL),
        ("010101-123N", Kind.REAL),
        # Lower case and Unicode dashes are the same code.
        ("010101\u2013123n", Kind.REAL),
        ("010101\u2212123N", Kind.REAL),
        ("010181 - 900C", Kind.TEST),
        # Wrong check characters, impossible dates, individual number 000/001.
        ("250810A999Y", Kind.INVALID),
        ("010190-999Y", Kind.INVALID),
        ("320181-123N", Kind.INVALID),
        ("010181-001C", Kind.INVALID),
    ],
)
def test_classify(value: str, kind: Kind) -> None:
    """Each value classifies as real, test or invalid, whatever its case or dash."""
    assert idcode.classify(value) is kind


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Potilas 010181-900C tuli", ["010181-900C"]),
        ("hetu:010101-123n.", ["010101-123n"]),
        ("010101 -123N", ["010101 -123N"]),
        ("010101- 123N", ["010101- 123N"]),
        ("010101-123 N", ["010101-123 N"]),
        ("(010594Y9032)", ["010594Y9032"]),
        ("HETU010181-900Cx", ["010181-900C"]),
        # Not codes: OIDs, timestamps, longer numbers.
        ("1.2.246.10.1234567.14.2026.1129", []),
        ("20160803092422", []),
        ("9010101-123N", []),
        ("010101-123N5", []),
    ],
)
def test_token(text: str, found: list[str]) -> None:
    """TOKEN finds HETU-shaped tokens as typed, and not inside longer numbers or OIDs."""
    assert [m.group(0) for m in idcode.TOKEN.finditer(text)] == found


def test_mask_hides_every_digit() -> None:
    """A mask keeps only the shape: no digit and no check character survive."""
    masked = idcode.mask("050775-0251")
    assert masked == "******-****"
    assert (
        idcode.mask_text("id 050775-0251 and 160345\u20130277") == "id ******-**** and ******-****"
    )


@pytest.mark.parametrize(
    ("value", "number"),
    [("250810A999Y", 999), ("010101-123N", 123), ("010101-12", None), ("abc", None)],
)
def test_individual_number(value: str, number: int | None) -> None:
    """The individual number is read even from an invalid code."""
    assert idcode.individual_number(value) == number
