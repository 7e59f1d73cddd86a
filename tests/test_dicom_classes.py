"""Tests for kanta_guard.dicom.classes: which image types carry burned-in text."""

from __future__ import annotations

import pytest

from kanta_guard.dicom.classes import burned_in_prone, text_expected


@pytest.mark.parametrize(
    ("sop_class", "modality", "conversion", "prone", "expected"),
    [
        ("1.2.840.10008.5.1.4.1.1.7", "OT", "WSD", True, True),  # a screenshot
        ("1.2.840.10008.5.1.4.1.1.7.4", "OT", "", True, True),  # multi-frame true colour SC
        ("1.2.840.10008.5.1.4.1.1.6.1", "US", "", True, True),
        ("1.2.840.10008.5.1.4.1.1.3.1", "US", "", True, True),  # retired US multi-frame
        ("", "DOC", "SD", True, True),  # a scanned document
        ("1.2.840.10008.5.1.4.1.1.12.1", "XA", "", False, True),
        ("1.2.840.10008.5.1.4.1.1.77.1.1", "ES", "", False, True),  # endoscopy
        ("1.2.840.10008.5.1.4.1.1.2", "CT", "", False, False),
        ("1.2.840.10008.5.1.4.1.1.4", "MR", "", False, False),
        ("1.2.840.10008.5.1.4.1.1.30", "CT", "", False, False),  # (not the retired 1.3 prefix)
    ],
)
def test_image_types(
    sop_class: str, modality: str, conversion: str, prone: bool, expected: bool
) -> None:
    """Secondary capture, ultrasound and documents are prone to burned-in text; angiography
    and visible light are where text is plausible; CT and MR carry none."""
    assert burned_in_prone(sop_class, modality, conversion) is prone
    assert text_expected(sop_class, modality, conversion) is expected
