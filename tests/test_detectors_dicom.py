"""Tests for kanta_guard.detectors.dicom: each DICOM rule through ``Scanner.scan_bytes``, in Part
10 files and bare data sets, compressed, in the JSON model, inside a KOS manifest, a RAD-68
MTOM request and a STOW-RS body; with the registry, the policy's dummies, options and safe
private list; evidence masked; and burned-in text read by the real OCR engine where one is
installed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dicomgen
import numpy as np
import pydicom
import pytest
from dicomgen import (
    bare,
    clean,
    compressed,
    content_type,
    dicom_policy,
    dicom_scanner,
    kos,
    part10,
)
from helpers import REAL, REAL_2, TEST
from pydicom.dataset import Dataset

from kanta_guard.detectors.dicom import DICOM_RULES, DicomDetector
from kanta_guard.dicom.profile import Option
from kanta_guard.dicom.settings import DEFAULT_DUMMIES, DicomSettings, OcrMode, SafePrivate
from kanta_guard.model import Action, Context, Field, Report, Role, Verdict

DICOM = "application/dicom"
NO_OCR = DicomSettings(ocr=OcrMode.OFF)


def scan(
    data: bytes,
    kind: str = DICOM,
    *,
    settings: DicomSettings = NO_OCR,
    registry: bool = False,
    engine: Any = None,
    **actions: str,
) -> Report:
    scanner = dicom_scanner(
        dicom_policy(**actions),
        settings=settings,
        registry=dicomgen.registry() if registry else None,
        engine=engine,
    )
    return scanner.scan_bytes(data, kind)


def rules(report: Report) -> set[str]:
    return set(report.rules)


def test_rule_catalogue() -> None:
    """The rule ids and default actions of the contract."""
    assert {r.id: r.default for r in DICOM_RULES} == {
        "dicom.identifying": Action.BLOCK,
        "dicom.private": Action.BLOCK,
        "dicom.burned_in": Action.BLOCK,
        "dicom.ocr_text": Action.WARN,
        "dicom.ocr_incomplete": Action.WARN,
        "dicom.not_deidentified": Action.WARN,
    }
    detector = DicomDetector()
    assert {r.id for r in detector.rules} == {*(r.id for r in DICOM_RULES), "unscannable"}
    assert detector.screen(b"anything") == frozenset()
    assert list(detector.detect(Field(REAL, Context(Role.PATIENT), "x"))) == []


@pytest.mark.parametrize("kind", ["CT", "MR", "US", "SC"])
@pytest.mark.parametrize("form", ["part10", "bare"])
def test_clean_images_pass(kind: str, form: str) -> None:
    """A clean anonymised image of each kind passes, as a file and as a bare data set."""
    ds = clean(kind)
    data, declared = (part10(ds), DICOM) if form == "part10" else (bare(ds), content_type(ds))
    report = scan(data, declared)
    assert report.verdict is Verdict.PASS, report.findings


def test_clean_kos_passes() -> None:
    """A clean Key Object Selection manifest passes."""
    assert scan(part10(kos(clean("CT"), clean("MR")))).verdict is Verdict.PASS


VARIANTS: list[tuple[str, Callable[[Dataset], Dataset], set[str]]] = [
    ("code in PatientID", dicomgen.with_code_in_patient_id, {"hetu.real", "dicom.identifying"}),
    (
        "code in OtherPatientIDsSequence",
        dicomgen.with_code_in_other_ids,
        {"hetu.real", "dicom.identifying"},
    ),
    ("code in a private tag", dicomgen.with_code_in_private, {"hetu.real", "dicom.private"}),
    ("code in a nested sequence", dicomgen.with_code_in_nested_sequence, {"hetu.real"}),
    ("real-looking name", dicomgen.with_name, {"name.unregistered", "dicom.identifying"}),
    ("address", dicomgen.with_address, {"address.personal", "dicom.identifying"}),
    ("telephone number", dicomgen.with_phone, {"phone.personal", "dicom.identifying"}),
    ("burned-in YES", dicomgen.with_burned_in, {"dicom.burned_in"}),
]


@pytest.mark.parametrize(("name", "variant", "expected"), VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("form", ["part10", "bare implicit", "json", "kos"])
def test_each_rule(
    name: str, variant: Callable[[Dataset], Dataset], expected: set[str], form: str
) -> None:
    """Each variant fires its rules (and blocks), in a file, a bare implicit-VR data set, the
    JSON model and a KOS manifest."""
    if form == "kos":
        if name == "burned-in YES":
            pytest.skip("a KOS has no pixels")
        ds = variant(kos())
    else:
        ds = variant(clean())
    if form == "bare implicit":
        report = scan(bare(ds, dicomgen.IMPLICIT_LE), content_type(ds, dicomgen.IMPLICIT_LE))
    elif form == "json":
        report = scan(dicomgen.dicom_json(ds), "application/dicom+json")
    else:
        report = scan(part10(ds))
    assert rules(report) == expected
    assert report.verdict is Verdict.BLOCK


def test_evidence_is_masked() -> None:
    """No finding shows the code, the name, the address or the number it is about."""
    secrets = (REAL, REAL[:6], "Virtanen", "Matti", "Mannerheimintie", "7654321", "40 765")
    for _, variant, _ in VARIANTS:
        report = scan(part10(variant(clean())))
        for finding in report.findings:
            shown = f"{finding.location} {finding.evidence} {finding.explanation}"
            assert not any(secret in shown for secret in secrets), shown


def test_burned_in_where_common() -> None:
    """Burned In Annotation absent blocks on secondary capture and ultrasound, not on CT; any
    value but NO blocks everywhere; an object without pixels is not judged."""
    assert rules(scan(part10(dicomgen.with_burned_in(clean("SC"), None)))) == {"dicom.burned_in"}
    assert rules(scan(part10(dicomgen.with_burned_in(clean("US"), None)))) == {"dicom.burned_in"}
    assert scan(part10(dicomgen.with_burned_in(clean("CT"), None))).verdict is Verdict.PASS
    assert rules(scan(part10(dicomgen.with_burned_in(clean("CT"), "MAYBE")))) == {"dicom.burned_in"}
    assert "dicom.burned_in" not in rules(scan(part10(kos())))


@pytest.mark.parametrize(
    ("change", "explains"),
    [
        (lambda ds: setattr(ds, "PatientIdentityRemoved", "NO"), "is not YES"),
        (lambda ds: delattr(ds, "PatientIdentityRemoved"), "absent"),
        (
            lambda ds: (
                delattr(ds, "DeidentificationMethod"),
                delattr(ds, "DeidentificationMethodCodeSequence"),
            ),
            "says how",
        ),
    ],
)
def test_not_deidentified(change: Callable[[Dataset], object], explains: str) -> None:
    """Patient Identity Removed not YES, or YES without saying how: a warning."""
    ds = clean()
    change(ds)
    report = scan(part10(ds))
    assert rules(report) == {"dicom.not_deidentified"}
    assert report.verdict is Verdict.WARN
    assert explains in report.findings[0].explanation


def test_query_identifiers() -> None:
    """A C-FIND identifier (no SOP class: a query) is not judged as an instance; its universal
    match is no value; a name searched for is."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "*"
    query.PatientID = ""
    query.StudyInstanceUID = ""
    data = bare(query, dicomgen.IMPLICIT_LE)
    kind = content_type(query, dicomgen.IMPLICIT_LE)
    assert scan(data, kind).verdict is Verdict.PASS
    query.PatientName = "Virtanen*"
    assert "dicom.identifying" in rules(scan(bare(query, dicomgen.IMPLICIT_LE), kind))


def test_tiff_preamble_is_still_dicom() -> None:
    """A Part 10 file whose free-form preamble is a TIFF header (a dual-personality file) is
    judged as DICOM (the DICOM parser must claim it before the container parser does)."""
    data = bytearray(part10(dicomgen.with_burned_in(clean())))
    data[:8] = b"II*\0\x08\0\0\0"
    assert rules(scan(bytes(data))) == {"dicom.burned_in"}


def test_registered_identity_passes() -> None:
    """With the registry, a registered test identity's name, code, phone and address pass the
    identifying-attribute rule; a real-looking name on a registered code does not."""
    ds = clean(name=dicomgen.REGISTERED_NAME)
    ds.PatientTelephoneNumbers = "+358 40 1234567"
    ds.PatientAddress = "Testikatu 1 A 2, 00100 Helsinki"
    ds.OtherPatientIDs = "040594V9030"  # (another registered independent-testing code)
    assert scan(part10(ds), registry=True).verdict is Verdict.PASS
    report = scan(part10(dicomgen.with_name(clean())), registry=True)
    assert rules(report) == {"name.mismatch", "dicom.identifying"}
    # Without the registry the name and contacts cannot be shown to be test data.
    assert "dicom.identifying" in rules(scan(part10(ds)))


def test_test_code_without_registry() -> None:
    """A 900-series code is a test value for this rule; the registry rules judge it."""
    ds = clean(patient_id="020516C903K")
    assert scan(part10(ds)).verdict is Verdict.PASS
    assert "registry.unknown_code" in rules(
        scan(part10(clean(patient_id="030594W903B")), registry=True)
    )


def test_dummies_options_and_keep() -> None:
    """A description is identifying under the Basic Profile; the Clean Descriptors option, a
    listed dummy or the policy's keep list lets it stand (the text rules still read it)."""
    ds = clean()
    ds.StudyDescription = "Pään TT"
    ds.AccessionNumber = "XXXX"
    assert rules(scan(part10(ds))) == {"dicom.identifying"}
    settings = DicomSettings(
        ocr=OcrMode.OFF,
        options=frozenset({Option.CLEAN_DESCRIPTORS}),
        dummies=DEFAULT_DUMMIES | {"xxxx"},
    )
    assert scan(part10(ds), settings=settings).verdict is Verdict.PASS
    keep = DicomSettings(ocr=OcrMode.OFF, keep=frozenset({0x00081030, 0x00080050}))
    assert scan(part10(ds), settings=keep).verdict is Verdict.PASS
    ds.StudyDescription = f"Potilas {REAL}"
    assert "hetu.real" in rules(scan(part10(ds), settings=settings))


def test_non_text_values() -> None:
    """A date the profile zeroes is no finding (the dummy cannot be told from the original); one
    it removes is; so is a removed sequence with items."""
    ds = clean()
    ds.StudyDate = "20240229"  # Z
    ds.PatientSex = "F"  # Z
    assert scan(part10(ds)).verdict is Verdict.PASS
    ds.PatientBirthTime = "101500"  # X
    ds.PatientAge = "042Y"  # X (kept by Retain Patient Characteristics)
    report = scan(part10(ds))
    assert [f.location for f in report.findings] == [
        "(0010,0032)PatientBirthTime",
        "(0010,1010)PatientAge",
    ]
    options = DicomSettings(
        ocr=OcrMode.OFF,
        options=frozenset({Option.RETAIN_PATIENT_CHARACTERISTICS}),
    )
    assert [f.location for f in scan(part10(ds), settings=options).findings] == [
        "(0010,0032)PatientBirthTime"
    ]


def test_private_safe_list() -> None:
    """Private attributes block, one finding per block, unless the policy holds them safe;
    their text is judged all the same."""
    ds = dicomgen.with_private(clean(), "KANTA TEST 1.0", [f"arvo {n}" for n in range(8)])
    report = scan(part10(ds))
    assert [f.rule for f in report.findings] == ["dicom.private"]
    finding = report.findings[0]
    assert finding.evidence == "KANTA TEST 1.0 (0019,xxxx)"
    assert "8 private attribute(s)" in finding.explanation and "and 2 more" in finding.explanation
    safe = DicomSettings(
        ocr=OcrMode.OFF,
        safe_private=frozenset(SafePrivate("KANTA TEST 1.0", 0x0019, 0x10 + n) for n in range(8)),
    )
    assert scan(part10(ds), settings=safe).verdict is Verdict.PASS
    coded = dicomgen.with_code_in_private(clean())
    one = DicomSettings(
        ocr=OcrMode.OFF, safe_private=frozenset({SafePrivate("KANTA TEST 1.0", 0x0019, 0x10)})
    )
    assert rules(scan(part10(coded), settings=one)) == {"hetu.real"}


def test_manifest_in_rad68_and_stow() -> None:
    """A KOS manifest in an MTOM/XOP SOAP request (RAD-68) and DICOM parts of a STOW-RS body
    are read as DICOM: their codes are found where they stand."""
    manifest = part10(dicomgen.with_code_in_patient_id(kos()))
    body = (
        b"--MIME\r\nContent-Type: application/xop+xml; charset=UTF-8; "
        b'type="application/soap+xml"\r\nContent-ID: <root>\r\n\r\n'
        b'<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body><Document>'
        b'<Include xmlns="http://www.w3.org/2004/08/xop/include" href="cid:kos"/>'
        b"</Document></Body></Envelope>\r\n"
        b"--MIME\r\nContent-Type: application/dicom\r\nContent-ID: <kos>\r\n\r\n"
        + manifest
        + b"\r\n--MIME--\r\n"
    )
    mtom = 'multipart/related; type="application/xop+xml"; boundary=MIME'
    report = scan(body, mtom)
    assert ("hetu.real", "part[2]:(0010,0020)PatientID") in {
        (f.rule, f.location) for f in report.findings
    }
    stow = b""
    for ds in (clean("CT"), dicomgen.with_code_in_private(clean("MR", seed="2"))):
        stow += b"--S\r\nContent-Type: application/dicom\r\n\r\n" + part10(ds) + b"\r\n"
    report = scan(stow + b"--S--\r\n", 'multipart/related; type="application/dicom"; boundary=S')
    assert {(f.rule, f.location) for f in report.findings} == {
        ("hetu.real", "part[2]:(0019,1010)"),
        ("dicom.private", "part[2]:(0019,1010)"),
    }


def test_encapsulated_cda() -> None:
    """A CDA inside DICOM is read as XML: a code in it is found."""
    ds = clean()
    del ds.PixelData
    ds.MIMETypeOfEncapsulatedDocument = "text/xml"
    ds.EncapsulatedDocument = (
        f'<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
        f'<id root="1.2.246.21" extension="{REAL}"/></patientRole></recordTarget>'
        f"</ClinicalDocument>"
    ).encode()
    report = scan(part10(ds))
    assert [(f.rule, f.location.split(":")[0]) for f in report.findings] == [
        ("hetu.real", "(0042,0011)EncapsulatedDocument")
    ]


# -- OCR with a stub engine: the rules, not OCR ---------------------------------------------


@dataclass(frozen=True)
class StubText:
    text: str
    complete: bool = True
    engine: str = "stub"
    seconds: float = 0.0
    note: str = ""


class StubEngine:
    """Reads ``text`` in every frame."""

    def __init__(self, text: str, complete: bool = True) -> None:
        self.text, self.complete = text, complete

    def frames_of(self, ds: pydicom.Dataset, max_frames: int) -> Iterator[Any]:
        yield np.zeros((2, 2), np.uint8)

    def overlays_of(self, ds: pydicom.Dataset) -> Iterator[tuple[int, Any]]:
        return iter(())

    def read_image_text(self, image: Any, *, budget_s: float = 1.0) -> StubText:
        return StubText(self.text, self.complete, note="" if self.complete else "out of time")


def test_ocr_text_where_none_is_expected() -> None:
    """Text on a CT (OCR reading every image) is a warning; on a secondary capture it is not;
    a code in it fires its own rule, located in the OCR text."""
    all_images = DicomSettings(ocr=OcrMode.ALL)
    report = scan(part10(clean("CT")), settings=all_images, engine=StubEngine("L R 5 cm"))
    assert rules(report) == {"dicom.ocr_text"} and report.verdict is Verdict.WARN
    assert report.findings[0].evidence == "8 characters"
    assert scan(
        part10(clean("SC")), settings=all_images, engine=StubEngine("L R 5 cm")
    ).verdict is (Verdict.PASS)
    assert scan(part10(clean("CT")), settings=all_images, engine=StubEngine("L")).verdict is (
        Verdict.PASS  # (too little to be text)
    )
    report = scan(part10(clean("SC")), settings=all_images, engine=StubEngine(f"Potilas {REAL}"))
    assert [(f.rule, f.location) for f in report.findings] == [
        ("hetu.real", "(7FE0,0010)PixelData[1]!ocr:line 1")
    ]


def test_ocr_incomplete() -> None:
    """OCR that could not read an image whole warns; blocks where the policy raises the rule;
    is unscannable where the settings say incomplete OCR blocks."""
    engine = StubEngine("", complete=False)
    settings = DicomSettings()
    report = scan(part10(clean("SC")), settings=settings, engine=engine)
    assert rules(report) == {"dicom.ocr_incomplete"} and report.verdict is Verdict.WARN
    assert report.findings[0].explanation.startswith("out of time (stub")
    raised = scan(
        part10(clean("SC")), settings=settings, engine=engine, dicom_ocr_incomplete="block"
    )
    assert raised.verdict is Verdict.BLOCK
    blocks = DicomSettings(incomplete_blocks=True)
    report = scan(part10(clean("SC")), settings=blocks, engine=engine)
    assert rules(report) == {"unscannable"} and report.verdict is Verdict.BLOCK


# -- OCR with the real engine ------------------------------------------------------------------


def _real_engine() -> None:
    imaging = pytest.importorskip("kanta_guard.imaging")
    if not imaging.available_engines():
        pytest.skip("no OCR engine installed")


#: A budget no loaded test machine runs out of: these tests are about what is found.
GENEROUS = DicomSettings(ocr_budget_s=20.0)


@pytest.mark.parametrize(
    "syntax", [dicomgen.EXPLICIT_LE, dicomgen.RLE_LOSSLESS, dicomgen.JPEG2000_LOSSLESS]
)
@pytest.mark.parametrize("form", ["part10", "bare"])
def test_burned_in_text_is_read(syntax: str, form: str) -> None:
    """A code burned into the pixels is found by OCR, uncompressed and in two compressed
    transfer syntaxes, in a file and in a bare data set."""
    _real_engine()
    ds = dicomgen.with_pixel_text(clean("SC", rows=128, columns=320), size=22)
    if syntax != dicomgen.EXPLICIT_LE:
        ds = compressed(ds, syntax)
    data, kind = (
        (part10(ds), DICOM) if form == "part10" else (bare(ds, syntax), content_type(ds, syntax))
    )
    report = scan(data, kind, settings=GENEROUS)
    found = {(f.rule, f.location.split(":")[0]) for f in report.findings}
    assert ("hetu.real", "(7FE0,0010)PixelData[1]!ocr") in found, report.findings
    assert report.verdict is Verdict.BLOCK


def test_overlay_text_is_read() -> None:
    """A code drawn in an overlay plane is found (with Clean Graphics: the overlay itself may
    stand)."""
    _real_engine()
    ds = dicomgen.with_overlay_text(clean("CT", rows=128, columns=320), lines=("Potilas", REAL_2))
    settings = DicomSettings(ocr_budget_s=20.0, options=frozenset({Option.CLEAN_GRAPHICS}))
    report = scan(part10(ds), settings=settings)
    assert [(f.rule, f.location.split(":")[0]) for f in report.findings] == [
        ("hetu.real", "(6000,3000)OverlayData!ocr")
    ]


def test_undecodable_pixels_are_unscannable() -> None:
    """Compressed pixel data that does not decode cannot be read for OCR: unscannable."""
    _real_engine()
    ds = compressed(clean("SC", rows=64, columns=64), dicomgen.JPEG2000_LOSSLESS)
    data = bytearray(part10(ds))
    codestream = bytes(data).rindex(b"\xff\x4f\xff\x51")  # the JPEG 2000 codestream's start
    data[codestream + 40 : codestream + 80] = b"\x00" * 40
    report = scan(bytes(data), settings=GENEROUS)
    assert rules(report) == {"unscannable"}
    assert TEST not in report.findings[0].explanation


@pytest.mark.parametrize("ocr", [OcrMode.OFF, OcrMode.ON])
def test_presentation_state_text_object(ocr: OcrMode) -> None:
    """A presentation state's text object is text (read whatever OCR does); a clean one passes."""
    assert scan(part10(dicomgen.presentation_state())).verdict is Verdict.PASS
    report = scan(
        part10(dicomgen.presentation_state(text=f"Potilas {REAL}")),
        settings=DicomSettings(ocr=ocr, ocr_budget_s=20.0),
    )
    assert [(f.rule, f.location) for f in report.findings] == [
        (
            "hetu.real",
            "(0070,0001)GraphicAnnotationSequence[1]/(0070,0008)TextObjectSequence[1]"
            "/(0070,0006)UnformattedTextValue",
        )
    ]


def test_presentation_state_graphics_are_drawn_and_read() -> None:
    """Text traced as polylines in a presentation state's graphic annotation is drawn and read by
    OCR (found attacking issue 10: graphic objects were not rendered, so a name and a code
    drawn so passed); drawing without text passes."""
    _real_engine()
    drawn = dicomgen.presentation_state(drawn=("Matti Virtanen", REAL))
    report = scan(part10(drawn), settings=GENEROUS)
    found = {(f.rule, f.location.split(":")[0]) for f in report.findings}
    assert ("hetu.real", "(0070,0001)GraphicAnnotationSequence[1]!ocr") in found, found
    assert report.verdict is Verdict.BLOCK
    assert scan(part10(drawn), settings=NO_OCR).verdict is Verdict.PASS  # (OCR off: not read)
    arrow = dicomgen.presentation_state(drawn=("->",))
    assert scan(part10(arrow), settings=GENEROUS).verdict is Verdict.PASS


def _pn_ideographic(ds: Dataset) -> Dataset:
    ds.PatientName = "ANONYMIZED=Virtanen^Matti=Virtanen^Matti"
    return ds


def _iso_2022_ir_87(ds: Dataset) -> Dataset:
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "ANONYMIZED=山田^太郎"
    return ds


def _latin1_code(ds: Dataset) -> Dataset:
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDescription = f"Mäkelä {REAL}"
    return ds


def _private_nested(ds: Dataset) -> Dataset:
    inner = Dataset()
    inner.TextValue = f"x {REAL}"
    item = Dataset()
    item.ContentSequence = pydicom.Sequence([inner])
    ds.private_block(0x0029, "ACME 1.0", create=True).add_new(0x10, "SQ", pydicom.Sequence([item]))
    return ds


ATTACKS: list[tuple[str, Callable[[Dataset], Dataset], str]] = [
    ("a name in the ideographic and phonetic groups", _pn_ideographic, "name.unregistered"),
    ("a name in ISO 2022 IR 87", _iso_2022_ir_87, "dicom.identifying"),
    ("a code in ISO_IR 100 text", _latin1_code, "hetu.real"),
    ("a code in a sequence inside a private sequence", _private_nested, "hetu.real"),
]


@pytest.mark.parametrize(("name", "variant", "rule"), ATTACKS, ids=[a[0] for a in ATTACKS])
@pytest.mark.parametrize("form", ["part10", "bare implicit"])
def test_careless_sender_attacks(
    name: str, variant: Callable[[Dataset], Dataset], rule: str, form: str
) -> None:
    """Ways a careless system sends a real name or code (the issue 10 audit's attacks); the
    code in a private sequence is found even with that private attribute on the safe list."""
    ds = variant(clean())
    data, kind = (
        (part10(ds), DICOM)
        if form == "part10"
        else (bare(ds, dicomgen.IMPLICIT_LE), content_type(ds, dicomgen.IMPLICIT_LE))
    )
    safe = DicomSettings(
        ocr=OcrMode.OFF, safe_private=frozenset({SafePrivate("ACME 1.0", 0x0029, 0x10)})
    )
    report = scan(data, kind, settings=safe)
    assert rule in report.rules and report.verdict is Verdict.BLOCK, report.findings


def test_text_burned_into_a_jpeg_baseline_ultrasound_is_read() -> None:
    """Lossy JPEG (Pillow-encoded, as a screen grabber writes it) of an ultrasound frame with a
    code burned in: decoded and read."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate

    _real_engine()
    ds = dicomgen.with_pixel_text(clean("US", rows=128, columns=320), ("Potilas", REAL), size=22)
    out = io.BytesIO()
    Image.fromarray(np.frombuffer(ds.PixelData, np.uint8).reshape(128, 320)).save(
        out, format="JPEG", quality=90
    )
    ds.PixelData = encapsulate([out.getvalue()])
    ds["PixelData"].VR = "OB"
    report = scan(part10(ds, "1.2.840.10008.1.2.4.50"), settings=GENEROUS)
    assert "hetu.real" in report.rules and report.verdict is Verdict.BLOCK
