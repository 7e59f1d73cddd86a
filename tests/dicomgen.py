"""Builders of DICOM test objects with pydicom: a clean anonymised image of each kind, a variant
per rule, a Key Object Selection manifest; as Part 10 bytes or bare data sets.

Every code is a 900-series test code or a real-range code computed on the fly (``helpers.code``),
never a literal; every person, address and number is invented. Other helpers' tests import this
module (``from dicomgen import clean, part10, bare``).

    >>> ds = clean("CT")
    >>> data = part10(ds)             # application/dicom
    >>> body = bare(ds)               # application/dicom; transfer-syntax=1.2.840.10008.1.2.1
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from helpers import REAL, TEST
from lxml import etree
from PIL import Image, ImageDraw, ImageFont
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset
from pydicom.pixels import pack_bits
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from kanta_guard.dicom.settings import DicomSettings

if TYPE_CHECKING:
    from kanta_guard import Scanner
    from kanta_guard.parsers.dicom import OcrEngine
    from kanta_guard.policy import Policy
    from kanta_guard.registry import Registry

__all__ = [
    "DUMMY_NAME",
    "IMAGE_CLASSES",
    "KOS_CLASS",
    "REGISTERED_NAME",
    "bare",
    "clean",
    "compressed",
    "content_type",
    "dicom_json",
    "dicom_policy",
    "dicom_scanner",
    "kos",
    "native_xml",
    "part10",
    "registry",
    "rendered_text",
    "with_address",
    "with_burned_in",
    "with_code_in_nested_sequence",
    "with_code_in_other_ids",
    "with_code_in_patient_id",
    "with_code_in_private",
    "with_name",
    "with_overlay_text",
    "with_phone",
    "with_pixel_text",
    "with_private",
]

#: Storage SOP classes and modalities of the image kinds built here (PS3.4 B.5).
IMAGE_CLASSES = {
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "CT"),
    "MR": ("1.2.840.10008.5.1.4.1.1.4", "MR"),
    "US": ("1.2.840.10008.5.1.4.1.1.6.1", "US"),
    "SC": ("1.2.840.10008.5.1.4.1.1.7", "OT"),
}
KOS_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
#: A dummy patient name (in the default dummies).
DUMMY_NAME = "ANONYMIZED"
#: Maija Liisa Testinen, registered under TEST in tests/fixtures/personal/registry.toml.
REGISTERED_NAME = "Testinen^Maija^Liisa"
#: A real-looking name no registry holds (invented).
REAL_LOOKING_NAME = "Virtanen^Matti^Juhani"
#: Where the study's UIDs come from: fixed, so that builds repeat byte for byte.
_ROOT = "1.2.826.0.1.3680043.10.1"
_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)


def _uid(*parts: str) -> UID:
    return generate_uid(prefix=_ROOT + ".", entropy_srcs=list(parts))


def clean(
    kind: str = "CT",
    *,
    rows: int = 64,
    columns: int = 64,
    patient_id: str = TEST,
    name: str = DUMMY_NAME,
    seed: str = "1",
) -> Dataset:
    """A clean anonymised image: Patient Identity Removed YES with its method, Burned In
    Annotation NO, a 900-series test code, a dummy (or the given) name, a grey gradient."""
    sop_class, modality = IMAGE_CLASSES[kind]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["DERIVED", "SECONDARY"] if kind == "SC" else ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = _uid(kind, seed, "instance")
    ds.StudyDate = "20240101"
    ds.Modality = modality
    if kind == "SC":
        ds.ConversionType = "WSD"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Basic Application Confidentiality Profile"
    method = Dataset()
    method.CodeValue = "113100"
    method.CodingSchemeDesignator = "DCM"
    method.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = DicomSequence([method])
    ds.StudyInstanceUID = _uid(kind, seed, "study")
    ds.SeriesInstanceUID = _uid(kind, seed, "series")
    ds.StudyID = ""
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    gradient = np.add.outer(np.arange(rows), np.arange(columns)) * 255 // (rows + columns)
    ds.add_new(0x7FE00010, "OB", gradient.astype(np.uint8).tobytes())
    return ds


def kos(*images: Dataset, patient_id: str = TEST, name: str = DUMMY_NAME) -> Dataset:
    """A Key Object Selection document (PS3.3 A.35.4, TID 2010) referencing ``images``: the
    manifest an IHE XDS-I.b RAD-68 request carries."""
    images = images or (clean("CT"),)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = KOS_CLASS
    ds.SOPInstanceUID = _uid("kos", images[0].SOPInstanceUID)
    ds.StudyDate = "20240101"
    ds.Modality = "KO"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Basic Application Confidentiality Profile"
    ds.StudyInstanceUID = images[0].StudyInstanceUID
    ds.SeriesInstanceUID = _uid("kos-series", images[0].SOPInstanceUID)
    ds.StudyID = ""
    ds.SeriesNumber = "99"
    ds.InstanceNumber = "1"
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence()
    title = Dataset()
    title.CodeValue = "113000"
    title.CodingSchemeDesignator = "DCM"
    title.CodeMeaning = "Of Interest"
    ds.ConceptNameCodeSequence = DicomSequence([title])
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = DicomSequence([template])
    items = []
    instances = []
    for image in images:
        reference = Dataset()
        reference.ReferencedSOPClassUID = image.SOPClassUID
        reference.ReferencedSOPInstanceUID = image.SOPInstanceUID
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "IMAGE"
        item.ReferencedSOPSequence = DicomSequence([reference])
        items.append(item)
        instances.append(reference)
    ds.ContentSequence = DicomSequence(items)
    series = Dataset()
    series.SeriesInstanceUID = images[0].SeriesInstanceUID
    series.ReferencedSOPSequence = DicomSequence(instances)
    study = Dataset()
    study.StudyInstanceUID = images[0].StudyInstanceUID
    study.ReferencedSeriesSequence = DicomSequence([series])
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence([study])
    return ds


# -- variants: one per rule ------------------------------------------------------------------------


def with_code_in_patient_id(ds: Dataset, value: str = REAL) -> Dataset:
    """PatientID holds a real-range code."""
    ds.PatientID = value
    return ds


def with_code_in_other_ids(ds: Dataset, value: str = REAL) -> Dataset:
    """OtherPatientIDsSequence holds an item whose PatientID is a real-range code."""
    item = Dataset()
    item.PatientID = value
    item.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = DicomSequence([item])
    return ds


def with_private(
    ds: Dataset, creator: str = "KANTA TEST 1.0", values: Sequence[str] = ("private note",)
) -> Dataset:
    """A private block (group 0019) of ``creator`` holding LO values at (0019,xx10), …"""
    block = ds.private_block(0x0019, creator, create=True)
    for offset, value in enumerate([values] if isinstance(values, str) else values):
        block.add_new(0x10 + offset, "LO", value)
    return ds


def with_code_in_private(ds: Dataset, value: str = REAL) -> Dataset:
    """A private LO holds a real-range code."""
    return with_private(ds, values=(f"henkilo {value}",))


def with_code_in_nested_sequence(ds: Dataset, value: str = REAL) -> Dataset:
    """A code in a TEXT content item two levels down a Content Sequence (not an Annex E
    attribute: only the identity-code rule sees it)."""
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text.TextValue = f"Potilaan tunnus {value}"
    inner = Dataset()
    inner.RelationshipType = "CONTAINS"
    inner.ValueType = "CONTAINER"
    inner.ContentSequence = DicomSequence([text])
    ds.ContentSequence = DicomSequence([inner])
    return ds


def with_name(ds: Dataset, name: str = REAL_LOOKING_NAME) -> Dataset:
    """PatientName is a real-looking name (invented; no registry holds it)."""
    ds.PatientName = name
    return ds


def with_address(ds: Dataset, address: str = "Mannerheimintie 5 A 7, 00100 Helsinki") -> Dataset:
    """PatientAddress holds a street address (invented)."""
    ds.PatientAddress = address
    return ds


def with_phone(ds: Dataset, phone: str = "+358 40 7654321") -> Dataset:
    """PatientTelephoneNumbers holds a mobile number (invented)."""
    ds.PatientTelephoneNumbers = phone
    return ds


def with_burned_in(ds: Dataset, value: str | None = "YES") -> Dataset:
    """Burned In Annotation set to ``value`` (None: removed)."""
    if value is None:
        del ds.BurnedInAnnotation
    else:
        ds.BurnedInAnnotation = value
    return ds


def rendered_text(
    lines: Sequence[str], rows: int, columns: int, *, background: int = 0, size: int = 0
) -> np.ndarray:
    """White text on a plain background as a rows × columns uint8 image (DejaVu if present,
    else Pillow's default font)."""
    size = size or max(10, rows // (2 * max(1, len(lines)) + 2))
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    path = next((p for p in _FONTS if p.exists()), None)
    font = ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size=size)
    image = Image.new("L", (columns, rows), background)
    draw = ImageDraw.Draw(image)
    y = size // 2
    for line in lines:
        draw.text((size // 2, y), line, fill=255, font=font)
        y += int(size * 1.5)
    return np.asarray(image, dtype=np.uint8)


def with_pixel_text(
    ds: Dataset, lines: Sequence[str] = ("Matti Virtanen", REAL), *, size: int = 0
) -> Dataset:
    """The pixel data shows ``lines`` (a name and a code) burned in, white on black."""
    ds.add_new(0x7FE00010, "OB", rendered_text(lines, ds.Rows, ds.Columns, size=size).tobytes())
    return ds


def with_overlay_text(
    ds: Dataset, lines: Sequence[str] = ("Matti Virtanen", REAL), group: int = 0x6000
) -> Dataset:
    """An overlay plane (PS3.3 C.9.2) whose set bits draw ``lines``."""
    bits = rendered_text(lines, ds.Rows, ds.Columns) > 127
    ds.add_new((group << 16) | 0x0010, "US", ds.Rows)
    ds.add_new((group << 16) | 0x0011, "US", ds.Columns)
    ds.add_new((group << 16) | 0x0040, "CS", "G")
    ds.add_new((group << 16) | 0x0050, "SS", [1, 1])
    ds.add_new((group << 16) | 0x0100, "US", 1)
    ds.add_new((group << 16) | 0x0102, "US", 0)
    ds.add_new((group << 16) | 0x3000, "OW", pack_bits(bits.astype(np.uint8).ravel()))
    return ds


GSPS_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"


def traced(lines: Sequence[str], rows: int = 128, columns: int = 480, size: int = 28) -> list[Any]:
    """Graphic objects (POLYLINE, PIXEL units) tracing the outlines of ``lines`` as rendered:
    text a presentation state carries as drawing, not as a text object."""
    import cv2

    image = rendered_text(lines, rows, columns, size=size)
    contours, _ = cv2.findContours(
        (image > 127).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE
    )
    found = []
    for contour in contours:
        points = contour.reshape(-1, 2).astype(float)
        if len(points) < 2:
            continue
        points = np.vstack([points, points[:1]])  # (closed)
        obj = Dataset()
        obj.GraphicAnnotationUnits = "PIXEL"
        obj.GraphicDimensions = 2
        obj.NumberOfGraphicPoints = len(points)
        obj.GraphicData = [float(v) for v in points.ravel()]
        obj.GraphicType = "POLYLINE"
        obj.GraphicFilled = "N"
        found.append(obj)
    return found


def presentation_state(
    image: Dataset | None = None,
    *,
    text: str | None = None,
    drawn: Sequence[str] = (),
) -> Dataset:
    """A Grayscale Softcopy Presentation State (PS3.3 A.33.1) on ``image``, de-identified as
    ``clean`` is, with a graphic annotation layer: a text object reading ``text``, and graphic
    objects tracing ``drawn`` (see ``traced``)."""
    image = image or clean("CT")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = GSPS_CLASS
    ds.SOPInstanceUID = _uid("gsps", image.SOPInstanceUID, text or "", *drawn)
    ds.StudyDate = "20240101"
    ds.Modality = "PR"
    ds.PatientName = DUMMY_NAME
    ds.PatientID = TEST
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Basic Application Confidentiality Profile"
    ds.StudyInstanceUID = image.StudyInstanceUID
    ds.SeriesInstanceUID = _uid("gsps-series", image.SOPInstanceUID)
    ds.StudyID = ""
    ds.SeriesNumber = "98"
    ds.InstanceNumber = "1"
    ds.ContentLabel = "ANNOTATION"  # (creation date and time: Annex E removes them)
    layer = Dataset()
    layer.GraphicLayer = "LAYER1"
    layer.GraphicLayerOrder = 1
    ds.GraphicLayerSequence = DicomSequence([layer])
    reference = Dataset()
    reference.ReferencedSOPClassUID = image.SOPClassUID
    reference.ReferencedSOPInstanceUID = image.SOPInstanceUID
    item = Dataset()
    item.ReferencedImageSequence = DicomSequence([reference])
    item.GraphicLayer = "LAYER1"
    if text is not None:
        obj = Dataset()
        obj.UnformattedTextValue = text
        obj.AnchorPointAnnotationUnits = "PIXEL"
        obj.AnchorPoint = [10.0, 10.0]
        obj.AnchorPointVisibility = "N"
        item.TextObjectSequence = DicomSequence([obj])
    if drawn:
        item.GraphicObjectSequence = DicomSequence(traced(drawn))
    ds.GraphicAnnotationSequence = DicomSequence([item])
    return ds


def compressed(ds: Dataset, syntax: str = RLELossless) -> Dataset:
    """The image compressed in ``syntax`` (RLE Lossless by pydicom's encoder, JPEG 2000
    Lossless by pylibjpeg-openjpeg)."""
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if syntax == JPEG2000Lossless:
        ds.compress(syntax, encoding_plugin="pylibjpeg")
    else:
        ds.compress(syntax)
    return ds


# -- encodings -----------------------------------------------------------------------------------


def _syntax_of(ds: Dataset, syntax: str | None) -> UID:
    if syntax is not None:
        return UID(syntax)
    meta = getattr(ds, "file_meta", None)
    found = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return UID(found) if found else ExplicitVRLittleEndian


def part10(ds: Dataset, syntax: str | None = None) -> bytes:
    """``ds`` as a Part 10 file (preamble, ``DICM``, file meta information) in ``syntax``
    (default: the data set's own, else explicit VR little endian)."""
    uid = _syntax_of(ds, syntax)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = uid
    meta.ImplementationClassUID = _ROOT + ".99"
    ds.file_meta = meta
    out = BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True, implicit_vr=uid == ImplicitVRLittleEndian)
    return out.getvalue()


def bare(ds: Dataset, syntax: str | None = None) -> bytes:
    """``ds`` as a bare data set (no preamble, no file meta) in ``syntax``, as DIMSE sends it."""
    uid = _syntax_of(ds, syntax)
    out = BytesIO()
    fp = DicomFileLike(out)
    fp.is_little_endian = uid != "1.2.840.10008.1.2.2"
    fp.is_implicit_VR = uid == ImplicitVRLittleEndian
    stripped = Dataset({tag: elem for tag, elem in ds.items() if tag.group != 0x0002})
    write_dataset(fp, stripped)
    return out.getvalue()


def dicom_json(ds: Dataset, *, bulk_over: int = 1 << 30) -> bytes:
    """``ds`` in the DICOM JSON model (PS3.18 F.2); values over ``bulk_over`` bytes as
    BulkDataURI references to other parts."""
    text = ds.to_json(
        bulk_data_threshold=bulk_over, bulk_data_element_handler=lambda element: "bulk:1"
    )
    return text.encode("utf-8")


_PN_PARTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def native_xml(ds: Dataset, *, bulk_over: int = 1 << 30) -> bytes:
    """``ds`` in the Native DICOM Model (PS3.19 A.1), built from its JSON model."""
    model = json.loads(dicom_json(ds, bulk_over=bulk_over))
    root = etree.Element("NativeDicomModel", nsmap={None: _NATIVE_NS})
    _xml_attributes(root, model)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


_NATIVE_NS = "http://dicom.nema.org/PS3.19/models/NativeDICOM"


def _xml_attributes(parent: etree._Element, model: dict[str, Any]) -> None:
    for tag in sorted(model):
        attribute = model[tag]
        vr = attribute["vr"]
        el = etree.SubElement(parent, "DicomAttribute", tag=tag, vr=vr)
        name = keyword_for_tag(int(tag, 16))
        if name:
            el.set("keyword", name)
        for number, value in enumerate(attribute.get("Value", []), 1):
            if vr == "SQ":
                _xml_attributes(etree.SubElement(el, "Item", number=str(number)), value)
            elif vr == "PN":
                person = etree.SubElement(el, "PersonName", number=str(number))
                for group in ("Alphabetic", "Ideographic", "Phonetic"):
                    if group in value:
                        holder = etree.SubElement(person, group)
                        for part, text in zip(_PN_PARTS, value[group].split("^"), strict=False):
                            if text:
                                etree.SubElement(holder, part).text = text
            else:
                etree.SubElement(el, "Value", number=str(number)).text = str(value)
        if "InlineBinary" in attribute:
            etree.SubElement(el, "InlineBinary").text = attribute["InlineBinary"]
        if "BulkDataURI" in attribute:
            etree.SubElement(el, "BulkData", uri=attribute["BulkDataURI"])


def content_type(ds: Dataset, syntax: str | None = None) -> str:
    """The content type of ``bare(ds, syntax)``."""
    return f"application/dicom; transfer-syntax={_syntax_of(ds, syntax)}"


# -- scanning ------------------------------------------------------------------------------------

#: The registry of the personal-data tests: Maija Liisa Testinen is TEST.
REGISTRY = Path(__file__).resolve().parent / "fixtures" / "personal" / "registry.toml"
_KEY = b"kanta-guard-test-key-0123456789"


def dicom_policy(text: str = "", **actions: str) -> Policy:
    """A policy (``text`` over the embedded default) with the DICOM rules at their defaults
    unless the catalogue knows them already, and ``actions`` (rule id with ``_`` for ``.``
    after ``dicom``: ``dicom_ocr_incomplete="block"``) set."""
    from kanta_guard.detectors.dicom import DICOM_RULES
    from kanta_guard.model import Action
    from kanta_guard.policy import parse_policy

    policy = parse_policy(text, "<dicom test policy>")
    merged = {**{r.id: r.default for r in DICOM_RULES}, **policy.actions}
    for key, value in actions.items():
        merged[key.replace("dicom_", "dicom.", 1) if key.startswith("dicom_") else key] = Action(
            value
        )
    return replace(policy, actions=MappingProxyType(merged))


def dicom_scanner(
    policy: Policy | None = None,
    *,
    settings: DicomSettings | None = None,
    registry: Registry | None = None,
    engine: OcrEngine | None = None,
) -> Scanner:
    """A scanner with the DICOM parser just before the container parser (where it belongs:
    a Part 10 preamble may hold any container's magic) and the DICOM detector last, every other
    parser and detector as the policy has them."""
    from kanta_guard import KeyedHasher, Scanner
    from kanta_guard.detectors import detectors_for
    from kanta_guard.detectors.dicom import DicomDetector
    from kanta_guard.parsers import PARSERS
    from kanta_guard.parsers.dicom import DicomParser

    policy = policy or dicom_policy()
    settings = settings or DicomSettings()
    others = tuple(d for d in detectors_for(policy, registry) if d.name != "dicom")
    parsers = [p for p in PARSERS if p.name != "dicom"]
    at = next(i for i, p in enumerate(parsers) if p.name == "container")
    parsers.insert(at, DicomParser(settings, engine=engine))
    return Scanner(
        policy,
        KeyedHasher(_KEY),
        parsers=tuple(parsers),
        detectors=(*others, DicomDetector(settings, registry, test_contacts=policy.contacts)),
        registry=registry,
    )


def registry() -> Registry:
    """The personal-data tests' registry (Maija Liisa Testinen under TEST, …)."""
    from kanta_guard.registry import load_registry

    return load_registry(REGISTRY)


# Re-exported for tests: the transfer syntaxes built here.
JPEG2000_LOSSLESS = JPEG2000Lossless
RLE_LOSSLESS = RLELossless
IMPLICIT_LE = ImplicitVRLittleEndian
EXPLICIT_LE = ExplicitVRLittleEndian
