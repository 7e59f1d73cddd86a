"""What the DICOM parser tells the DICOM detector: the attributes the profile and the private-tag
rule judge, the image's declarations, and what OCR read, carried by a marker field.

Value fields (the text of every element) go to every detector like any document's fields; these
facts go to :class:`~kanta_guard.detectors.dicom.DicomDetector` alone, on one
:class:`DicomField` per object, whose own value is empty (no other detector reads anything in
it). They hold raw values: like a :class:`~kanta_guard.model.Hit`, they never leave the
pipeline, and their reprs show none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from ..model import Context, Field, Role

__all__ = ["MARKER_CONTEXT", "Attribute", "DicomFacts", "DicomField", "OcrReading", "marker"]

#: The context of a marker field.
MARKER_CONTEXT = Context(Role.DOCUMENT, "DICOM", "dicom")


class Attribute(NamedTuple):
    """An attribute of the object the identifying-attribute or private-attribute rule judges:
    one the profile (Annex E) removes, zeroes or replaces, or a private data element. (A named
    tuple: an object holds hundreds, and they are built on every scan.)"""

    tag: int
    keyword: str
    vr: str
    where: str
    role: Role
    #: The text values (split at ``\\`` where the VR is multi-valued); () for binary values.
    values: tuple[str, ...] = ()
    #: Bytes of the value (items, for a sequence): 0 is empty.
    size: int = 0
    #: True for a private data element (an odd group).
    private: bool = False
    #: The Private Creator of its block (None: the block has none).
    creator: str | None = None

    def __repr__(self) -> str:  # (values and creator are the document's: not shown)
        return f"Attribute({self.where!r}, vr={self.vr!r}, size={self.size})"

    @property
    def empty(self) -> bool:
        """True if the value is empty: no bytes, or text of padding and PN separators only."""
        if not self.size:
            return True
        if self.vr == "SQ" or not self.values:
            return False
        return not any(v.strip(" ^=") for v in self.values)


@dataclass(frozen=True, slots=True)
class DicomFacts:
    """What one DICOM object (a Part 10 file, a data set, one object of a DICOM JSON or XML
    document) declares about itself, and the attributes the rules judge."""

    where: str
    #: The location prefix of the object's attributes ("" at the top of a payload).
    prefix: str = ""
    sop_class: str = ""
    modality: str = ""
    conversion_type: str = ""
    #: Burned In Annotation (0028,0301), None if absent.
    burned_in: str | None = None
    #: Patient Identity Removed (0012,0062), None if absent.
    identity_removed: str | None = None
    #: De-identification Method (0012,0063) values.
    methods: tuple[str, ...] = field(default=(), repr=False)
    #: Items of De-identification Method Code Sequence (0012,0064).
    method_codes: int = 0
    #: True if the object holds an image (Pixel Data, Float or Double Float Pixel Data).
    image: bool = False
    attributes: tuple[Attribute, ...] = ()


@dataclass(frozen=True, slots=True)
class OcrReading:
    """What OCR made of one image (a frame or an overlay plane), or why it could not read it."""

    where: str
    text: str = field(default="", repr=False)
    complete: bool = True
    engine: str = ""
    seconds: float = 0.0
    #: True where text in the image is plausible (the image type), so text found is expected.
    expected: bool = True
    #: Why OCR could not read it whole ("" when complete).
    note: str = ""


@dataclass(frozen=True, slots=True)
class DicomField(Field):
    """A marker field: empty value, with the facts of one object or the OCR readings of it."""

    facts: DicomFacts | None = None
    readings: tuple[OcrReading, ...] = ()


def marker(
    where: str | Callable[[], str],
    facts: DicomFacts | None = None,
    readings: tuple[OcrReading, ...] = (),
) -> DicomField:
    """A marker field at ``where``."""
    return DicomField("", MARKER_CONTEXT, where, facts=facts, readings=readings)
