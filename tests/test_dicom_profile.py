"""Tests for kanta_guard.dicom.profile: the vendored Annex E table, looked up by tag, with its
options."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kanta_guard.dicom.profile import Option, load_profile, parse_tag

DATA = Path(__file__).resolve().parent.parent / "kanta_guard" / "data" / "dicom"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "dicom"


def test_table_is_whole() -> None:
    """All 621 rows of Table E.1-1 (2024e) are read, repeating groups and private ones apart."""
    profile = load_profile()
    assert len(profile) == 621
    assert profile.private.action == "X"
    assert profile.private.options == ((Option.RETAIN_SAFE_PRIVATE, "C"),)


def test_vendored_copy_is_the_source() -> None:
    """The package's copy is the shared data file unchanged, and SOURCE.md names its hash."""
    vendored = (DATA / "confidentiality_profile_attributes.json").read_bytes()
    digest = hashlib.sha256(vendored).hexdigest()
    assert digest in (DATA / "SOURCE.md").read_text("utf-8")
    if SHARED.is_dir():
        assert (SHARED / "confidentiality_profile_attributes.json").read_bytes() == vendored


@pytest.mark.parametrize(
    ("tag", "action", "removed"),
    [
        (0x00100010, "Z", False),  # PatientName
        (0x00100020, "Z/D", False),  # PatientID
        (0x00101040, "X", True),  # PatientAddress
        (0x00102154, "X", True),  # PatientTelephoneNumbers
        (0x00101002, "X", True),  # OtherPatientIDsSequence
        (0x00080090, "Z", False),  # ReferringPhysicianName
        (0x00081070, "X/Z/D", False),  # OperatorsName
        (0x00080081, "X", True),  # InstitutionAddress
        (0x0040A730, "D", False),  # ContentSequence
        (0x00081140, "X/Z/U*", False),  # ReferencedImageSequence
        (0x60003000, "X", True),  # OverlayData, group 6000
        (0x601E3000, "X", True),  # OverlayData, the last overlay group
        (0x60024000, "X", True),  # OverlayComments
        (0x50001000, "X", True),  # a curve (retired)
    ],
)
def test_lookup(tag: int, action: str, removed: bool) -> None:
    """Attributes, repeating groups included, are found with their action."""
    entry = load_profile().lookup(tag)
    assert entry is not None
    assert entry.action == action
    assert entry.removed is removed


@pytest.mark.parametrize(
    "tag",
    [
        0x00080060,  # Modality: kept
        0x00280301,  # BurnedInAnnotation: kept
        0x60013000,  # odd group: private, not an overlay
        0x60203000,  # past the overlay groups
        0x60003001,  # not Overlay Data
    ],
)
def test_kept_attributes_are_not_found(tag: int) -> None:
    """What the profile keeps (or a private tag) has no row."""
    assert load_profile().lookup(tag) is None


def test_uids_are_not_judged() -> None:
    """A UID the profile replaces is no finding: ``judged`` skips it."""
    profile = load_profile()
    sop_instance = 0x00080018
    entry = profile.lookup(sop_instance)
    assert entry is not None and entry.uid
    assert profile.judged(sop_instance, frozenset()) is None


@pytest.mark.parametrize(
    ("tag", "option"),
    [
        (0x00081030, Option.CLEAN_DESCRIPTORS),  # StudyDescription: X, C
        (0x00081010, Option.RETAIN_DEVICE_IDENTITY),  # StationName: X/Z/D, K
        (0x00080080, Option.RETAIN_INSTITUTION_IDENTITY),  # InstitutionName
        (0x00101010, Option.RETAIN_PATIENT_CHARACTERISTICS),  # PatientAge
        (0x60003000, Option.CLEAN_GRAPHICS),  # OverlayData
    ],
)
def test_options_keep(tag: int, option: Option) -> None:
    """An option that keeps or cleans an attribute takes it out of the rule; others do not."""
    profile = load_profile()
    assert profile.judged(tag, frozenset()) is not None
    assert profile.judged(tag, frozenset({option})) is None
    other = next(o for o in Option if o is not option and o is not Option.RETAIN_UIDS)
    if not profile.lookup(tag).kept_by(frozenset({other})):  # type: ignore[union-attr]
        assert profile.judged(tag, frozenset({other})) is not None


def test_every_row_parses() -> None:
    """Every row's tag is a tag (or a mask), every option column an option."""
    for entry in load_profile().entries:
        if "X" in entry.tag[1:5] or entry.tag.startswith("(GGGG"):
            continue
        assert 0 <= parse_tag(entry.tag) <= 0xFFFFFFFF
        assert entry.actions <= {"X", "Z", "D", "U"}


@pytest.mark.parametrize("text", ["(0010,0010)", "0010,0010", "00100010", " (0010,0010) "])
def test_parse_tag(text: str) -> None:
    """Tags are read as written in the table, with or without brackets and comma."""
    assert parse_tag(text) == 0x00100010


@pytest.mark.parametrize("text", ["(0010,001)", "PatientName", "(0010,00100)"])
def test_parse_tag_refuses(text: str) -> None:
    """Anything else is a ValueError."""
    with pytest.raises(ValueError):
        parse_tag(text)
