"""Tests for kanta_guard.dicom.settings: the [dicom] policy section, its defaults and its
errors."""

from __future__ import annotations

from typing import Any

import pytest

from kanta_guard.dicom.profile import Option
from kanta_guard.dicom.settings import DicomSettings, OcrMode, SafePrivate
from kanta_guard.errors import PolicyError


def where(key: str) -> str:
    return f"policy.toml:[dicom] {key}"


def test_defaults_are_strict() -> None:
    """No option, no safe private attribute, OCR on where text is plausible, a 1 s budget,
    incomplete OCR a warning."""
    settings = DicomSettings.parse({}, where)
    assert settings == DicomSettings()
    assert settings.options == frozenset()
    assert settings.safe_private == frozenset()
    assert settings.ocr is OcrMode.ON
    assert settings.ocr_budget_s == 1.0
    assert settings.incomplete_blocks is False
    assert settings.is_dummy("ANONYMIZED") and settings.is_dummy(" anonymous ")
    assert not settings.is_dummy("Matti")


def test_full_table() -> None:
    """Every key is read."""
    settings = DicomSettings.parse(
        {
            "options": ["clean-descriptors", "retain-long-full-dates"],
            "safe_private": [{"creator": "GEMS_PARM_01 ", "tag": "(0043,xx39)"}],
            "dummies": ["XXX", "Nimetön"],
            "keep": ["AccessionNumber", "(0020,0010)"],
            "ocr": "ALL",
            "ocr_budget_s": 2,
            "ocr_max_frames": 8,
            "incomplete_blocks": True,
            "max_elements": 1000,
            "max_sequence_depth": 4,
        },
        where,
    )
    assert settings.options == {Option.CLEAN_DESCRIPTORS, Option.RETAIN_LONG_FULL_DATES}
    assert settings.safe_private == {SafePrivate("GEMS_PARM_01", 0x0043, 0x39)}
    assert settings.is_safe_private("GEMS_PARM_01", 0x00431039)
    assert settings.is_safe_private("GEMS_PARM_01  ", 0x00431139)  # another block, same element
    assert not settings.is_safe_private("GEMS_PARM_02", 0x00431039)
    assert not settings.is_safe_private("GEMS_PARM_01", 0x00431040)
    assert not settings.is_safe_private(None, 0x00431039)
    assert settings.is_dummy("nimetön") and not settings.is_dummy("ANONYMIZED")
    assert settings.keep == {0x00080050, 0x00200010}
    assert settings.ocr is OcrMode.ALL
    assert settings.ocr_budget_s == 2.0
    assert (settings.ocr_max_frames, settings.max_elements, settings.max_sequence_depth) == (
        8,
        1000,
        4,
    )
    assert settings.incomplete_blocks is True
    assert str(next(iter(settings.safe_private))) == "GEMS_PARM_01 (0043,xx39)"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"ocr_budget": 1}, "ocr_budget"),
        ({"options": ["retain-everything"]}, "options"),
        ({"options": "clean-descriptors"}, "options"),
        ({"safe_private": [{"creator": "X", "tag": "(0042,xx10)"}]}, "safe_private"),  # even
        ({"safe_private": [{"creator": "X", "tag": "(0043,1010)"}]}, "safe_private"),
        ({"safe_private": [{"creator": "", "tag": "(0043,xx10)"}]}, "safe_private"),
        ({"safe_private": [{"creator": "X"}]}, "safe_private"),
        ({"safe_private": ["X (0043,xx10)"]}, "safe_private"),
        ({"dummies": "ANON"}, "dummies"),
        ({"keep": ["NoSuchKeyword"]}, "keep"),
        ({"ocr": "sometimes"}, "ocr"),
        ({"ocr": True}, "ocr"),
        ({"ocr_budget_s": 0}, "ocr_budget_s"),
        ({"ocr_budget_s": 600}, "ocr_budget_s"),
        ({"ocr_budget_s": True}, "ocr_budget_s"),
        ({"ocr_max_frames": 0}, "ocr_max_frames"),
        ({"ocr_max_frames": 1.5}, "ocr_max_frames"),
        ({"incomplete_blocks": "yes"}, "incomplete_blocks"),
        ({"max_elements": -1}, "max_elements"),
        ({"max_sequence_depth": False}, "max_sequence_depth"),
    ],
)
def test_errors_name_the_key(table: dict[str, Any], key: str) -> None:
    """A wrong value or an unknown key stops start-up with a message naming the key."""
    with pytest.raises(PolicyError) as caught:
        DicomSettings.parse(table, where)
    assert f"[dicom] {key}" in str(caught.value)
    assert f"dicom.{key}" in str(caught.value)
