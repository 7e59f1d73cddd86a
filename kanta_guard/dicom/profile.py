"""The identifying attributes of DICOM PS3.15 Annex E (Basic Application Level Confidentiality
Profile), shipped as data: what the profile removes, zeroes or replaces, and what its options
keep.

Table E.1-1 gives each attribute an action code: ``X`` remove; ``Z`` replace with a zero-length
value (or a dummy); ``D`` replace with a dummy value; ``U`` replace the UID; combinations
(``X/Z``, ``X/D``, ``X/Z/D``, ``Z/D``, ``X/Z/U*``) where the stricter one applies unless the
attribute's type in the IOD requires the other. Attributes not in the table are kept. The option
columns (PS3.15 E.3) say which attributes an option keeps (``K``) or cleans (``C``, meaning:
kept, with identifying text removed from it). The table is vendored from innolitics/dicom-standard
(MIT; PS3.15 2024e): ``kanta_guard/data/dicom/SOURCE.md``.

What the guard makes of it (``kanta_guard.detectors.dicom``): an attribute the profile removes,
zeroes or replaces, present with a value, is a finding unless the value is a test identity's or
a dummy; UIDs (``U``) are not findings (their replacement cannot be told from the original); an
attribute an option of the policy keeps or cleans is left to the text rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from types import MappingProxyType

__all__ = ["Option", "Profile", "ProfileEntry", "load_profile", "parse_tag"]


class Option(StrEnum):
    """The profile's options (PS3.15 E.3; CID 7050 names them in De-identification Method Code
    Sequence), as the policy names them."""

    RETAIN_SAFE_PRIVATE = "retain-safe-private"  # E.3.10, code 113111
    RETAIN_UIDS = "retain-uids"  # E.3.9, 113110
    RETAIN_DEVICE_IDENTITY = "retain-device-identity"  # E.3.8, 113109
    RETAIN_INSTITUTION_IDENTITY = "retain-institution-identity"  # E.3.12, 113112
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"  # E.3.7, 113108
    RETAIN_LONG_FULL_DATES = "retain-long-full-dates"  # E.3.6, 113106
    RETAIN_LONG_MODIFIED_DATES = "retain-long-modified-dates"  # E.3.6, 113107
    CLEAN_DESCRIPTORS = "clean-descriptors"  # E.3.5, 113105
    CLEAN_STRUCTURED_CONTENT = "clean-structured-content"  # E.3.4, 113104
    CLEAN_GRAPHICS = "clean-graphics"  # E.3.3, 113103


#: The table's option columns.
_COLUMNS = MappingProxyType(
    {
        "rtnSafePrivOpt": Option.RETAIN_SAFE_PRIVATE,
        "rtnUIDsOpt": Option.RETAIN_UIDS,
        "rtnDevIdOpt": Option.RETAIN_DEVICE_IDENTITY,
        "rtnInstIdOpt": Option.RETAIN_INSTITUTION_IDENTITY,
        "rtnPatCharsOpt": Option.RETAIN_PATIENT_CHARACTERISTICS,
        "rtnLongFullDatesOpt": Option.RETAIN_LONG_FULL_DATES,
        "rtnLongModifDatesOpt": Option.RETAIN_LONG_MODIFIED_DATES,
        "cleanDescOpt": Option.CLEAN_DESCRIPTORS,
        "cleanStructContOpt": Option.CLEAN_STRUCTURED_CONTENT,
        "cleanGraphOpt": Option.CLEAN_GRAPHICS,
    }
)
_ACTIONS = frozenset({"X", "Z", "D", "U"})


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """One row of Table E.1-1: the attribute, its basic-profile action and its options."""

    tag: str
    name: str
    #: The action code as the table writes it (``X``, ``Z``, ``D``, ``U``, ``X/Z/D``, ``X/Z/U*``).
    action: str
    #: (option, ``K`` or ``C``) for each option column that names the attribute.
    options: tuple[tuple[Option, str], ...] = ()
    #: The action codes (``X/Z/U*`` → X, Z, U).
    actions: frozenset[str] = field(default=frozenset(), compare=False)
    #: True if the profile removes the attribute outright (``X`` alone): no value conforms.
    removed: bool = field(default=False, compare=False)
    #: True for a UID the profile replaces (``U`` alone): not a finding.
    uid: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        codes = frozenset(code.rstrip("*") for code in self.action.split("/"))
        object.__setattr__(self, "actions", codes)
        object.__setattr__(self, "removed", codes == {"X"})
        object.__setattr__(self, "uid", codes == {"U"})

    def kept_by(self, options: frozenset[Option]) -> bool:
        """True if one of ``options`` keeps or cleans the attribute."""
        return any(option in options for option, _ in self.options)


def parse_tag(text: str) -> int:
    """``(0010,0010)`` (or ``0010,0010``, ``00100010``) → ``0x00100010``; ValueError otherwise.

    >>> hex(parse_tag("(0008,0050)"))
    '0x80050'
    """
    bare = text.strip().removeprefix("(").removesuffix(")").replace(",", "")
    if len(bare) != 8:
        raise ValueError("a tag is written (gggg,eeee)")
    return int(bare, 16)


class Profile:
    """Table E.1-1, looked up by tag (repeating groups and private attributes included)."""

    __slots__ = ("_by_tag", "curves", "entries", "overlay_comments", "overlay_data", "private")

    def __init__(self, entries: tuple[ProfileEntry, ...]) -> None:
        self.entries = entries
        by_tag: dict[int, ProfileEntry] = {}
        curves = overlay_data = overlay_comments = private = None
        for entry in entries:
            if entry.tag == "(50XX,XXXX)":
                curves = entry
            elif entry.tag == "(60XX,3000)":
                overlay_data = entry
            elif entry.tag == "(60XX,4000)":
                overlay_comments = entry
            elif entry.tag.startswith("(GGGG,EEEE)"):
                private = entry
            else:
                by_tag[parse_tag(entry.tag)] = entry
        if curves is None or overlay_data is None or overlay_comments is None or private is None:
            raise ValueError("the profile table lacks its repeating-group or private rows")
        self._by_tag = by_tag
        self.curves: ProfileEntry = curves
        self.overlay_data: ProfileEntry = overlay_data
        self.overlay_comments: ProfileEntry = overlay_comments
        #: The row of every private attribute (``X``; kept by the Retain Safe Private option).
        self.private: ProfileEntry = private

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, tag: int) -> ProfileEntry | None:
        """The row of a standard attribute (repeating groups by their mask), None if the profile
        keeps it. Private attributes (odd groups) are :attr:`private`'s, not looked up here."""
        found = self._by_tag.get(tag)
        if found is not None:
            return found
        group, element = tag >> 16, tag & 0xFFFF
        if 0x5000 <= group <= 0x501E and not group & 1:
            return self.curves
        if 0x6000 <= group <= 0x601E and not group & 1:
            if element == 0x3000:
                return self.overlay_data
            if element == 0x4000:
                return self.overlay_comments
        return None

    def judged(self, tag: int, options: frozenset[Option]) -> ProfileEntry | None:
        """The row of an attribute whose value the identifying-attribute rule judges under these
        options: the profile removes, zeroes or replaces it (not a UID), and no option keeps it."""
        entry = self.lookup(tag)
        if entry is None or entry.uid or (options and entry.kept_by(options)):
            return None
        return entry


def _entry(raw: dict[str, str]) -> ProfileEntry:
    action = raw["basicProfile"]
    codes = {code.rstrip("*") for code in action.split("/")}
    if not codes <= _ACTIONS:
        raise ValueError(f"unknown action code {action!r} in the profile table")
    options = tuple((option, raw[column]) for column, option in _COLUMNS.items() if raw.get(column))
    return ProfileEntry(raw["tag"], raw["name"], action, options)


@lru_cache(maxsize=1)
def load_profile() -> Profile:
    """The vendored Table E.1-1 (read once)."""
    text = (
        resources.files("kanta_guard")
        .joinpath("data/dicom/confidentiality_profile_attributes.json")
        .read_text("utf-8")
    )
    return Profile(tuple(_entry(raw) for raw in json.loads(text)))
