"""DICOM parser: Part 10 files and bare data sets (``application/dicom``, with a
``transfer-syntax`` parameter as DIMSE carries them), and the DICOM JSON and XML models
(``application/dicom+json``, PS3.18 F.2; ``application/dicom+xml``, PS3.19 A.1).

Every data element at every depth is read (``kanta_guard.dicom.read``: strictly, within the
policy's bounds), private ones included, and yields:

* a :class:`~kanta_guard.model.Field` per string value: every string VR (AE AS CS DA DS DT IS
  LO LT PN SH ST TM UC UI UR UT), decoded as the data set's Specific Character Set says (an
  unknown term or bytes that do not decode are unscannable), and the bytes of UN values and of
  private OB values read as Latin-1 text (an implicit-VR private LO is UN to a reader that
  does not know its creator). Identity codes hide in any of them. Context: the role of the
  attribute (``kanta_guard.dicom.roles``), ``element`` its keyword (``(gggg,eeee)`` for private
  and unknown tags), ``system`` "dicom", except PatientID and OtherPatientIDs whose issuer
  (IssuerOfPatientID or its qualifiers' Universal Entity ID) is the HETU OID: those are
  identifiers under it, judged as structured identity fields;
* a :class:`~kanta_guard.model.Party` per person: the patient (PatientName, OtherPatientNames,
  PatientBirthName, PatientID, PatientAddress, PatientTelephoneNumbers,
  PatientTelecomInformation), the referring physician (with his address and phones), each value
  of every other PN attribute; a PN value's three component groups (alphabetic, ideographic,
  phonetic) each a name, ``^`` splitting family, given, middle, prefix and suffix; a value the
  policy lists as a dummy is nobody;
* a nested payload per encapsulated document (EncapsulatedDocument under its
  MIMETypeOfEncapsulatedDocument: a PDF or a CDA inside DICOM), and per image OCR read
  (``text/plain; charset=utf-8``, located ``…(7FE0,0010)PixelData[frame]!ocr`` or
  ``…(60xx,3000)OverlayData!ocr``), when the settings call for OCR;
* marker fields (:mod:`kanta_guard.dicom.facts`) for the DICOM detector: the attributes of the
  confidentiality profile and the private data elements present, the image's declarations
  (SOP class, modality, Burned In Annotation, Patient Identity Removed, De-identification
  Method), and what OCR read or could not read.

Locations are DICOM paths: ``(0010,0010)PatientName``, ``(0040,A730)[2]/(0040,A160)TextValue``
(items counted from 1), after the payload's location and a colon.

OCR (``kanta_guard.imaging``: frames and overlays to 8-bit images, then an engine) reads the
pixel data of the image types where text is plausible (``ocr = "on"``), of every image
(``"all"``), or of none; overlay planes with set bits whenever it is not off. Compressed
transfer syntaxes are decoded by pydicom's pylibjpeg plugins; pixel data that does not decode
is unscannable. Without an installed OCR engine, an image that should be read is reported as not
read (``dicom.ocr_incomplete``), never as clean. Pixel data of a DICOM JSON or XML document in
a bulk data part (``BulkDataURI``, STOW-RS) is read from that part where the scan knows the
request's parts (``ScanState.bulk_parts``: Content-Location or Content-ID to the part's bytes
and content type; the part's media type or its ``transfer-syntax`` names the encoding); pixels
that should be read but whose part the scan cannot find are unscannable.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, cast

import pydicom
from lxml import etree
from pydicom.encaps import encapsulate

from .. import idcode
from ..dicom import classes
from ..dicom.facts import Attribute, DicomFacts, OcrReading, marker
from ..dicom.names import person_name
from ..dicom.profile import Profile, load_profile
from ..dicom.read import (
    PIXEL_DATA,
    SINGLE_VALUED,
    STRING_VRS,
    DataSet,
    Element,
    ReadLimits,
    decode,
    dictionary_vr,
    encodings_of,
    is_part10,
    keyword,
    read,
    to_pydicom,
)
from ..dicom.roles import FREE_TEXT_VRS, PERSON_GROUPS, ROLES
from ..dicom.settings import DicomSettings, OcrMode
from ..errors import UnscannableError
from ..mediatype import MediaType, parse_media_type
from ..model import (
    HETU_OID,
    Address,
    CertificateItem,
    Context,
    Field,
    Party,
    PartyKind,
    Payload,
    PersonName,
    Role,
    Telecom,
)
from .base import Item, ScanState, keep, nested, wanted_texts
from .certificate import pem_items
from .jose import jose_nested

__all__ = [
    "DICOM",
    "DICOM_JSON",
    "DICOM_XML",
    "DicomParser",
    "ImageTextLike",
    "OcrEngine",
    "installed_engine",
]

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"
_TYPES = frozenset({DICOM, DICOM_JSON, DICOM_XML})
_FORM = "application/x-www-form-urlencoded"

# Tags the parser reads for what they declare.
_CHARSET = 0x00080005
_SOP_CLASS = 0x00080016
_MODALITY = 0x00080060
_CONVERSION_TYPE = 0x00080064
_ISSUER = 0x00100021
_ISSUER_QUALIFIERS = 0x00100024
_UNIVERSAL_ENTITY_ID = 0x00400032
_IDENTITY_REMOVED = 0x00120062
_METHOD = 0x00120063
_METHOD_CODES = 0x00120064
_NUMBER_OF_FRAMES = 0x00280008
_BURNED_IN = 0x00280301
_DOCUMENT = 0x00420011
_DOCUMENT_MIME = 0x00420012
_DOCUMENT_LENGTH = 0x00420015
_PIXEL_TAGS = frozenset({PIXEL_DATA, 0x7FE00008, 0x7FE00009})
_SIGNER_CERTIFICATE = 0x04000115
_GRAPHIC_ANNOTATIONS = 0x00700001
_GRAPHIC_OBJECTS = 0x00700009
_SIGNER = Context(Role.MESSAGE, "CertificateOfSigner", "dicom")
#: Issuers of Patient ID that say the ID is a Finnish identity code.
_HETU_ISSUERS = frozenset({HETU_OID, "urn:oid:" + HETU_OID, "hetu"})


class ImageTextLike(Protocol):
    """What OCR read in one image (``kanta_guard.imaging.ImageText``)."""

    @property
    def text(self) -> str: ...
    @property
    def complete(self) -> bool: ...
    @property
    def engine(self) -> str: ...
    @property
    def seconds(self) -> float: ...


class OcrEngine(Protocol):
    """The imaging API (``kanta_guard.imaging``): frames and overlays of a pydicom data set as
    8-bit images, and the text an OCR engine reads in one within a time budget."""

    def frames_of(self, ds: pydicom.Dataset, max_frames: int) -> Iterator[Any]: ...

    def overlays_of(self, ds: pydicom.Dataset) -> Iterator[tuple[int, Any]]: ...

    def read_image_text(self, image: Any, *, budget_s: float = 1.0) -> ImageTextLike: ...


def installed_engine() -> OcrEngine | None:
    """``kanta_guard.imaging`` if it is installed (it brings the OCR engines), else None."""
    try:
        module = importlib.import_module("kanta_guard.imaging")
    except ImportError:
        return None
    return cast(OcrEngine, module)


class DicomParser:
    """Parses DICOM objects: declared ``application/dicom`` (any parameters),
    ``application/dicom+json``, ``application/dicom+xml``, or a Part 10 file by its bytes."""

    name = "dicom"

    def __init__(
        self, settings: DicomSettings | None = None, *, engine: OcrEngine | None = None
    ) -> None:
        #: Settings of this parser; None: the scan's (``ScanState.dicom``), else the defaults.
        self.settings = settings
        #: The OCR engine; None: the installed one (``kanta_guard.imaging``), if any.
        self.engine = engine

    def claims(self, media: MediaType, payload: Payload) -> bool:
        if media.type in _TYPES:
            return True
        # A Part 10 file by its bytes, whatever else its label says (an image type: the
        # 128-byte preamble is free, a TIFF header in dual-personality files), unless the label
        # names a structure another parser reads whole (multipart, a form, XML, JSON).
        if media.is_multipart or media.is_xml or media.is_json or media.type == _FORM:
            return False
        data = payload.data
        return is_part10(data) and data[132:134] == b"\x02\x00"

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        settings = self._settings(state)
        where = payload.location or "body"
        budget = max(0, state.limits.max_decoded_bytes - state.decoded_bytes)
        limits = ReadLimits(settings.max_elements, settings.max_sequence_depth, budget)
        prefix = payload.location + ":" if payload.location else ""
        if media.type in (DICOM_JSON, DICOM_XML) and not is_part10(payload.data):
            yield from self._models(payload, media, state, settings, limits, prefix)
            return
        obj = read(payload.data, media.params.get("transfer-syntax"), limits=limits, where=where)
        if obj.dataset.buffer is not payload.data:
            state.charge(len(obj.dataset.buffer), where)  # the inflated data set
        walk = _Walk(prefix, settings, state, load_profile())
        if obj.meta is not None:
            walk.dataset(obj.meta, "", Role.MESSAGE, ("ascii",), top=False)
        walk.dataset(obj.dataset, "", Role.DOCUMENT, ("ascii",), top=True)
        yield from walk.items(payload, state)
        yield from self._ocr(walk, lambda: to_pydicom(obj, where), payload, state, settings)

    def _settings(self, state: ScanState) -> DicomSettings:
        if self.settings is not None:
            return self.settings
        found = getattr(state, "dicom", None)
        return found if isinstance(found, DicomSettings) else DicomSettings()

    # -- the JSON and XML models -----------------------------------------------------------------

    def _models(
        self,
        payload: Payload,
        media: MediaType,
        state: ScanState,
        settings: DicomSettings,
        limits: ReadLimits,
        prefix: str,
    ) -> Iterator[Item]:
        where = payload.location or "body"
        extras: list[tuple[str, str]] = []
        if media.type == DICOM_JSON:
            objects, many = _json_objects(payload.data, where)
        else:
            objects, many = _xml_objects(payload.data, where, extras), False
        for text, at in extras:
            yield Field(text, Context(Role.DOCUMENT, "xml", None), prefix + at)
        builder = _ModelBuilder(limits, where)
        syntax = media.params.get("transfer-syntax") or "1.2.840.10008.1.2.1"
        parts: Mapping[str, tuple[bytes, str | None]] = getattr(state, "bulk_parts", None) or {}
        for number, obj in enumerate(objects, 1):
            dataset = builder.dataset(obj, 0)
            at = f"{prefix}[{number}]/" if many else prefix
            walk = _Walk(at, settings, state, load_profile(), ("utf-8",))
            walk.dataset(dataset, "", Role.DOCUMENT, ("utf-8",), top=True)
            yield from walk.items(payload, state)
            bulk = _bulk_pixels(obj, parts)
            if bulk is not None:
                walk.bulk_pixels = False  # (the request's bulk data part holds them: read)

            def loader(
                obj: dict[str, Any] = obj, bulk: tuple[bytes, str | None] | None = bulk
            ) -> pydicom.Dataset:
                return _pydicom_of_json(obj, syntax, where, bulk)

            yield from self._ocr(walk, loader, payload, state, settings)

    # -- OCR ---------------------------------------------------------------------------------------

    def _ocr(
        self,
        walk: _Walk,
        load: Callable[[], pydicom.Dataset],
        payload: Payload,
        state: ScanState,
        settings: DicomSettings,
    ) -> Iterator[Item]:
        """Nested text payloads of what OCR reads in the object's frames and overlay planes, and a
        marker of each reading (what was read, what was not and why)."""
        if settings.ocr is OcrMode.OFF:
            return
        facts = walk.facts
        expected = classes.text_expected(facts.sop_class, facts.modality, facts.conversion_type)
        pixels = facts.image and (settings.ocr is OcrMode.ALL or expected)
        if not (pixels or walk.overlays or walk.graphics):
            return
        prefix = walk.prefix
        pixel_at = f"{prefix}(7FE0,0010)PixelData"
        readings: list[OcrReading] = []
        engine = self.engine or installed_engine()
        if engine is None:
            note = "no OCR engine is installed (kanta_guard.imaging)"
            if pixels:
                readings.append(OcrReading(pixel_at, complete=False, expected=expected, note=note))
            for group in walk.overlays:
                at = f"{prefix}({group:04X},3000)OverlayData"
                readings.append(OcrReading(at, complete=False, note=note))
            if walk.graphics:
                at = f"{prefix}(0070,0001)GraphicAnnotationSequence"
                readings.append(OcrReading(at, complete=False, note=note))
            yield marker(facts.where, readings=tuple(readings))
            return
        context = Context(Role.NARRATIVE, "PixelData", "dicom")
        try:
            ds = load()
            if pixels and walk.bulk_pixels:
                # Pixels that should be read, in a part the scan cannot find: not read is not
                # clean (a STOW-RS request whose bulk data part is missing, or a lone document).
                raise UnscannableError(
                    "DICOM: the pixel data is in a bulk data part (BulkDataURI) that is not in "
                    "this request, so OCR cannot read it",
                    pixel_at,
                )
            if pixels:
                limit = settings.ocr_max_frames
                frames = engine.frames_of(ds, limit)
                for index, image in zip(
                    _frames_read(engine, walk.frames, limit), frames, strict=False
                ):
                    at = f"{pixel_at}[{index + 1}]!ocr"
                    reading = _reading(engine, image, at, expected, settings)
                    readings.append(reading)
                    if reading.text.strip():
                        data = reading.text.encode("utf-8")
                        yield nested(data, _TEXT, at, payload, context, state, declared=True)
                if walk.frames > limit:
                    readings.append(
                        OcrReading(
                            f"{pixel_at}[1-{walk.frames}]",
                            complete=False,
                            expected=expected,
                            note=f"{walk.frames - limit} of {walk.frames} frames not read "
                            f"(ocr_max_frames is {limit})",
                        )
                    )
            if walk.overlays:
                overlay_context = Context(Role.NARRATIVE, "OverlayData", "dicom")
                seen: dict[int, int] = {}
                for group, image in _overlays(engine, ds, settings.ocr_max_frames):
                    where = f"{prefix}({group:04X},3000)OverlayData"
                    seen[group] = seen.get(group, 0) + 1
                    # (A multi-frame overlay yields a plane per frame: numbered from the second.)
                    at = f"{where}[{seen[group]}]!ocr" if seen[group] > 1 else f"{where}!ocr"
                    reading = _reading(engine, image, at, True, settings)
                    readings.append(reading)
                    if reading.text.strip():
                        data = reading.text.encode("utf-8")
                        yield nested(
                            data, _TEXT, at, payload, overlay_context, state, declared=True
                        )
            if walk.graphics:
                yield from self._graphics(engine, ds, walk, readings, payload, state, settings)
        except UnscannableError as exc:  # (pixels that do not decode: located here)
            raise UnscannableError(exc.reason, pixel_at) from None
        except Exception as exc:  # an engine or decoder failing on odd pixels: not clean
            raise UnscannableError(
                f"DICOM: the pixel data could not be read for OCR ({type(exc).__name__})",
                pixel_at,
            ) from None
        yield marker(facts.where, readings=tuple(readings))

    def _graphics(
        self,
        engine: OcrEngine,
        ds: pydicom.Dataset,
        walk: _Walk,
        readings: list[OcrReading],
        payload: Payload,
        state: ScanState,
        settings: DicomSettings,
    ) -> Iterator[Item]:
        """A presentation state's graphic annotations, drawn (``imaging.graphics_of``) and read
        like overlay planes: text traced as lines is only text once drawn."""
        where = f"{walk.prefix}(0070,0001)GraphicAnnotationSequence"
        draw = getattr(engine, "graphics_of", None)
        if not callable(draw):
            note = "the OCR engine cannot draw graphic annotations"
            readings.append(OcrReading(where, complete=False, note=note))
            return
        limit = settings.ocr_max_frames
        context = Context(Role.NARRATIVE, "GraphicAnnotationSequence", "dicom")
        drawn = 0
        for index, image in draw(ds, max_items=limit):
            drawn += 1
            at = f"{where}[{index}]!ocr"
            reading = _reading(engine, image, at, True, settings)
            readings.append(reading)
            if reading.text.strip():
                data = reading.text.encode("utf-8")
                yield nested(data, _TEXT, at, payload, context, state, declared=True)
        if walk.graphics > limit and drawn == limit:
            readings.append(
                OcrReading(
                    where,
                    complete=False,
                    note=f"graphic annotations past the first {limit} with graphic objects not "
                    f"read (ocr_max_frames is {limit})",
                )
            )


_TEXT = "text/plain; charset=utf-8"


def _overlays(engine: OcrEngine, ds: pydicom.Dataset, limit: int) -> Iterator[tuple[int, Any]]:
    """The engine's overlay planes, at most ``limit`` frames of a multi-frame overlay where the
    engine takes the bound (``kanta_guard.imaging.overlays_of`` does)."""
    try:
        return engine.overlays_of(ds, max_frames=limit)  # type: ignore[call-arg]
    except TypeError:
        return engine.overlays_of(ds)


def _frames_read(engine: OcrEngine, count: int, limit: int) -> list[int]:
    """The indexes (from 0) of the frames ``frames_of`` yields: the engine's choice where it
    says (``frame_indices``: spread over the loop), else the first ones."""
    choose = getattr(engine, "frame_indices", None)
    if callable(choose):
        return list(choose(count, limit))
    return list(range(min(count, limit)))


def _reading(
    engine: OcrEngine, image: Any, at: str, expected: bool, settings: DicomSettings
) -> OcrReading:
    found = engine.read_image_text(image, budget_s=settings.ocr_budget_s)
    note = ""
    if not found.complete:
        note = getattr(found, "note", "") or "OCR could not read the whole image within its budget"
    return OcrReading(at, found.text, found.complete, found.engine, found.seconds, expected, note)


# -- walking a data set -------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    value: str
    context: Context
    where: str
    identifier: bool = False


@dataclass(slots=True)
class _Person:
    """What one data set says of one person (see ``PERSON_GROUPS``)."""

    role: Role
    where: str = ""
    names: list[PersonName] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    telecoms: list[Telecom] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)

    def party(self) -> Party | None:
        if not (self.names or self.telecoms or self.addresses):
            return None
        return Party(
            PartyKind.PERSON,
            self.role,
            self.where,
            tuple(self.identifiers),
            tuple(self.names),
            tuple(self.telecoms),
            tuple(self.addresses),
        )


#: keyword -> (person group, what it is: name, identifier, address, phone, telecom).
_MEMBERS: dict[str, tuple[str, str]] = {
    keyword_: (group, kind)
    for group, parts in PERSON_GROUPS.items()
    for kind, keywords in zip(
        ("name", "identifier", "address", "phone", "telecom"), parts, strict=True
    )
    for keyword_ in keywords
}
_GROUP_ROLES = {"patient": Role.PATIENT, "referring": Role.PROFESSIONAL}


class _Walk:
    """One object's walk: fields, parties, nested documents, the profile's attributes, facts."""

    def __init__(
        self,
        prefix: str,
        settings: DicomSettings,
        state: ScanState,
        profile: Profile,
        fixed: tuple[str, ...] | None = None,
    ) -> None:
        self.prefix = prefix
        self.settings = settings
        self.profile = profile
        #: Encodings of a model whose text is Unicode already (JSON, XML): Specific Character
        #: Set does not apply.
        self.fixed = fixed
        self.parties_wanted = state.parties
        self.candidates: list[_Candidate] = []
        self.parties: list[Party] = []
        self.attributes: list[Attribute] = []
        self.documents: list[tuple[bytes, str | None, str]] = []
        self.facts = DicomFacts(prefix.rstrip(":/") or "(data set)", prefix)
        self.frames = 1
        #: Overlay groups (60xx) holding Overlay Data, at the top level.
        self.overlays: list[int] = []
        self.bulk_pixels = False
        #: Items of the top level's Graphic Annotation Sequence holding graphic objects (a
        #: presentation state's drawn annotation).
        self.graphics = 0
        #: Certificates of Signer (0400,0115) of the object's digital signatures.
        self.signers: list[tuple[bytes, str]] = []

    def locate(self, path: str, tag: int, name: str) -> str:
        return f"{self.prefix}{path}({tag >> 16:04X},{tag & 0xFFFF:04X}){name}"

    def dataset(
        self, ds: DataSet, path: str, role: Role, encodings: tuple[str, ...], *, top: bool
    ) -> None:
        """Walk one data set (and its items), collecting what ``items`` yields."""
        if self.fixed is None:
            encodings = self._encodings(ds, path, encodings)
        hetu_ids = self._hetu_issuer(ds, encodings)
        creators: dict[int, str] = {}
        persons: dict[str, _Person] = {}
        declared: dict[int, str] = {}
        base = self.prefix + path
        candidates = self.candidates
        parties = self.parties_wanted
        buffer = ds.buffer
        free_text = role in (Role.DOCUMENT, Role.UNKNOWN)
        for element in ds.elements:
            tag, vr = element.tag, element.vr
            name, step, named, profiled = _tag_info(tag)
            private = bool(tag & 0x10000)
            if vr == "UN" and not private:
                # A standard attribute a relay wrote as UN: read as the dictionary's VR (PS3.5
                # 6.2.2; a UN sequence the reader has parsed already).
                vr = dictionary_vr(tag)
            own_role = named or (Role.NARRATIVE if free_text and vr in FREE_TEXT_VRS else role)
            where = base + step
            if vr == "SQ":
                items = element.items or []
                if profiled:
                    self._attribute(element, name, where, own_role, (), len(items), creators)
                if top and tag == _METHOD_CODES:
                    declared[tag] = str(len(items))
                if top and tag == _GRAPHIC_ANNOTATIONS:
                    self.graphics = sum(1 for item in items if _has_graphics(item))
                for index, item in enumerate(items, 1):
                    self.dataset(item, f"{path}{step}[{index}]/", own_role, encodings, top=False)
                continue
            if tag in _PIXEL_TAGS:
                self.facts_image(top, element)
                continue
            if tag == _SIGNER_CERTIFICATE and element.length:
                # A digital signature's certificate (PS3.15 C.1; DER when its type is
                # X509_1993_SIG): judged like any other the request carries.
                self.signers.append((ds.value(element), where))
            text: str | None = None
            if vr in STRING_VRS:
                raw = buffer[element.start : element.start + element.length]
                try:
                    text = decode(raw, vr, encodings).rstrip("\0 ")
                except (UnicodeError, LookupError):
                    raise UnscannableError(
                        f"DICOM: a {vr} value that does not decode in the data set's character set",
                        where,
                    ) from None
            elif vr == "UN" or (private and vr in ("OB", "OW")):
                # Unknown to the reader (an implicit-VR private LO whose creator it does not
                # know is UN), or private bytes: their text is read as it stands.
                raw = buffer[element.start : element.start + element.length]
                text = raw.decode("latin-1").rstrip("\0 ")
            number = tag & 0xFFFF
            if private and 0x10 <= number <= 0xFF and text is not None:
                creators[(tag >> 8) & 0xFFFF00 | number] = text.strip()
            values: tuple[str, ...] = ()
            if text and vr in STRING_VRS:
                values = (text,) if vr in SINGLE_VALUED else tuple(text.split("\\"))
            if profiled:
                self._attribute(element, name, where, own_role, values, element.length, creators)
            if not text:
                continue
            if top and tag in _DECLARED:
                declared[tag] = text
            if tag == _DOCUMENT:
                continue  # (the document is a nested payload, read below)
            element_name = name or step
            if hetu_ids and name in ("PatientID", "OtherPatientIDs"):
                hetu = Context(own_role, element_name, HETU_OID)
                for value in values:
                    if value.strip():
                        candidates.append(_Candidate(value.strip(), hetu, where, True))
            else:
                candidates.append(_Candidate(text, _context(own_role, element_name), where))
            if parties and (vr == "PN" or name in _MEMBERS):
                self._person(persons, name, vr, values, text, where, own_role, role)
        if parties:
            for person in persons.values():
                party = person.party()
                if party is not None:
                    self.parties.append(party)
        if top:
            self.overlays.extend(_overlay_groups(ds))
            self._declare(declared)
        self._document(ds, path, encodings)

    def facts_image(self, top: bool, element: Element) -> None:
        if not top:
            return  # (an icon's pixels: the profile removes Icon Image Sequence)
        self.facts = _replace(self.facts, image=True)
        if element.length == 0 and element.fragments is None and element.start < 0:
            self.bulk_pixels = True

    def _encodings(self, ds: DataSet, path: str, inherited: tuple[str, ...]) -> tuple[str, ...]:
        element = ds.find(_CHARSET)
        if element is None:
            return inherited
        try:
            return encodings_of(ds.value(element).decode("ascii").rstrip("\0 "))
        except (UnicodeError, LookupError):
            raise UnscannableError(
                "DICOM: an unknown Specific Character Set", self.locate(path, _CHARSET, "")
            ) from None

    def _hetu_issuer(self, ds: DataSet, encodings: tuple[str, ...]) -> bool:
        """True if this data set's Issuer of Patient ID (or its qualifiers' Universal Entity ID)
        names the Finnish identity code."""
        issuer = ds.find(_ISSUER)
        if issuer is not None and _issuer_text(ds, issuer, encodings) in _HETU_ISSUERS:
            return True
        qualifiers = ds.find(_ISSUER_QUALIFIERS)
        for item in (qualifiers.items or []) if qualifiers is not None else []:
            entity = item.find(_UNIVERSAL_ENTITY_ID)
            if entity is not None and _issuer_text(item, entity, encodings) in _HETU_ISSUERS:
                return True
        return False

    def _attribute(
        self,
        element: Element,
        name: str,
        where: str,
        role: Role,
        values: tuple[str, ...],
        size: int,
        creators: dict[int, str],
    ) -> None:
        """Note an attribute the profile judges, or a private data element (with its creator)."""
        tag = element.tag
        if tag & 0x10000:
            number = tag & 0xFFFF
            creator = creators.get((tag >> 8) & 0xFFFF00 | number >> 8) if number > 0xFF else None
            self.attributes.append(
                Attribute(tag, "", element.vr, where, role, values, size, True, creator)
            )
            return
        self.attributes.append(Attribute(tag, name, element.vr, where, role, values, size))

    def _person(
        self,
        persons: dict[str, _Person],
        name: str,
        vr: str,
        values: tuple[str, ...],
        text: str,
        where: str,
        role: Role,
        inherited: Role,
    ) -> None:
        """Add what this attribute says of a person to the data set's persons."""
        member = _MEMBERS.get(name)
        if member is None:
            if vr == "PN":
                for index, value in enumerate(values):
                    names = self._names(value)
                    if names:
                        single = _Person(role if role is not Role.DOCUMENT else Role.PARTICIPANT)
                        single.where, single.names = where, names
                        persons[f"{where}#{index}"] = single
            return
        group, kind = member
        found = persons.get(group)
        if found is None:
            own = _GROUP_ROLES.get(group)
            if own is None:  # a Person Identification Macro: the enclosing role's person
                own = inherited if inherited not in (Role.DOCUMENT, Role.UNKNOWN) else role
            found = persons[group] = _Person(own, where)
        person = found
        if kind == "name":
            for value in values:
                person.names.extend(self._names(value))
        elif kind == "identifier":
            for value in values:
                value = value.strip()
                if idcode.classify(value) in (idcode.Kind.TEST, idcode.Kind.REAL):
                    person.identifiers.append((HETU_OID, value))
        elif kind == "address":
            if text.strip() and not self.settings.is_dummy(text):
                line = " ".join(text.split())
                person.addresses.append(Address((line,), text=line))
        elif kind == "phone":
            for value in values:
                if value.strip() and not self.settings.is_dummy(value):
                    person.telecoms.append(Telecom(value.strip(), "phone"))
        elif text.strip() and not self.settings.is_dummy(text):
            person.telecoms.append(Telecom(text.strip()))

    def _names(self, value: str) -> list[PersonName]:
        """The names of one PN value (not a dummy, not empty, not a query's universal "*")."""
        if not value.strip(" ^=*") or self.settings.is_dummy(value):
            return []
        found: list[PersonName] = []
        for group in value.split("=")[:3]:
            name = person_name(group)
            if name is not None and not self.settings.is_dummy(name.text):
                found.append(name)
        return found

    def _document(self, ds: DataSet, path: str, encodings: tuple[str, ...]) -> None:
        """An encapsulated document (PS3.3 C.24.2): its bytes, under its MIME type."""
        element = ds.find(_DOCUMENT)
        if element is None or not element.length:
            return
        data = ds.value(element)
        mime: str | None = None
        declared = ds.find(_DOCUMENT_MIME)
        if declared is not None:
            try:
                mime = decode(ds.value(declared), "LO", encodings).strip(" \0") or None
            except (UnicodeError, LookupError):
                mime = None
        length = ds.find(_DOCUMENT_LENGTH)
        if length is not None and length.length == 4:
            size = int.from_bytes(ds.value(length), "little" if ds.little else "big")
            if size <= len(data):
                data = data[:size]
        elif data.endswith(b"\0"):
            data = data[:-1]  # (the pad byte of an odd-length document, PS3.5 7.1.1)
        self.documents.append((data, mime, self.locate(path, _DOCUMENT, "EncapsulatedDocument")))

    def _declare(self, declared: dict[int, str]) -> None:
        methods = declared.get(_METHOD)
        frames = declared.get(_NUMBER_OF_FRAMES, "").strip()
        self.frames = int(frames) if frames.isdigit() and int(frames) > 0 else 1
        self.facts = _replace(
            self.facts,
            sop_class=declared.get(_SOP_CLASS, "").strip(),
            modality=declared.get(_MODALITY, "").strip().upper(),
            conversion_type=declared.get(_CONVERSION_TYPE, "").strip().upper(),
            burned_in=declared.get(_BURNED_IN),
            identity_removed=declared.get(_IDENTITY_REMOVED),
            methods=tuple(methods.split("\\")) if methods else (),
            method_codes=int(declared.get(_METHOD_CODES, "0")),
        )

    def items(self, payload: Payload, state: ScanState) -> Iterator[Item]:
        """Parties, the value fields the screen asks for (identifier fields always), nested
        documents, and the marker of the object's facts."""
        yield from self.parties
        plain = [c.value for c in self.candidates if not c.identifier]
        wanted = wanted_texts(state, plain) if plain else []
        certificates = state.certificates
        for candidate in self.candidates:
            value = candidate.value
            if candidate.identifier or keep(value, wanted):
                yield Field(value, candidate.context, candidate.where, candidate.identifier)
            # JOSE tokens and PEM certificates in a value: decoded and judged (the pipeline
            # need not search the object's bytes, pixel data and all, for them).
            if "ey" in value:
                raw = value.encode("utf-8", "surrogatepass")
                yield from jose_nested(raw, candidate.where, payload, candidate.context, state)
            if certificates and "-----BEGIN " in value:
                raw = value.encode("utf-8", "surrogatepass")
                holder = Payload(raw, None, candidate.where, candidate.context, payload.depth)
                yield from pem_items(holder, state)
        if certificates:
            for der, where in self.signers:
                yield CertificateItem(der, where, _SIGNER)
        for data, mime, where in self.documents:
            context = Context(Role.DOCUMENT, "EncapsulatedDocument", "dicom")
            yield nested(data, mime, where, payload, context, state, declared=mime is not None)
        self.facts = _replace(self.facts, attributes=tuple(self.attributes))
        yield marker(self.facts.where, facts=self.facts)


@lru_cache(maxsize=16384)
def _context(role: Role, element: str) -> Context:
    """The context of a DICOM value field (one of a few hundred: built once)."""
    return Context(role, element, "dicom")


@lru_cache(maxsize=16384)
def _tag_info(tag: int) -> tuple[str, str, Role | None, bool]:
    """An attribute's keyword, its path step (``(0010,0010)PatientName``; private and unknown
    tags by number alone), the role it names, and whether the confidentiality profile or the
    private-attribute rule judges it."""
    group, number = tag >> 16, tag & 0xFFFF
    step = f"({group:04X},{number:04X})"
    if group & 1:
        # (A group length and a Private Creator hold no data of their own.)
        return "", step, None, not (number == 0 or 0x10 <= number <= 0xFF)
    name = keyword(tag)
    entry = load_profile().lookup(tag)
    return name, step + name, ROLES.get(name), entry is not None and not entry.uid


def _has_graphics(item: DataSet) -> bool:
    """True for a Graphic Annotation Sequence item with graphic objects."""
    found = item.find(_GRAPHIC_OBJECTS)
    return found is not None and bool(found.items)


def _overlay_groups(ds: DataSet) -> list[int]:
    """The overlay groups (60xx) of a data set holding Overlay Data (PS3.3 C.9.2)."""
    return [
        e.tag >> 16
        for e in ds.elements
        if e.tag & 0xFFFF == 0x3000 and 0x6000 <= e.tag >> 16 <= 0x601E and e.length
    ]


_DECLARED = frozenset(
    {
        _SOP_CLASS,
        _MODALITY,
        _CONVERSION_TYPE,
        _BURNED_IN,
        _IDENTITY_REMOVED,
        _METHOD,
        _NUMBER_OF_FRAMES,
    }
)


def _replace(facts: DicomFacts, **changes: Any) -> DicomFacts:
    values = {name: getattr(facts, name) for name in DicomFacts.__dataclass_fields__}
    values.update(changes)
    return DicomFacts(**values)


def _issuer_text(ds: DataSet, element: Element, encodings: tuple[str, ...]) -> str:
    try:
        return decode(ds.value(element), element.vr, encodings).strip(" \0").lower()
    except (UnicodeError, LookupError):
        return ""


# -- DICOM JSON (PS3.18 F.2) and XML (PS3.19 A.1) -----------------------------------------------

_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_JSON_KEYS = frozenset({"vr", "Value", "InlineBinary", "BulkDataURI"})


def _json_objects(data: bytes, where: str) -> tuple[list[dict[str, Any]], bool]:
    """The data sets of a DICOM JSON document (an object, or an array of them: True)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise UnscannableError("DICOM JSON: a key repeated in an object", where)
            out[key] = value
        return out

    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=unique)
    except (UnicodeError, ValueError, RecursionError):
        raise UnscannableError("DICOM JSON: not valid JSON in UTF-8", where) from None
    objects = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(obj, dict) for obj in objects):
        raise UnscannableError("DICOM JSON: not an object or an array of objects", where)
    return cast(list[dict[str, Any]], objects), isinstance(doc, list)


#: A hardened parser (as ``parsers.xml``: no entities resolved, no DTD, no network).
_XML_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    remove_pis=False,
    collect_ids=False,
)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xml_objects(data: bytes, where: str, extras: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The data set of a Native DICOM Model document (PS3.19 A.1), in the form of DICOM JSON;
    any other text in the document (comments, elements outside the model) into ``extras``."""
    try:
        root = etree.fromstring(data, _XML_PARSER)
    except etree.XMLSyntaxError:
        raise UnscannableError("DICOM XML: not well-formed XML", where) from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnscannableError("DICOM XML: a document declaring a DOCTYPE", where)
    if not isinstance(root.tag, str) or _local(root.tag) != "NativeDicomModel":
        raise UnscannableError("DICOM XML: not a Native DICOM Model document", where)
    return [_xml_dataset(root, "", extras, where)]


def _xml_dataset(
    el: etree._Element, path: str, extras: list[tuple[str, str]], where: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, child in enumerate(el, 1):
        _tail(child, f"{path}node()[{number}]", extras)
        if not isinstance(child.tag, str) or _local(child.tag) != "DicomAttribute":
            _other(child, f"{path}node()[{number}]", extras)
            continue
        tag = (child.get("tag") or "").upper()
        if not _TAG.fullmatch(tag) or tag in out:
            raise UnscannableError("DICOM XML: an attribute without a tag, or repeated", where)
        entry: dict[str, Any] = {"vr": child.get("vr") or ""}
        _attributes(child, f"{path}node()[{number}]", _MODEL_ATTRIBUTES, extras)
        values: list[Any] = []
        at = f"{path}({tag[:4]},{tag[4:]})"
        for index, part in enumerate(child, 1):
            _tail(part, f"{at}/node()[{index}]", extras)
            kind = _local(part.tag) if isinstance(part.tag, str) else ""
            if kind in _VALUE_ELEMENTS:
                _attributes(part, f"{at}/node()[{index}]", _VALUE_ATTRIBUTES, extras)
            if kind == "Value":
                values.append(part.text or "")
            elif kind == "PersonName":
                values.append(_xml_person_name(part))
            elif kind == "Item":
                values.append(_xml_dataset(part, f"{at}[{len(values) + 1}]/", extras, where))
            elif kind == "InlineBinary":
                entry["InlineBinary"] = "".join((part.text or "").split())
            elif kind == "BulkData":
                entry["BulkDataURI"] = part.get("uri") or part.get("uuid") or ""
            else:
                _other(part, f"{at}/node()[{index}]", extras)
        if values:
            entry["Value"] = values
        out[tag] = entry
    return out


def _xml_person_name(el: etree._Element) -> dict[str, str]:
    """A PersonName element as DICOM JSON writes it: each component group ``^``-joined."""
    found: dict[str, str] = {}
    parts = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
    for group in el:
        if not isinstance(group.tag, str):
            continue
        kind = _local(group.tag)
        if kind not in ("Alphabetic", "Ideographic", "Phonetic"):
            continue
        components = {_local(c.tag): (c.text or "") for c in group if isinstance(c.tag, str)}
        if not components and (group.text or "").strip():
            found[kind] = group.text or ""  # (a name written whole)
        else:
            found[kind] = "^".join(components.get(p, "") for p in parts).rstrip("^")
    return found


#: Attributes of the model's elements (PS3.19 A.1.1); any other's value is read as text.
_MODEL_ATTRIBUTES = frozenset({"tag", "vr", "keyword", "privateCreator"})
_VALUE_ELEMENTS = frozenset({"Value", "PersonName", "Item", "InlineBinary", "BulkData"})
_VALUE_ATTRIBUTES = frozenset({"number", "uri", "uuid"})


def _attributes(
    el: etree._Element, at: str, known: frozenset[str], extras: list[tuple[str, str]]
) -> None:
    for name, value in el.attrib.items():
        if _local(str(name)) not in known and str(value).strip():
            extras.append((str(value), f"{at}/@{_local(str(name))}"))


def _tail(el: etree._Element, at: str, extras: list[tuple[str, str]]) -> None:
    if el.tail and el.tail.strip():
        extras.append((el.tail, at + "/tail()"))


def _other(el: etree._Element, at: str, extras: list[tuple[str, str]]) -> None:
    """Text outside the model: a comment, a processing instruction, an unknown element."""
    texts = [*el.attrib.values(), *el.itertext()] if isinstance(el.tag, str) else [el.text or ""]
    text = " ".join(t for t in texts if t.strip())
    if text:
        extras.append((text, at))


class _ModelBuilder:
    """DICOM JSON data sets as the reader's :class:`DataSet` (each object's values UTF-8 in one
    buffer of its own), so one walk reads all three encodings. The element bound counts all
    objects of a document."""

    def __init__(self, limits: ReadLimits, where: str) -> None:
        self.limits = limits
        self.where = where
        self.buffer = bytearray()
        self.sets: list[DataSet] = []
        self.count = 0

    def dataset(self, obj: Mapping[str, Any], depth: int) -> DataSet:
        """One object of the document, and its items."""
        self.buffer, self.sets = bytearray(), []
        found = self._dataset(obj, depth)
        data = bytes(self.buffer)
        for built in self.sets:
            built.buffer = data
        return found

    def _fail(self, reason: str) -> UnscannableError:
        return UnscannableError(f"DICOM JSON: {reason}", self.where)

    def _dataset(self, obj: Mapping[str, Any], depth: int) -> DataSet:
        if depth > self.limits.max_sequence_depth:
            raise UnscannableError(
                f"too deep: DICOM sequences nested more than "
                f"{self.limits.max_sequence_depth} levels",
                self.where,
            )
        if not isinstance(obj, Mapping):
            raise self._fail("a data set that is not an object")
        tags: dict[int, Any] = {}
        for key, attr in obj.items():
            if not isinstance(key, str) or not _TAG.fullmatch(key):
                raise self._fail("a key that is not a tag")
            tag = int(key, 16)
            if tag in tags:
                raise self._fail("an attribute repeated")
            tags[tag] = attr
        elements: list[Element] = []
        for tag in sorted(tags):
            attr = tags[tag]
            if not isinstance(attr, Mapping) or not set(attr) <= _JSON_KEYS:
                raise self._fail("an attribute that is not a DICOM JSON attribute object")
            vr = attr.get("vr")
            if vr not in STRING_VRS and vr not in _OTHER_VRS:
                raise self._fail("an unknown value representation")
            if len(set(attr) - {"vr"}) > 1:
                raise self._fail("an attribute with more than one kind of value")
            self.count += 1
            if self.count > self.limits.max_elements:
                raise UnscannableError(
                    f"too large: more than {self.limits.max_elements} DICOM data elements",
                    self.where,
                )
            if vr == "SQ":
                items = attr.get("Value") or []
                if not isinstance(items, list):
                    raise self._fail("a sequence whose value is not a list")
                built = [self._dataset(item or {}, depth + 1) for item in items]
                elements.append(Element(tag, "SQ", 0, 0, built))
            elif "InlineBinary" in attr:
                raw = _inline(attr["InlineBinary"], self.where)
                elements.append(self._stored(tag, vr, raw))
            elif "BulkDataURI" in attr:
                elements.append(Element(tag, vr, -1, 0))  # (the bytes are another part's)
            else:
                text = _json_text(vr, attr.get("Value") or [], self.where)
                elements.append(self._stored(tag, vr, text.encode("utf-8", "surrogatepass")))
        found = DataSet(elements, b"")
        self.sets.append(found)
        return found

    def _stored(self, tag: int, vr: str, raw: bytes) -> Element:
        start = len(self.buffer)
        self.buffer += raw
        return Element(tag, vr, start, len(raw))


_OTHER_VRS = frozenset(
    {"AT", "FD", "FL", "OB", "OD", "OF", "OL", "OV", "OW", "SL", "SQ", "SS", "SV", "UL", "UN"}
    | {"US", "UV"}
)


def _inline(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise UnscannableError("DICOM JSON: InlineBinary that is not a string", where)
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UnscannableError("DICOM JSON: InlineBinary that is not Base64", where) from None


def _json_text(vr: str, values: object, where: str) -> str:
    """A JSON Value as the backslash-joined string it stands for (PN: component groups
    ``=``-joined; numbers as written)."""
    if not isinstance(values, list):
        raise UnscannableError("DICOM JSON: a Value that is not a list", where)
    out: list[str] = []
    for value in values:
        if value is None:
            out.append("")
        elif vr == "PN" and isinstance(value, Mapping):
            groups = [value.get(k) or "" for k in ("Alphabetic", "Ideographic", "Phonetic")]
            if not all(isinstance(g, str) for g in groups) or set(value) - _PN_KEYS:
                raise UnscannableError("DICOM JSON: a person name that is not one", where)
            out.append("=".join(groups).rstrip("="))
        elif isinstance(value, str):
            out.append(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append(repr(value) if isinstance(value, float) else str(value))
        else:
            raise UnscannableError("DICOM JSON: a value of the wrong kind", where)
    return "\\".join(out)


_PN_KEYS = frozenset({"Alphabetic", "Ideographic", "Phonetic"})


def _pydicom_of_json(
    obj: dict[str, Any], syntax: str, where: str, bulk: tuple[bytes, str | None] | None = None
) -> pydicom.Dataset:
    """A DICOM JSON data set as pydicom reads it (for inline pixel data and overlays; with
    ``bulk``, the pixel data of its bulk data part: the bytes and the part's content type)."""
    try:
        ds = pydicom.Dataset.from_json(obj, bulk_data_uri_handler=lambda *_: b"")
    except Exception as exc:  # pydicom raises many kinds on odd data; none may pass unread
        raise UnscannableError(
            f"DICOM JSON: pydicom cannot read the data set ({type(exc).__name__})", where
        ) from None
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(syntax)
    if bulk is not None:
        data, content_type = bulk
        uid = _bulk_syntax(content_type, where)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(uid)
        if pydicom.uid.UID(uid).is_compressed:
            # A compressed frame's bytes as sent (PS3.18 8.7.3.3.2): one fragment each.
            ds.PixelData = encapsulate([data])
            ds["PixelData"].VR = "OB"
        else:
            ds.PixelData = data
    return ds


#: Transfer syntaxes of a bulk data part by its media type (PS3.18 Table 8.7.3-2), where the part
#: does not name one (``transfer-syntax``).
_BULK_SYNTAXES = {
    "application/octet-stream": "1.2.840.10008.1.2.1",
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/x-dicom-rle": "1.2.840.10008.1.2.5",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
}


def _bulk_syntax(content_type: str | None, where: str) -> str:
    """The transfer syntax of a bulk data part holding pixel data."""
    media = parse_media_type(content_type or "application/octet-stream")
    uid = media.params.get("transfer-syntax") or _BULK_SYNTAXES.get(media.type)
    if uid is None:
        raise UnscannableError(
            "DICOM: a bulk data part of pixel data in a media type with no transfer syntax", where
        )
    return uid.strip()


def _bulk_pixels(
    obj: Mapping[str, Any], parts: Mapping[str, tuple[bytes, str | None]]
) -> tuple[bytes, str | None] | None:
    """The request's part holding the object's pixel data (its BulkDataURI, by the part's
    Content-Location or Content-ID), if the scan knows one."""
    attr = obj.get("7FE00010") or obj.get("7fe00010")
    uri = attr.get("BulkDataURI") if isinstance(attr, Mapping) else None
    if not isinstance(uri, str) or not uri.strip() or not parts:
        return None
    uri = uri.strip()
    for key in (uri, uri.strip("<>"), "cid:" + uri.strip("<>")):
        if key in parts:
            return parts[key]
    return None
