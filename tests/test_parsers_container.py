"""Tests of the container parser: zip, docx, xlsx, odt, tar, gzip/bzip2/xz/zstd/br, PDF and image
metadata, each with a real code blocked and a test code passed, identified by bytes and label;
bombs, encrypted, corrupt and too deep containers unscannable; ``kanta-guard scan`` on files."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import brotli
import pytest
from helpers import REAL, TEST, b64, code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from kanta_guard import KeyedHasher, Scanner
from kanta_guard.cli import main
from kanta_guard.idcode import reveals_code
from kanta_guard.model import Action, Request, Verdict
from kanta_guard.policy import parse_policy

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd

# -- builders -------------------------------------------------------------------------------------


def zip_of(files: dict[str, str | bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive of the given members."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def tar_of(files: dict[str, str | bytes]) -> bytes:
    """An uncompressed ustar archive of the given members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def docx(text: str) -> bytes:
    """A minimal Office Open XML word-processing package (ECMA-376) with ``text`` in it."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    return zip_of(
        {
            "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/'
            '2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
            "word/document.xml": f'<w:document xmlns:w="{w}"><w:body><w:p><w:r><w:t>{text}'
            "</w:t></w:r></w:p></w:body></w:document>",
        }
    )


def xlsx(text: str) -> bytes:
    """A minimal spreadsheet package with ``text`` in its shared strings."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    return zip_of({"xl/sharedStrings.xml": f'<sst xmlns="{main}"><si><t>{text}</t></si></sst>'})


def odt(text: str) -> bytes:
    """A minimal OpenDocument text (ISO/IEC 26300): mimetype stored first, then content.xml."""
    ns = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr(
            "content.xml",
            f'<office xmlns:text="{ns}"><text:p>{text}</text:p></office>',
            zipfile.ZIP_DEFLATED,
        )
    return out.getvalue()


def gzip_named(name: str) -> bytes:
    """A gzip stream whose header holds ``name`` as the original file name (RFC 1952 FNAME)."""
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=0) as stream:
        stream.write(b"sisalto")
    return out.getvalue()


def pdf(
    text: str = "",
    *,
    metadata: dict[str, str] | None = None,
    field: str | None = None,
    attachment: tuple[str, bytes] | None = None,
    password: str | None = None,
    pages: int = 1,
) -> bytes:
    """A PDF whose pages show ``text`` in a Flate-compressed content stream, with optional
    metadata, a text form field, an embedded file and encryption."""
    writer = PdfWriter()
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        fonts = DictionaryObject({NameObject("/F1"): writer._add_object(font)})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page.compress_content_streams()
    if metadata:
        writer.add_metadata(metadata)
    if field is not None:
        widget = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Widget"),
                NameObject("/FT"): NameObject("/Tx"),
                NameObject("/T"): TextStringObject("henkilotunnus"),
                NameObject("/V"): TextStringObject(field),
                NameObject("/Rect"): ArrayObject([NumberObject(0)] * 4),
            }
        )
        ref = writer._add_object(widget)
        writer.pages[0][NameObject("/Annots")] = ArrayObject([ref])
        writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
            {NameObject("/Fields"): ArrayObject([ref])}
        )
    if attachment is not None:
        writer.add_attachment(*attachment)
    if password is not None:
        writer.encrypt(password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def jpeg(
    *,
    exif: dict[int, str | bytes] | None = None,
    comment: bytes | None = None,
    xmp: bytes | None = None,
    iptc: bytes | None = None,
) -> bytes:
    """An 8x8 JPEG with EXIF tags (UserComment goes in the Exif IFD), a COM comment, an XMP
    packet and an IPTC caption (2:120, in a Photoshop APP13 segment) as given."""
    image = Image.new("RGB", (8, 8), "white")
    tags = Image.Exif()
    for tag, value in (exif or {}).items():
        if tag == 0x9286:
            tags.get_ifd(0x8769)[tag] = value
        else:
            tags[tag] = value
    out = io.BytesIO()
    if comment is not None and xmp is not None:
        image.save(out, "JPEG", exif=tags, comment=comment, xmp=xmp)
    elif comment is not None:
        image.save(out, "JPEG", exif=tags, comment=comment)
    elif xmp is not None:
        image.save(out, "JPEG", exif=tags, xmp=xmp)
    else:
        image.save(out, "JPEG", exif=tags)
    data = out.getvalue()
    if iptc is not None:
        record = b"\x1c\x02\x78" + len(iptc).to_bytes(2, "big") + iptc
        resource = b"8BIM\x04\x04\x00\x00" + len(record).to_bytes(4, "big") + record
        resource += b"\x00" * (len(record) % 2)
        segment = b"Photoshop 3.0\x00" + resource
        data = data[:2] + b"\xff\xed" + (len(segment) + 2).to_bytes(2, "big") + segment + data[2:]
    return data


def png(
    *,
    text: str | None = None,
    ztxt: str | None = None,
    itxt: str | None = None,
    xmp: str | None = None,
) -> bytes:
    """An 8x8 PNG with tEXt, zTXt, compressed iTXt and XMP (iTXt) chunks as given."""
    info = PngImagePlugin.PngInfo()
    if text is not None:
        info.add_text("Comment", text)
    if ztxt is not None:
        info.add_text("Description", ztxt, zip=True)
    if itxt is not None:
        info.add_itxt("Author", itxt, zip=True)
    if xmp is not None:
        info.add_itxt("XML:com.adobe.xmp", xmp)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def xmp(creator: str) -> str:
    """An XMP packet (ISO 16684-1) naming ``creator``."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="{creator}"/></rdf:RDF>'
        "</x:xmpmeta>"
    )


# -- a code in every place a container holds one ------------------------------------------------

PDF_B64 = "application/pdf"


def multipart_pdf(code_text: str) -> tuple[bytes, str]:
    """A form-data upload with the PDF as a Base64-encoded part (RFC 7578, RFC 2045 §6.8)."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="liite"; filename="lausunto.pdf"\r\n'
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64(pdf(f"Potilas {code_text}")).encode()
        + b"\r\n--b--\r\n"
    )
    return body, "multipart/form-data; boundary=b"


def cda_non_xml(code_text: str) -> tuple[bytes, str]:
    """A CDA R2 document whose body is a PDF (nonXMLBody, text mediaType + B64; CDA R2 §4.3.3)."""
    text = b64(pdf(f"Lausunto {code_text}"))
    doc = (
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody>'
        f'<text mediaType="application/pdf" representation="B64">{text}</text>'
        "</nonXMLBody></component></ClinicalDocument>"
    )
    return doc.encode(), "application/xml"


def fhir_attachment(code_text: str) -> tuple[bytes, str]:
    """A FHIR R4 DocumentReference whose Attachment carries a PDF (contentType, data)."""
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [
            {"attachment": {"contentType": "application/pdf", "data": b64(pdf(code_text))}}
        ],
    }
    return json.dumps(resource).encode(), "application/fhir+json"


# (name, build(code) -> (body, content type or None), where the code is reported)
PLACES: list[tuple[str, Callable[[str], tuple[bytes, str | None]], str]] = [
    ("zip member", lambda c: (zip_of({"a.txt": f"hetu {c}"}), "application/zip"), "!zip:a.txt"),
    ("zip member, stored", lambda c: (zip_of({"a.txt": c}, zipfile.ZIP_STORED), None), "!zip:"),
    ("zip member name", lambda c: (zip_of({f"{c}.txt": "x"}), "application/zip"), "#name"),
    ("zip labelled text/plain", lambda c: (zip_of({"a.txt": c}), "text/plain"), "!zip:a.txt"),
    ("zip labelled JSON", lambda c: (zip_of({"a.txt": c}), "application/json"), "!zip:a.txt"),
    ("zip bzip2 member", lambda c: (zip_of({"a.txt": c}, zipfile.ZIP_BZIP2), None), "!zip:"),
    ("zip lzma member", lambda c: (zip_of({"a.txt": c}, zipfile.ZIP_LZMA), None), "!zip:"),
    (
        "docx document.xml",
        lambda c: (
            docx(c),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        "!zip:word/document.xml:/document/body/p/r/t/text()",
    ),
    ("xlsx shared strings", lambda c: (xlsx(c), None), "!zip:xl/sharedStrings.xml"),
    ("odt content.xml", lambda c: (odt(c), "application/vnd.oasis.opendocument.text"), "content"),
    ("tar member", lambda c: (tar_of({"a.txt": c}), "application/x-tar"), "!tar:a.txt"),
    ("tar sniffed", lambda c: (tar_of({"d/b.xml": f"<a>{c}</a>"}), None), "!tar:d/b.xml"),
    ("tar.gz", lambda c: (gzip.compress(tar_of({"a.txt": c})), None), "!gzip!tar:a.txt"),
    ("gzip body", lambda c: (gzip.compress(c.encode()), "application/gzip"), "!gzip"),
    ("x-gzip body", lambda c: (gzip.compress(c.encode()), "application/x-gzip"), "!gzip"),
    ("bzip2 body", lambda c: (bz2.compress(c.encode()), "application/x-bzip2"), "!bzip2"),
    ("xz body", lambda c: (lzma.compress(c.encode()), "application/x-xz"), "!xz"),
    ("zstd body", lambda c: (zstd.compress(c.encode()), "application/zstd"), "!zstd"),
    ("brotli body", lambda c: (brotli.compress(c.encode()), "application/x-brotli"), "!br"),
    ("gzip sniffed", lambda c: (gzip.compress(f"<a>{c}</a>".encode()), None), "!gzip"),
    (
        "zip in zip",
        lambda c: (zip_of({"inner.zip": zip_of({"b.json": json.dumps({"a": c})})}), None),
        "!zip:inner.zip!zip:b.json:/a",
    ),
    ("pdf page text (Flate)", lambda c: (pdf(f"Potilas {c}"), PDF_B64), "!pdf:page[1]"),
    ("pdf page sniffed", lambda c: (pdf(f"Potilas {c}"), "application/octet-stream"), "page[1]"),
    ("pdf second page", lambda c: (pdf(c, pages=2), PDF_B64), "!pdf:page[1]"),
    ("pdf metadata", lambda c: (pdf(metadata={"/Author": c}), PDF_B64), "!pdf:metadata/Author"),
    ("pdf form field", lambda c: (pdf(field=c), PDF_B64), "!pdf:field[henkilotunnus]/V"),
    (
        "pdf embedded file",
        lambda c: (pdf(attachment=("huom.txt", f"x {c}".encode())), PDF_B64),
        "/stream",
    ),
    ("pdf in multipart, Base64", multipart_pdf, "part[1]!pdf:page[1]"),
    ("pdf as CDA nonXMLBody", cda_non_xml, "!base64!pdf:page[1]"),
    ("pdf as FHIR Attachment", fhir_attachment, "/data!base64!pdf:page[1]"),
    (
        "jpeg EXIF UserComment",
        lambda c: (jpeg(exif={0x9286: b"ASCII\0\0\0" + c.encode()}), "image/jpeg"),
        "!exif:Exif/UserComment",
    ),
    (
        "jpeg EXIF UserComment UTF-16",
        lambda c: (jpeg(exif={0x9286: b"UNICODE\0" + c.encode("utf-16-be")}), None),
        "!exif:Exif/UserComment",
    ),
    (
        "jpeg EXIF ImageDescription",
        lambda c: (jpeg(exif={0x010E: f"kuva {c}"}), "image/jpeg"),
        "!exif:ImageDescription",
    ),
    ("jpeg EXIF Artist", lambda c: (jpeg(exif={0x013B: c}), None), "!exif:Artist"),
    ("jpeg comment", lambda c: (jpeg(comment=c.encode()), "image/jpeg"), "!jpeg:comment"),
    ("jpeg XMP", lambda c: (jpeg(xmp=xmp(c).encode()), "image/jpeg"), "!jpeg:xmp:"),
    ("jpeg IPTC caption", lambda c: (jpeg(iptc=c.encode()), "image/jpeg"), "!iptc:2:120"),
    ("png tEXt", lambda c: (png(text=c), "image/png"), "!png:tEXt/Comment"),
    ("png zTXt", lambda c: (png(ztxt=c), "image/png"), "!png:zTXt/Description"),
    ("png iTXt compressed", lambda c: (png(itxt=c), None), "!png:iTXt/Author"),
    ("png XMP", lambda c: (png(xmp=xmp(c)), "image/png"), "!png:iTXt/XML:com.adobe.xmp/xmp"),
    ("jpeg with a zip after it", lambda c: (jpeg() + zip_of({"a.txt": c}), None), "!zip:a.txt"),
    (
        "pdf with a stored zip after it",
        lambda c: (pdf("x") + zip_of({"a.txt": c}, zipfile.ZIP_STORED), None),
        "!zip:a.txt",
    ),
    ("gzip header file name", lambda c: (gzip_named(c), None), "!raw:"),
]


@pytest.mark.parametrize(("name", "build", "where"), PLACES, ids=[p[0] for p in PLACES])
def test_real_code_in_container_is_blocked(
    scanner: Scanner, name: str, build: Callable[[str], tuple[bytes, str | None]], where: str
) -> None:
    """A real code anywhere a container holds one is blocked and reported where it is (the
    container's raw bytes may report it again where the screen cannot rule them out)."""
    body, content_type = build(REAL)
    report = scanner.scan_bytes(body, content_type)
    assert report.verdict is Verdict.BLOCK, report.as_dict()
    assert {f.rule for f in report.findings} == {"hetu.real"}, report.as_dict()
    assert any(where in f.location for f in report.findings), report.as_dict()
    assert not reveals_code(json.dumps(report.as_dict())), report.as_dict()


@pytest.mark.parametrize(("name", "build", "where"), PLACES, ids=[p[0] for p in PLACES])
def test_test_code_in_container_passes(
    scanner: Scanner, name: str, build: Callable[[str], tuple[bytes, str | None]], where: str
) -> None:
    """The same container with a 900-series code passes."""
    body, content_type = build(TEST)
    report = scanner.scan_bytes(body, content_type)
    assert report.verdict is Verdict.PASS, report.as_dict()


def test_request_with_zip_upload_is_blocked(scanner: Scanner) -> None:
    """A whole request (Scanner.scan) carrying a zip body is read down to its member."""
    request = Request(
        "POST", "/upload", (("Content-Type", "application/zip"),), docx(REAL), "kanta.test"
    )
    report = scanner.scan(request)
    assert report.verdict is Verdict.BLOCK
    assert report.findings[0].location.startswith("body!zip:word/document.xml")


# -- what cannot be read is refused -------------------------------------------------------------


def small(**limits: int) -> Scanner:
    """A scanner with the given limits (the rest default)."""
    text = "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items())
    return Scanner(parse_policy(text), KeyedHasher(b"k" * 16))


def nested_zips(depth: int, content: str) -> bytes:
    """A zip in a zip … ``depth`` archives deep."""
    data: str | bytes = content
    for _ in range(depth):
        data = zip_of({"inner.zip" if isinstance(data, bytes) else "a.txt": data})
    return data if isinstance(data, bytes) else data.encode()


def encrypted_zip() -> bytes:
    """A zip whose one member has the encryption flag set (APPNOTE §4.4.4 bit 0)."""
    data = bytearray(zip_of({"a.txt": "salainen"}, zipfile.ZIP_STORED))
    data[6] |= 1  # local header flags
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1  # central directory flags
    return bytes(data)


# (name, scanner, body, content type, words the reason holds)
REFUSED: list[tuple[str, Callable[[], Scanner] | None, bytes, str | None, str]] = [
    ("zip bomb", None, zip_of({"a.txt": b"\0" * (16 << 20)}), None, "zip bomb"),
    (
        "expands past the budget",
        lambda: small(max_body_bytes=50_000, max_decoded_bytes=100_000),
        zip_of({"a.txt": b"a" * 200_000}),
        "application/zip",
        "limit",
    ),
    (
        "gzip past the budget",
        lambda: small(max_body_bytes=50_000, max_decoded_bytes=100_000),
        gzip.compress(b"a" * 200_000),
        "application/gzip",
        "limit",
    ),
    (
        "too many members",
        lambda: small(max_parts=5),
        zip_of({f"{i}.txt": "x" for i in range(6)}),
        None,
        "6 members",
    ),
    ("too deep", None, nested_zips(9, "x"), None, "nested more than"),
    ("encrypted zip member", None, encrypted_zip(), "application/zip", "encrypted"),
    ("encrypted pdf", None, pdf("x", password="salasana"), "application/pdf", "encrypted"),
    ("corrupt zip", None, b"PK\x03\x04" + b"\xff" * 40, "application/zip", "corrupt zip"),
    ("declared zip, random", None, b"\x00\x01 not a zip", "application/zip", "zip"),
    ("truncated gzip", None, gzip.compress(b"x" * 1000)[:20], None, "gzip"),
    ("corrupt pdf", None, b"%PDF-1.7\n\x00\x00 garbage", "application/pdf", "PDF"),
    ("declared png, random", None, b"\x00\x01\x02 not an image", "image/png", "image/png"),
    ("7z", None, b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 30, None, "cannot read"),
    (
        "tar with unread bytes",
        None,
        tar_of({"a.txt": "x"}) + b"\x01" * 512,
        "application/x-tar",
        "after the end",
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "body", "content_type", "words"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_unreadable_container_is_unscannable(
    scanner: Scanner,
    name: str,
    make: Callable[[], Scanner] | None,
    body: bytes,
    content_type: str | None,
    words: str,
) -> None:
    """A bomb, an encrypted, corrupt, too large or too deep container is blocked as unscannable,
    its reason saying why."""
    report = (make() if make else scanner).scan_bytes(body, content_type)
    assert report.verdict is Verdict.BLOCK, report.as_dict()
    assert report.findings[-1].rule == "unscannable", report.as_dict()
    assert words in report.findings[-1].explanation, report.as_dict()


@pytest.mark.parametrize(
    "body",
    [
        zip_of({f"{REAL}.txt": "x"}, zipfile.ZIP_STORED)[:-10],
        encrypted_zip().replace(b"a.txt", REAL[:5].encode()),
    ],
)
def test_refusal_reasons_hold_no_code(scanner: Scanner, body: bytes) -> None:
    """An unscannable container's reason and location never show a code (masked)."""
    report = scanner.scan_bytes(body, "application/zip")
    assert report.verdict is Verdict.BLOCK
    assert not reveals_code(json.dumps(report.as_dict()))


def test_zip_bomb_is_refused_fast(scanner: Scanner) -> None:
    """A 1 GB member is refused after a few MB of expansion, not after a gigabyte."""
    bomb = zip_of({"a.txt": b"\0" * (256 << 20)})
    started = time.perf_counter()
    report = scanner.scan_bytes(bomb, None)
    assert report.findings[-1].rule == "unscannable"
    assert time.perf_counter() - started < 2.0


# -- labels and bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"a": REAL}).encode(), "image/png"),  # JSON declared image/png is JSON
        (f"<a>{REAL}</a>".encode(), "application/pdf"),  # XML declared PDF is XML
        (json.dumps({"a": REAL}).encode(), "application/x-brotli"),
    ],
)
def test_document_behind_a_container_label_is_read_as_a_document(
    scanner: Scanner, body: bytes, content_type: str
) -> None:
    """A container's label on a document's bytes: the bytes win, and the document is parsed."""
    report = scanner.scan_bytes(body, content_type)
    assert [f.rule for f in report.findings] == ["hetu.real"], report.as_dict()
    assert "line" not in report.findings[0].location


def test_sniffed_image_that_cannot_be_opened_is_read_as_text(scanner: Scanner) -> None:
    """Bytes that only look like a JPEG (not declared one) are scanned as text, not blocked."""
    clean = scanner.scan_bytes(b"\xff\xd8\xff broken", "application/octet-stream")
    assert clean.verdict is Verdict.PASS
    found = scanner.scan_bytes(b"\xff\xd8\xff broken\n" + REAL.encode(), None)
    assert [f.rule for f in found.findings] == ["hetu.real"]


def test_text_mentioning_pdf_is_text(scanner: Scanner) -> None:
    """A text whose first line mentions ``%PDF-`` is not taken for a PDF."""
    report = scanner.scan_bytes(b"see the %PDF-1.7 spec\n" + TEST.encode(), "text/plain")
    assert report.verdict is Verdict.PASS


# -- the command line ---------------------------------------------------------------------------

FILES: list[tuple[str, Callable[[str], bytes]]] = [
    ("lausunto.gz", lambda c: gzip.compress(c.encode())),
    ("lausunto.txt.br", lambda c: brotli.compress(c.encode())),
    ("arkisto.tar", lambda c: tar_of({"a.txt": c})),
    ("liitteet.zip", lambda c: zip_of({"a.txt": c})),
    ("lausunto.pdf", lambda c: pdf(c)),
    ("kirje.docx", docx),
    ("kuva.png", lambda c: png(text=c)),
    ("kuva.jpg", lambda c: jpeg(exif={0x010E: c})),
    ("tallenne", lambda c: zip_of({"a.txt": c})),  # no extension: sniffed
]


@pytest.mark.parametrize(("name", "build"), FILES, ids=[f[0] for f in FILES])
def test_cli_scan_reads_container_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    build: Callable[[str], bytes],
) -> None:
    """``kanta-guard scan`` blocks a real code in a container file and passes a test code."""
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    (bad / name).write_bytes(build(REAL))
    (good / name).write_bytes(build(TEST))
    assert main(["scan", str(good)]) == 0
    assert main(["scan", "--json", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "hetu.real" in out
    assert REAL not in out


# -- properties ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([zip_of({"a.txt": "x", "b.xml": "<a/>"}), pdf("x"), png(text="x"), jpeg()]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_containers_never_pass_a_code_unread(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    """Containers with bytes changed or cut off scan without an error escaping, and a real code
    put beside them is never passed: it is found or the container is refused."""
    scanner = Scanner(parse_policy(""), KeyedHasher(b"k" * 16))
    data = bytearray(base)
    for offset, value in flips:
        data[offset % len(data)] = value
    body = bytes(data[: max(cut, 16)])
    for content in (body, zip_of({"x.bin": body, "y.txt": REAL})):
        report = scanner.scan_bytes(content, None)
        if content is not body:
            assert report.verdict is Verdict.BLOCK
        assert all(f.action in (Action.BLOCK, Action.WARN) for f in report.findings)
        assert not reveals_code(json.dumps(report.as_dict()))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 899), st.sampled_from(["-", "A", "Y", "+"]), st.binary(max_size=64))
def test_any_real_code_in_a_zip_member_is_found(number: int, sign: str, noise: bytes) -> None:
    """Any real-range code in a zip member, among arbitrary bytes, is blocked."""
    scanner = Scanner(parse_policy(""), KeyedHasher(b"k" * 16))
    real = code("150780", sign, number)
    body = zip_of({"m.bin": noise + b"\n" + real.encode() + b"\n" + noise})
    assert scanner.scan_bytes(body, None).verdict is Verdict.BLOCK


def test_tarfile_reads_what_tar_pieces_reads() -> None:
    """The tar builder writes ustar archives the sniffer knows (magic at offset 257)."""
    data = tar_of({"a": "b"})
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames() == ["a"]
    assert data[257:262] == b"ustar"


@pytest.mark.parametrize("content_type", ["image/png", "image/x-portable-pixmap", None])
def test_reader_errors_never_escape(scanner: Scanner, content_type: str | None) -> None:
    """A third-party reader's own error on odd bytes (Pillow's ValueError on a PPM header cut
    short: found by make fuzz) never raises out of the scan."""
    report = scanner.scan_bytes(b"P3Ao", content_type)
    assert report.verdict in (Verdict.PASS, Verdict.BLOCK)
