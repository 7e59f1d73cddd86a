"""The policy's ``[dicom]`` settings: safe private attributes, accepted dummies, the profile options
applied, OCR mode and budget, and the reading bounds.

Parsed by :meth:`DicomSettings.parse` from the section's table (the policy module calls it and
passes a function that names the file and line of a key); anything wrong is a
:class:`~kanta_guard.errors.PolicyError` naming the key. The defaults are the strict ones: the
Basic Profile without options, no private attribute safe, OCR on for the image types where
burned-in text is plausible, incomplete OCR a warning.

::

    [dicom]
    # Annex E options the de-identification applied (PS3.15 E.3): what they keep is left to the
    # text rules. retain-safe-private is implied by safe_private.
    options = ["clean-descriptors", "retain-long-full-dates"]
    # Private attributes safe to keep (PS3.15 E.3.10): the creator and (gggg,xxee).
    safe_private = [{ creator = "GEMS_PARM_01", tag = "(0043,xx39)" }]
    # Values accepted in identifying attributes (compared case-insensitively).
    dummies = ["ANONYMIZED", "ANONYMOUS", "REMOVED"]
    # Attributes whose values the policy accepts (keywords or (gggg,eeee)).
    keep = ["AccessionNumber"]
    ocr = "on"              # on | all | off
    ocr_budget_s = 1.0      # seconds of OCR per image (frame or overlay)
    ocr_max_frames = 4      # frames of a multi-frame image read by OCR (the rest: incomplete)
    incomplete_blocks = false
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydicom.datadict import tag_for_keyword

from ..errors import PolicyError
from .profile import Option, parse_tag

__all__ = ["DEFAULT_DUMMIES", "DicomSettings", "OcrMode", "SafePrivate"]

#: Values accepted in identifying attributes by default: they name nobody.
DEFAULT_DUMMIES = frozenset({"anonymized", "anonymised", "anonymous", "removed", "^"})


class OcrMode(StrEnum):
    """Which images OCR reads: those where burned-in text is plausible (``on``), every image
    (``all``: text found where none is expected is then a warning), or none (``off``)."""

    ON = "on"
    ALL = "all"
    OFF = "off"


@dataclass(frozen=True, slots=True, order=True)
class SafePrivate:
    """A private attribute the policy holds safe (PS3.15 E.3.10): its creator (Private Creator
    value, trailing spaces insignificant) and its tag within the creator's block: odd ``group``
    and the element's low byte (``(0043,xx39)`` is group 0x0043, element 0x39)."""

    creator: str
    group: int
    element: int

    def __str__(self) -> str:
        return f"{self.creator} ({self.group:04X},xx{self.element:02X})"


_PRIVATE_TAG = re.compile(r"\(?([0-9A-Fa-f]{4}),[xX]{2}([0-9A-Fa-f]{2})\)?")
_KEYS = frozenset(
    {
        "options",
        "safe_private",
        "dummies",
        "keep",
        "ocr",
        "ocr_budget_s",
        "ocr_max_frames",
        "incomplete_blocks",
        "max_elements",
        "max_sequence_depth",
    }
)


@dataclass(frozen=True, slots=True)
class DicomSettings:
    """How DICOM content is judged (see the module docstring)."""

    #: Private attributes on the policy's safe list (the Retain Safe Private option).
    safe_private: frozenset[SafePrivate] = frozenset()
    #: Dummy values accepted in identifying attributes, case-folded.
    dummies: frozenset[str] = DEFAULT_DUMMIES
    #: Annex E options the policy's de-identification applies.
    options: frozenset[Option] = frozenset()
    #: Tags of attributes whose values the policy accepts (the text rules still read them).
    keep: frozenset[int] = frozenset()
    ocr: OcrMode = OcrMode.ON
    #: Seconds of OCR per image (a frame or an overlay plane).
    ocr_budget_s: float = 1.0
    #: Frames of one multi-frame image read by OCR; the rest are reported as not read.
    ocr_max_frames: int = 4
    #: True: OCR that could not read an image whole blocks (as unscannable); False: it warns
    #: (rule ``dicom.ocr_incomplete``, whose action the policy's [rules] may raise).
    incomplete_blocks: bool = False
    #: Bounds on one object: data elements (all levels) and sequence nesting.
    max_elements: int = 500_000
    max_sequence_depth: int = 32

    def is_dummy(self, value: str) -> bool:
        """True if ``value`` (stripped, case-folded) is one of the accepted dummies."""
        return value.strip().casefold() in self.dummies

    def is_safe_private(self, creator: str | None, tag: int) -> bool:
        """True if the private attribute ``tag`` of ``creator``'s block is on the safe list."""
        if creator is None or not self.safe_private:
            return False
        return SafePrivate(creator.rstrip(" "), tag >> 16, tag & 0xFF) in self.safe_private

    @staticmethod
    def parse(table: Mapping[str, Any], where: Callable[[str], str]) -> DicomSettings:
        """Settings from the ``[dicom]`` table (keys left out keep their defaults);
        PolicyError naming the key (``where(key)`` locates it) for anything wrong."""
        for key in table:
            if key not in _KEYS:
                raise PolicyError(f"{where(key)}: unknown key dicom.{key}")
        base = DicomSettings()
        return DicomSettings(
            safe_private=_safe_private(table.get("safe_private", []), where),
            dummies=frozenset(
                v.strip().casefold()
                for v in _strings(table, "dummies", sorted(base.dummies), where)
            ),
            options=_options(_strings(table, "options", [], where), where),
            keep=_tags(_strings(table, "keep", [], where), where),
            ocr=_ocr(table.get("ocr", str(base.ocr)), where),
            ocr_budget_s=_seconds(table.get("ocr_budget_s", base.ocr_budget_s), where),
            ocr_max_frames=_count(table, "ocr_max_frames", base.ocr_max_frames, where),
            incomplete_blocks=_bool(table, "incomplete_blocks", base.incomplete_blocks, where),
            max_elements=_count(table, "max_elements", base.max_elements, where),
            max_sequence_depth=_count(table, "max_sequence_depth", base.max_sequence_depth, where),
        )


def _strings(
    table: Mapping[str, Any], key: str, default: list[str], where: Callable[[str], str]
) -> list[str]:
    value = table.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where(key)}: dicom.{key} must be a list of strings")
    return value


def _safe_private(value: object, where: Callable[[str], str]) -> frozenset[SafePrivate]:
    wrong = (
        f"{where('safe_private')}: dicom.safe_private must be a list of tables "
        '{ creator = "…", tag = "(gggg,xxee)" } with an odd group'
    )
    if not isinstance(value, list):
        raise PolicyError(wrong)
    found: set[SafePrivate] = set()
    for entry in value:
        if not isinstance(entry, Mapping) or set(entry) != {"creator", "tag"}:
            raise PolicyError(wrong)
        creator, tag = entry["creator"], entry["tag"]
        if not isinstance(creator, str) or not creator.strip() or not isinstance(tag, str):
            raise PolicyError(wrong)
        match = _PRIVATE_TAG.fullmatch(tag.strip())
        if match is None or not int(match.group(1), 16) & 1:
            raise PolicyError(wrong)
        found.add(
            SafePrivate(creator.rstrip(" "), int(match.group(1), 16), int(match.group(2), 16))
        )
    return frozenset(found)


def _options(values: list[str], where: Callable[[str], str]) -> frozenset[Option]:
    known = {str(o) for o in Option}
    for value in values:
        if value not in known:
            raise PolicyError(
                f"{where('options')}: dicom.options: unknown option {value!r} "
                f"(one of {', '.join(sorted(known))})"
            )
    return frozenset(Option(v) for v in values)


def _tags(values: list[str], where: Callable[[str], str]) -> frozenset[int]:
    tags: set[int] = set()
    for value in values:
        tag = tag_for_keyword(value.strip())
        if tag is None:
            try:
                tag = parse_tag(value)
            except ValueError:
                raise PolicyError(
                    f"{where('keep')}: dicom.keep: {value!r} is neither an attribute keyword "
                    "nor a tag (gggg,eeee)"
                ) from None
        tags.add(tag)
    return frozenset(tags)


def _ocr(value: object, where: Callable[[str], str]) -> OcrMode:
    if not isinstance(value, str) or value.strip().lower() not in {str(m) for m in OcrMode}:
        raise PolicyError(f'{where("ocr")}: dicom.ocr must be "on", "all" or "off"')
    return OcrMode(value.strip().lower())


def _seconds(value: object, where: Callable[[str], str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 60:
        raise PolicyError(
            f"{where('ocr_budget_s')}: dicom.ocr_budget_s must be a number of seconds "
            "above 0, at most 60"
        )
    return float(value)


def _count(table: Mapping[str, Any], key: str, default: int, where: Callable[[str], str]) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{where(key)}: dicom.{key} must be a positive integer")
    return value


def _bool(table: Mapping[str, Any], key: str, default: bool, where: Callable[[str], str]) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise PolicyError(f"{where(key)}: dicom.{key} must be true or false")
    return value
