# ruff: noqa: E501  (attack tables: one attack per entry, long literal bodies)
"""Attacks on the decoding layer (issue 7, "nothing unread"), as a careless system or a hurried
tester would send them: a real-range code hidden in every encoding and container the issue lists.

Every attack has a clean twin: the same body with a 900-series test code in the same place, which
must pass, so that each test can fail. Unreadable inputs (encrypted, too deep, bombs) must be
blocked as ``unscannable``, their readable twin passed.
"""

from __future__ import annotations

import base64
import bz2
import dataclasses
import gzip
import io
import json
import lzma
import struct
import tarfile
import unicodedata
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable
from email.header import Header

import brotli
import pytest
from helpers import REAL, TEST, code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_decode_archives import Member, build_zip, local_entry
from test_parsers_container import docx, jpeg, odt, pdf, png, tar_of, xlsx, xmp, zip_of

from kanta_guard import Scanner
from kanta_guard.model import Request, Verdict

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd

#: What an attack builds from a code: a whole request.
Make = Callable[[str], Request]


def body(content_type: str | None, data: bytes, *headers: tuple[str, str]) -> Request:
    """A POST of ``data`` with the given type and extra headers."""
    fields = (("Host", "kanta.test"),)
    if content_type is not None:
        fields += (("Content-Type", content_type),)
    return Request("POST", "/fhir", fields + headers, data, host="kanta.test")


def get(target: str, *headers: tuple[str, str]) -> Request:
    """A GET of ``target`` with the given headers."""
    return Request("GET", target, (("Host", "kanta.test"), *headers), b"", host="kanta.test")


def text(content_type: str, template: str, encoding: str = "utf-8") -> Make:
    """A body of ``template`` with the code in place of ``{c}``."""
    return lambda c: body(content_type, template.replace("{c}", c).encode(encoding))


def split(c: str, middle: str) -> str:
    """The code with ``middle`` between its date and its sign."""
    return c[:6] + middle + c[6:]


def _wrapped(c: str) -> bytes:
    """Base64 of a text with ``c``, no padding, wrapped in lines of 8: no run a token search
    reads, a body of Base64 lines."""
    encoded = base64.b64encode(f"Potilas {c}xx".encode()).decode()
    assert "=" not in encoded
    return "\n".join(encoded[i : i + 8] for i in range(0, len(encoded), 8)).encode()


def _controlled(c: str) -> bytes:
    """UTF-8 with a control byte: ``c`` with an en dash for its sign."""
    return b"\x01Potilas " + c.replace("-", "\u2013").encode()


_LATIN = "Väinö Äijälä".encode("latin-1")


def _qp(c: str) -> bytes:
    """A text with ``c`` written quoted-printable, its dash as ``=2D``."""
    return f"Potilas {c.replace('-', '=2D')} kotona".encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def lines(data: str, widths: tuple[int, ...]) -> str:
    """``data`` broken into lines of the given widths (the last repeated)."""
    out, at, i = [], 0, 0
    while at < len(data):
        width = widths[min(i, len(widths) - 1)]
        out.append(data[at : at + width])
        at, i = at + width, i + 1
    return "\r\n".join(out)


def fullwidth(c: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in c)


def math_digits(c: str) -> str:
    """Mathematical bold digits (NFKC folds them to ASCII)."""
    return "".join(chr(0x1D7CE + int(ch)) if ch.isdigit() else ch for ch in c)


def between_digits(c: str, mark: str) -> str:
    return mark.join(c)


def pct(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def exif_unicode(c: str) -> bytes:
    """An EXIF UserComment in its UNICODE character code (UCS-2, CIPA DC-008 §4.6.5)."""
    return jpeg(exif={0x9286: b"UNICODE\x00" + f"Potilas {c}".encode("utf-16-be")})


def gif_comment(c: str) -> bytes:
    out = io.BytesIO()
    Image.new("P", (4, 4)).save(out, "GIF", comment=f"Potilas {c}".encode())
    return out.getvalue()


def tiff_description(c: str) -> bytes:
    out = io.BytesIO()
    tags = Image.Exif()
    tags[0x010E] = f"Potilas {c}"
    Image.new("RGB", (4, 4)).save(out, "TIFF", exif=tags)
    return out.getvalue()


def webp_exif(c: str) -> bytes:
    out = io.BytesIO()
    tags = Image.Exif()
    tags[0x010E] = f"Potilas {c}"
    Image.new("RGB", (4, 4)).save(out, "WEBP", exif=tags)
    return out.getvalue()


def raw_pdf(content: bytes, extra: bytes = b"") -> bytes:
    """A one-page PDF with the given uncompressed content stream and extra objects (numbered
    from 6), its cross-reference table computed."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.5\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    out += extra
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pdf_tj_split(c: str) -> bytes:
    """Page text shown in pieces with kerning between them (a TJ array)."""
    return raw_pdf(f"BT /F1 12 Tf 72 720 Td [({c[:4]}) -30 ({c[4:]})] TJ ET".encode())


def pdf_hex(c: str) -> bytes:
    """Page text as a hexadecimal string."""
    return raw_pdf(b"BT /F1 12 Tf 72 720 Td <" + c.encode().hex().encode() + b"> Tj ET")


def pdf_octal(c: str) -> bytes:
    """Page text with every character an octal escape."""
    escaped = "".join(f"\\{ord(ch):03o}" for ch in c)
    return raw_pdf(f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode())


def pdf_two_shows(c: str) -> bytes:
    """The code's halves in two Tj operators on one line."""
    return raw_pdf(f"BT /F1 12 Tf 72 720 Td ({c[:6]}) Tj ({c[6:]}) Tj ET".encode())


def pdf_incremental(c: str) -> bytes:
    """A PDF whose first revision's page shows the code and an appended update replaces it
    (the old revision stays in the file: any reader can recover it)."""
    first = raw_pdf(f"BT /F1 12 Tf 72 720 Td (Potilas {c}) Tj ET".encode())
    clean = b"BT /F1 12 Tf 72 720 Td (puhdas) Tj ET"
    update = b"4 0 obj\n<< /Length %d >>\nstream\n" % len(clean) + clean + b"\nendstream\nendobj\n"
    at = len(first)
    prev = int(first.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    xref = at + len(update)
    tail = (
        b"xref\n4 1\n%010d 00000 n \ntrailer\n<< /Size 6 /Root 1 0 R /Prev %d >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (at, prev, xref)
    )
    return first + update + tail


def pdf_annotation(c: str) -> bytes:
    """A text annotation (a sticky note) holding the code, not the page."""
    writer_pdf = raw_pdf(b"BT ET")
    # Insert /Annots into the page dictionary, recomputing nothing: pypdf tolerates a stale
    # xref offset by rebuilding; better to build it right, so the annotation is object 6.
    annot = f"<< /Type /Annot /Subtype /Text /Rect [0 0 10 10] /Contents (Potilas {c}) >>"
    content = b"BT ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Annots [5 0 R] >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        annot.encode(),
    ]
    del writer_pdf
    return _pdf_of(objects)


def pdf_outline(c: str) -> bytes:
    """A bookmark (outline item) whose title is the code."""
    content = b"BT ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Outlines 5 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count 1 >>",
        f"<< /Title (Potilas {c}) /Parent 5 0 R /Dest [3 0 R /Fit] >>".encode(),
    ]
    return _pdf_of(objects)


def pdf_object_stream(c: str) -> bytes:
    """The document information dictionary inside a compressed object stream (PDF 1.5 §7.5.7),
    found through a cross-reference stream."""
    content = b"BT ET"
    info = f"<< /Author (Potilas {c}) >>".encode()
    header = b"6 0 "
    objstm_data = zlib.compress(header + info)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (len(header), len(objstm_data))
        + objstm_data
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.5\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref_at = len(out)
    rows = b"\x00\x00\x00\xff\xff"  # object 0: free
    for offset in offsets:
        rows += b"\x01" + offset.to_bytes(3, "big") + b"\x00"
    rows += b"\x02" + (5).to_bytes(3, "big") + b"\x00"  # object 6: in stream 5, index 0
    rows += b"\x01" + xref_at.to_bytes(3, "big") + b"\x00"  # object 7: this stream
    data = zlib.compress(rows)
    out += (
        b"7 0 obj\n<< /Type /XRef /Size 8 /W [1 3 1] /Root 1 0 R /Info 6 0 R "
        b"/Filter /FlateDecode /Length %d >>\nstream\n"
        % len(data)
        + data
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    )
    return bytes(out)


def pdf_xmp(c: str) -> bytes:
    """An XMP metadata stream in the catalog (ISO 32000 §14.3.2), not the Info dictionary."""
    content = b"BT ET"
    packet = xmp(f"Potilas {c}").encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Metadata 5 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n" % len(packet)
        + packet
        + b"\nendstream",
    ]
    return _pdf_of(objects)


def pdf_ascii85(c: str) -> bytes:
    """A content stream under ASCII85 and Flate filters."""
    raw = zlib.compress(f"BT /F1 12 Tf 72 720 Td (Potilas {c}) Tj ET".encode())
    encoded = base64.a85encode(raw) + b"~>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter [/ASCII85Decode /FlateDecode] >>\nstream\n" % len(encoded)
        + encoded
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return _pdf_of(objects)


def _pdf_of(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.5\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def gzip_multi(c: str) -> bytes:
    """Two gzip members back to back (RFC 1952 §2.2): the code only in the second."""
    return gzip.compress(b"ensimmainen ") + gzip.compress(f"Potilas {c}".encode())


def gzip_comment(c: str) -> bytes:
    """A gzip header with FCOMMENT (RFC 1952 §2.3.1) holding the code."""
    payload = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = payload.compress(b"sisalto") + payload.flush()
    header = b"\x1f\x8b\x08\x10" + b"\x00" * 4 + b"\x00\xff" + f"Potilas {c}".encode() + b"\x00"
    trailer = zlib.crc32(b"sisalto").to_bytes(4, "little") + (7).to_bytes(4, "little")
    return header + data + trailer


def gzip_trailing(c: str) -> bytes:
    """A gzip stream followed by bytes that are no second member."""
    return gzip.compress(b"sisalto") + f"Potilas {c}".encode()


def zip_with_comment(c: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.comment = f"Potilas {c}".encode()
        archive.writestr("a.txt", "ei mitaan")
    return out.getvalue()


def zip_member_comment(c: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("a.txt")
        info.comment = f"Potilas {c}".encode()
        archive.writestr(info, "ei mitaan")
    return out.getvalue()


def zip_method(c: str, method: int) -> bytes:
    return zip_of({"a.txt": f"Potilas {c}"}, method)


def zip_prefixed(c: str) -> bytes:
    """A zip after a stub (a self-extracting archive): the directory offsets are relative."""
    return b"MZ" + b"\x00" * 200 + zip_of({"a.txt": f"Potilas {c}"})


def zip_duplicate_names(c: str) -> bytes:
    """Two members of one name: a reader may take either."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", f"Potilas {c}")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            archive.writestr("a.txt", "ei mitaan")
    return out.getvalue()


def zip_local_only(c: str) -> bytes:
    """A local entry the central directory does not list (a streaming reader reads it)."""
    hidden = zip_of({"piilo.txt": f"Potilas {c}"})
    shown = zip_of({"a.txt": "ei mitaan"})
    central = shown.find(b"PK\x01\x02")
    end = shown.find(b"PK\x05\x06")
    shift = hidden.find(b"PK\x01\x02")
    local = hidden[:shift]
    # Shown archive's entry offsets move by len(local): patch the central record and the end.
    record = bytearray(shown[central:end])
    record[42:46] = (int.from_bytes(record[42:46], "little") + len(local)).to_bytes(4, "little")
    tail = bytearray(shown[end:])
    tail[16:20] = (int.from_bytes(tail[16:20], "little") + len(local)).to_bytes(4, "little")
    return local + shown[:central] + bytes(record) + bytes(tail)


def zip_unlisted(c: str, **options: object) -> bytes:
    """A local entry between two listed members that the central directory does not list
    (Java's ZipInputStream and 7-Zip read it, zipfile and unzip do not)."""
    hidden = Member("piilo.txt", f"Potilas {c}".encode(), listed=False, **options)  # type: ignore[arg-type]
    return build_zip(Member("a.txt", b"ei mitaan"), hidden, Member("b.txt", b"ei tata"))


def docx_unlisted(c: str) -> bytes:
    """A docx whose document part a streaming reader sees twice: the listed one clean, an
    unlisted local entry of the same name before it holding the code."""
    real = docx(f"Potilas {c}")
    clean = docx("ei mitaan")
    with zipfile.ZipFile(io.BytesIO(real)) as archive:
        hidden = Member("word/document.xml", archive.read("word/document.xml"), listed=False)
    with zipfile.ZipFile(io.BytesIO(clean)) as archive:
        members = [Member(i.filename, archive.read(i)) for i in archive.infolist()]
    return build_zip(hidden, *members)


def zip_after_stream(c: str) -> bytes:
    """A member whose compressed size counts bytes after its DEFLATE stream ends (zipfile
    stops at the stream's end): a data descriptor and a whole local entry there, which
    ZipInputStream reads as the next entry."""
    content = b"ei mitaan"
    stream = local_entry(Member("a.txt", content))[1]
    descriptor = struct.pack("<4s3L", b"PK\x07\x08", zlib.crc32(content), len(stream), len(content))
    hidden = local_entry(Member("piilo.txt", f"Potilas {c}".encode()))[0]
    return build_zip(Member("a.txt", content, descriptor=True, trailing=descriptor + hidden))


def zip_between(hidden: bytes) -> bytes:
    """Bytes between two listed members that no entry accounts for."""
    return build_zip(Member("a.txt", b"ei mitaan"), hidden, Member("b.txt", b"ei tata"))


def tar_pax(c: str) -> bytes:
    """A pax extended header (POSIX.1-2001) with a comment record holding the code."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.txt")
        info.pax_headers = {"comment": f"Potilas {c}"}
        data = b"ei mitaan"
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def tar_gz(c: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        data = f"Potilas {c}".encode()
        info = tarfile.TarInfo("a.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def tar_name(c: str) -> bytes:
    return tar_of({f"potilas-{c}.txt": "ei mitaan"})


def multipart(parts: str, boundary: str = "b") -> Make:
    return lambda c: body(
        f"multipart/form-data; boundary={boundary}",
        parts.replace("{c}", c).replace("\n", "\r\n").encode(),
    )


def qp(value: str) -> str:
    return "".join(f"={ord(ch):02X}" for ch in value)


def raw_deflate(value: str) -> bytes:
    """``value`` as raw DEFLATE (RFC 1951, no zlib header: no magic number to sniff)."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, -15)
    return encoder.compress(value.encode()) + encoder.flush()


def cookie_b64(c: str) -> Request:
    return get("/", ("Cookie", "sid=1; potilas=" + base64.b64encode(c.encode()).decode()))


# (id, attack)
ATTACKS: list[tuple[str, Make]] = [
    # -- compression: bodies and labels ---------------------------------------------------------
    ("gzip label", lambda c: body("application/gzip", gzip.compress(f"P {c}".encode()))),
    ("gzip unlabelled", lambda c: body(None, gzip.compress(f"P {c}".encode()))),
    ("gzip as octet-stream", lambda c: body("application/octet-stream", gzip.compress(c.encode()))),
    ("gzip x-gzip label", lambda c: body("application/x-gzip", gzip.compress(c.encode()))),
    ("bzip2 label", lambda c: body("application/x-bzip2", bz2.compress(c.encode()))),
    ("bzip2 unlabelled", lambda c: body(None, bz2.compress(c.encode()))),
    ("xz label", lambda c: body("application/x-xz", lzma.compress(c.encode()))),
    ("lzma alone", lambda c: body(None, lzma.compress(c.encode(), lzma.FORMAT_ALONE))),
    ("zstd label", lambda c: body("application/zstd", zstd.compress(c.encode()))),
    ("zstd unlabelled", lambda c: body(None, zstd.compress(c.encode()))),
    ("brotli label", lambda c: body("application/x-brotli", brotli.compress(c.encode()))),
    ("gzip multi-member", lambda c: body("application/gzip", gzip_multi(c))),
    (
        "gzip multi-member encoding",
        lambda c: body("text/plain", gzip_multi(c), ("Content-Encoding", "gzip")),
    ),
    ("gzip FCOMMENT", lambda c: body("application/gzip", gzip_comment(c))),
    ("gzip trailing bytes", lambda c: body("application/gzip", gzip_trailing(c))),
    (
        "gzip trailing bytes encoding",
        lambda c: body("text/plain", gzip_trailing(c), ("Content-Encoding", "gzip")),
    ),
    (
        "content-encoding gzip, br",
        lambda c: body(
            "text/plain",
            brotli.compress(gzip.compress(c.encode())),
            ("Content-Encoding", "gzip, br"),
        ),
    ),
    (
        "content-encoding two lines",
        lambda c: body(
            "text/plain",
            gzip.compress(gzip.compress(c.encode())),
            ("Content-Encoding", "gzip"),
            ("Content-Encoding", "gzip"),
        ),
    ),
    (
        "content-encoding upper case x-gzip",
        lambda c: body("text/plain", gzip.compress(c.encode()), ("Content-Encoding", "X-GZIP")),
    ),
    (
        "content-encoding deflate raw",
        lambda c: body(
            "text/plain",
            (lambda o: o.compress(c.encode()) + o.flush())(zlib.compressobj(9, zlib.DEFLATED, -15)),
            ("Content-Encoding", "deflate"),
        ),
    ),
    (
        "content-encoding deflate zlib",
        lambda c: body("text/plain", zlib.compress(c.encode()), ("Content-Encoding", "deflate")),
    ),
    (
        "content-encoding zstd",
        lambda c: body("text/plain", zstd.compress(c.encode()), ("Content-Encoding", "zstd")),
    ),
    (
        "gzip body in gzip encoding",
        lambda c: body(
            "application/gzip",
            gzip.compress(gzip.compress(c.encode())),
            ("Content-Encoding", "gzip"),
        ),
    ),
    # -- archives -----------------------------------------------------------------------------------
    ("zip member", lambda c: body("application/zip", zip_of({"a.txt": f"Potilas {c}"}))),
    ("zip member name", lambda c: body("application/zip", zip_of({f"{c}.txt": "x"}))),
    ("zip comment", lambda c: body("application/zip", zip_with_comment(c))),
    ("zip member comment", lambda c: body("application/zip", zip_member_comment(c))),
    ("zip bzip2 method", lambda c: body("application/zip", zip_method(c, zipfile.ZIP_BZIP2))),
    ("zip lzma method", lambda c: body("application/zip", zip_method(c, zipfile.ZIP_LZMA))),
    ("zip stored", lambda c: body("application/zip", zip_method(c, zipfile.ZIP_STORED))),
    ("zip after a stub", lambda c: body("application/octet-stream", zip_prefixed(c))),
    ("zip duplicate member names", lambda c: body("application/zip", zip_duplicate_names(c))),
    ("zip local entry not listed", lambda c: body("application/zip", zip_local_only(c))),
    ("zip unlisted entry between members", lambda c: body("application/zip", zip_unlisted(c))),
    (
        "zip unlisted entry with a data descriptor",
        lambda c: body("application/zip", zip_unlisted(c, descriptor=True)),
    ),
    (
        "zip unlisted stored entry",
        lambda c: body("application/zip", zip_unlisted(c, method=zipfile.ZIP_STORED)),
    ),
    (
        "zip unlisted entry after a stub",
        lambda c: body("application/octet-stream", b"MZ" + b"\x00" * 200 + zip_unlisted(c)),
    ),
    ("jpeg with a zip holding an unlisted entry", lambda c: body(None, jpeg() + zip_unlisted(c))),
    (
        "zip unlisted entry in a docx",
        lambda c: body(None, docx_unlisted(c)),
    ),
    (
        "zip member data after its deflate stream",
        lambda c: body("application/zip", zip_after_stream(c)),
    ),
    (
        "zip gzip between members",
        lambda c: body("application/zip", zip_between(gzip.compress(f"Potilas {c}".encode()))),
    ),
    (
        "zip raw deflate between members",
        lambda c: body("application/zip", zip_between(raw_deflate(f"Potilas {c}"))),
    ),
    (
        "zip gzip after the end record",
        lambda c: body(
            "application/zip",
            build_zip(Member("a.txt", b"ei mitaan"), after=gzip.compress(f"Potilas {c}".encode())),
        ),
    ),
    ("zip in zip", lambda c: body(None, zip_of({"in.zip": zip_of({"a.txt": c})}))),
    ("gzip in zip", lambda c: body(None, zip_of({"a.gz": gzip.compress(c.encode())}))),
    ("zip in gzip", lambda c: body(None, gzip.compress(zip_of({"a.txt": c})))),
    ("pdf in zip", lambda c: body(None, zip_of({"a.pdf": pdf(f"Potilas {c}")}))),
    ("docx", lambda c: body(None, docx(f"Potilas {c}"))),
    (
        "docx labelled",
        lambda c: body(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx(c)
        ),
    ),
    ("xlsx", lambda c: body(None, xlsx(f"Potilas {c}"))),
    ("odt", lambda c: body(None, odt(f"Potilas {c}"))),
    ("docx split across runs", lambda c: body(None, docx(f"{c[:6]}</w:t></w:r><w:r><w:t>{c[6:]}"))),
    ("tar member", lambda c: body("application/x-tar", tar_of({"a.txt": f"Potilas {c}"}))),
    ("tar member unlabelled", lambda c: body(None, tar_of({"a.txt": f"Potilas {c}"}))),
    ("tar member name", lambda c: body("application/x-tar", tar_name(c))),
    ("tar pax comment", lambda c: body("application/x-tar", tar_pax(c))),
    ("tar.gz", lambda c: body(None, tar_gz(c))),
    # -- PDF ----------------------------------------------------------------------------------------
    ("pdf page text", lambda c: body("application/pdf", pdf(f"Potilas {c}"))),
    ("pdf unlabelled", lambda c: body(None, pdf(f"Potilas {c}"))),
    ("pdf as octet-stream", lambda c: body("application/octet-stream", pdf(f"Potilas {c}"))),
    ("pdf second page", lambda c: body("application/pdf", pdf(f"Potilas {c}", pages=3))),
    ("pdf metadata", lambda c: body("application/pdf", pdf("x", metadata={"/Author": c}))),
    ("pdf form field", lambda c: body("application/pdf", pdf("x", field=c))),
    (
        "pdf embedded file",
        lambda c: body("application/pdf", pdf("x", attachment=("a.txt", c.encode()))),
    ),
    (
        "pdf embedded file name",
        lambda c: body("application/pdf", pdf("x", attachment=(f"{c}.txt", b"x"))),
    ),
    ("pdf TJ kerning split", lambda c: body("application/pdf", pdf_tj_split(c))),
    ("pdf two Tj", lambda c: body("application/pdf", pdf_two_shows(c))),
    ("pdf hex string", lambda c: body("application/pdf", pdf_hex(c))),
    ("pdf octal escapes", lambda c: body("application/pdf", pdf_octal(c))),
    ("pdf old revision", lambda c: body("application/pdf", pdf_incremental(c))),
    ("pdf annotation", lambda c: body("application/pdf", pdf_annotation(c))),
    ("pdf outline title", lambda c: body("application/pdf", pdf_outline(c))),
    ("pdf object stream info", lambda c: body("application/pdf", pdf_object_stream(c))),
    ("pdf xmp stream", lambda c: body("application/pdf", pdf_xmp(c))),
    ("pdf ascii85 flate", lambda c: body("application/pdf", pdf_ascii85(c))),
    # -- images ---------------------------------------------------------------------------------------
    (
        "jpeg exif comment",
        lambda c: body("image/jpeg", jpeg(exif={0x9286: b"ASCII\0\0\0" + c.encode()})),
    ),
    ("jpeg exif comment unicode", lambda c: body("image/jpeg", exif_unicode(c))),
    ("jpeg exif description", lambda c: body("image/jpeg", jpeg(exif={0x010E: c}))),
    ("jpeg exif artist", lambda c: body("image/jpeg", jpeg(exif={0x013B: c}))),
    ("jpeg COM", lambda c: body("image/jpeg", jpeg(comment=c.encode()))),
    ("jpeg xmp", lambda c: body("image/jpeg", jpeg(xmp=xmp(c).encode()))),
    ("jpeg iptc", lambda c: body("image/jpeg", jpeg(iptc=c.encode()))),
    ("jpeg as octet-stream", lambda c: body("application/octet-stream", jpeg(comment=c.encode()))),
    ("png tEXt", lambda c: body("image/png", png(text=c))),
    ("png zTXt", lambda c: body("image/png", png(ztxt=c))),
    ("png iTXt", lambda c: body("image/png", png(itxt=c))),
    ("png xmp", lambda c: body("image/png", png(xmp=xmp(c)))),
    ("png labelled jpeg", lambda c: body("image/jpeg", png(text=c))),
    ("gif comment", lambda c: body("image/gif", gif_comment(c))),
    ("tiff description", lambda c: body("image/tiff", tiff_description(c))),
    ("webp exif", lambda c: body("image/webp", webp_exif(c))),
    # -- HTML -----------------------------------------------------------------------------------------
    ("html text", text("text/html", "<html><body><p>Potilas {c}</p></body></html>")),
    ("html comment", text("text/html", "<html><!-- {c} --><p>x</p></html>")),
    ("html attribute", text("text/html", '<html><p title="{c}">x</p></html>')),
    ("html script", text("text/html", "<html><script>var h='{c}'</script></html>")),
    (
        "html numeric references",
        lambda c: body(
            "text/html", ("<p>" + "".join(f"&#{ord(ch)};" for ch in c) + "</p>").encode()
        ),
    ),
    (
        "html hex references",
        lambda c: body(
            "text/html", ("<p>" + "".join(f"&#x{ord(ch):x};" for ch in c) + "</p>").encode()
        ),
    ),
    ("html named dash", lambda c: body("text/html", f"<p>{c[:6]}&hyphen;{c[7:]}</p>".encode())),
    ("html split by inline", lambda c: body("text/html", f"<p>{c[:4]}<b></b>{c[4:]}</p>".encode())),
    ("html unlabelled", lambda c: body(None, f"<!DOCTYPE html><html><p>{c}</p></html>".encode())),
    # -- NDJSON ---------------------------------------------------------------------------------------
    (
        "ndjson fhir bulk",
        text(
            "application/fhir+ndjson",
            '{"resourceType":"Patient"}\n{"resourceType":"Patient","id":"{c}"}\n',
        ),
    ),
    ("ndjson x-ndjson", text("application/x-ndjson", '{"a":1}\n{"a":"{c}"}\n')),
    ("ndjson unlabelled", text("text/plain", '{"a":1}\n{"a":"{c}"}\n')),
    ("ndjson crlf", text("application/x-ndjson", '{"a":1}\r\n{"a":"{c}"}\r\n')),
    # -- JSON -----------------------------------------------------------------------------------------
    ("json duplicate key first", text("application/json", '{"id":"{c}","id":"x"}')),
    ("json duplicate key last", text("application/json", '{"id":"x","id":"{c}"}')),
    (
        "json u-escapes",
        lambda c: body(
            "application/json",
            ('{"a":"' + "".join(f"\\u{ord(ch):04x}" for ch in c) + '"}').encode(),
        ),
    ),
    ("json key", text("application/json", '{"{c}":1}')),
    (
        "json escaped solidus split",
        text("application/json", '{"a":"' + "{c}".replace("", "") + '\\/"}'),
    ),
    (
        "json deep nesting",
        lambda c: body("application/json", ("[" * 200 + json.dumps(c) + "]" * 200).encode()),
    ),
    ("json long number beside", text("application/json", '{"n":' + "9" * 5000 + ',"a":"{c}"}')),
    ("json big exponent beside", text("application/json", '{"n":1e999999,"a":"{c}"}')),
    ("json labelled image/png", text("image/png", '{"a":"{c}"}')),
    ("json text/json", text("text/json", '{"a":"{c}"}')),
    ("json fhir stu3", text("application/json+fhir", '{"resourceType":"Patient","id":"{c}"}')),
    (
        "json with BOM unlabelled",
        lambda c: body(None, b"\xef\xbb\xbf" + json.dumps({"a": c}).encode()),
    ),
    ("json utf-16 BOM", lambda c: body("application/json", json.dumps({"a": c}).encode("utf-16"))),
    (
        "json utf-16le no BOM",
        lambda c: body("application/json", json.dumps({"a": c}).encode("utf-16-le")),
    ),
    ("json utf-32", lambda c: body("application/json", json.dumps({"a": c}).encode("utf-32"))),
    (
        "json charset utf-7",
        lambda c: body(
            "application/json; charset=utf-7",
            (
                '{"a":"'
                + "+"
                + base64.b64encode(c.encode("utf-16-be")).decode().rstrip("=")
                + '-"}'
            ).encode(),
        ),
    ),
    ("json trailing garbage", text("application/json", '{"a":1} {"b":"{c}"}')),
    ("json comment", text("application/json", '{"a":1 /* {c} */}')),
    ("json with nan", text("application/json", '{"a":NaN,"b":"{c}"}')),
    (
        "json base64 member",
        lambda c: body("application/json", json.dumps({"data": b64(c.encode())}).encode()),
    ),
    (
        "json base64 with escaped newlines",
        lambda c: body(
            "application/json",
            json.dumps({"data": lines(b64(f"Potilas {c} ".encode() * 4), (20, 60, 76))}).encode(),
        ),
    ),
    (
        "json base64url",
        lambda c: body(
            "application/json",
            json.dumps(
                {"data": base64.urlsafe_b64encode(f"?>{c}".encode()).decode().rstrip("=")}
            ).encode(),
        ),
    ),
    (
        "json double base64",
        lambda c: body(
            "application/json", json.dumps({"data": b64(b64(c.encode()).encode())}).encode()
        ),
    ),
    # -- XML ------------------------------------------------------------------------------------------
    ("xml cdata", text("application/xml", "<a><![CDATA[Potilas {c}]]></a>")),
    (
        "xml cdata split",
        lambda c: body(
            "application/xml", f"<a><![CDATA[{c[:5]}]]><![CDATA[{c[5:]}]]></a>".encode()
        ),
    ),
    (
        "xml internal entity",
        text("application/xml", '<!DOCTYPE a [<!ENTITY h "{c}">]><a>&h;</a>'),
    ),
    (
        "xml entity in attribute",
        text("application/xml", '<!DOCTYPE a [<!ENTITY h "{c}">]><a b="&h;"/>'),
    ),
    (
        "xml parameter entity",
        text("application/xml", "<!DOCTYPE a [<!ENTITY % p \"<!ENTITY h '{c}'>\"> %p;]><a>&h;</a>"),
    ),
    ("xml doctype only", text("application/xml", '<!DOCTYPE a [<!ENTITY h "{c}">]><a/>')),
    (
        "xml char references",
        lambda c: body(
            "application/xml", ("<a>" + "".join(f"&#{ord(ch)};" for ch in c) + "</a>").encode()
        ),
    ),
    ("xml comment", text("application/xml", "<a><!-- {c} --></a>")),
    ("xml comment after root", text("application/xml", "<a/><!-- {c} -->")),
    ("xml PI data", text("application/xml", "<?x {c}?><a/>")),
    (
        "xml PI target",
        # (A name may hold "-": the code as written. With "_" for its sign it is no code.)
        lambda c: body("application/xml", f"<?p{c}?><a/>".encode()),
    ),
    (
        "xml attribute newline",
        lambda c: body("application/xml", f'<a b="{c[:7]}\n{c[7:]}"/>'.encode()),
    ),
    (
        "xml attribute tab",
        lambda c: body("application/xml", f'<a b="{c[:7]}&#9;{c[7:]}"/>'.encode()),
    ),
    ("xml attribute name", lambda c: body("application/xml", f'<a x{c}="1"/>'.encode())),
    ("xml element name", lambda c: body("application/xml", f"<x{c}/>".encode())),
    ("xml namespace uri", text("application/xml", '<a xmlns:p="urn:oid:{c}"/>')),
    ("xml default namespace", text("application/xml", '<a xmlns="urn:{c}"/>')),
    ("xml mixed content", lambda c: body("application/xml", f"<p>{c[:4]}<b/>{c[4:]}</p>".encode())),
    (
        "xml split by comment",
        lambda c: body("application/xml", f"<p>{c[:4]}<!--x-->{c[4:]}</p>".encode()),
    ),
    (
        "xml split by PI",
        lambda c: body("application/xml", f"<p>{c[:4]}<?x y?>{c[4:]}</p>".encode()),
    ),
    ("xml utf-16le no BOM", lambda c: body("application/xml", f"<a>{c}</a>".encode("utf-16-le"))),
    ("xml utf-16be no BOM", lambda c: body("application/xml", f"<a>{c}</a>".encode("utf-16-be"))),
    (
        "xml utf-16 declared no BOM",
        lambda c: body(
            "application/xml",
            f'<?xml version="1.0" encoding="UTF-16"?><a>{c}</a>'.encode("utf-16-le"),
        ),
    ),
    (
        "xml charset contradicts declaration",
        lambda c: body(
            "application/xml; charset=iso-8859-1",
            f'<?xml version="1.0" encoding="UTF-8"?><a>{fullwidth(c)}</a>'.encode(),
        ),
    ),
    (
        "xml declared utf-8, bytes utf-16",
        lambda c: body("application/xml; charset=utf-8", f"<a>{c}</a>".encode("utf-16")),
    ),
    (
        "xml ebcdic",
        lambda c: body(
            "application/xml", f'<?xml version="1.0" encoding="IBM037"?><a>{c}</a>'.encode("cp037")
        ),
    ),
    ("xml octet-stream label", text("application/octet-stream", "<?xml version='1.0'?><a>{c}</a>")),
    # -- text percent-encoded where nothing decodes it: "%20" before the code glued digits to it --
    ("text percent-encoded space", text("text/plain", "Potilas%20{c}%20kotona")),
    ("text percent-encoded tab", text("text/plain", "Potilas%09{c}")),
    ("json percent-encoded note", text("application/json", '{"note": "Potilas%20{c}"}')),
    ("xml percent-encoded text", text("application/xml", "<a>Potilas%20{c}</a>")),
    (
        "xml percent-encoded attribute",
        text("application/xml", '<a href="https://x.test/?q=Potilas%20{c}"/>'),
    ),
    ("header percent-encoded", lambda c: get("/x", ("X-Note", f"Potilas%20{c}"))),
    ("text percent-encoded twice", text("text/plain", "Potilas%2520{c}")),
    # -- escapes inside the code, in a body's text, where nothing decodes them --
    (
        "text sign percent-encoded",
        lambda c: body("text/plain", f"Potilas {c[:6]}%2D{c[7:]}".encode()),
    ),
    (
        "json sign percent-encoded",
        lambda c: body("application/json", json.dumps({"url": f"/x?q={c[:6]}%2D{c[7:]}"}).encode()),
    ),
    (
        "xml spaced sign percent-encoded",
        lambda c: body("application/xml", f"<a>{c[:6]}%20-%20{c[7:]}</a>".encode()),
    ),
    (
        "text sign backslash-u written out",
        lambda c: body("text/plain", f"{c[:6]}\\u002d{c[7:]}".encode()),
    ),
    (
        "json sign character reference",
        lambda c: body("application/json", json.dumps({"n": f"{c[:6]}&#45;{c[7:]}"}).encode()),
    ),
    (
        "multipart part sign percent-encoded",
        lambda c: body(
            "multipart/form-data; boundary=b",
            f"--b\r\nContent-Type: text/plain\r\n\r\n{c[:6]}%2D{c[7:]}\r\n--b--\r\n".encode(),
        ),
    ),
    (
        "ndjson sign percent-encoded",
        lambda c: body(
            "application/x-ndjson", (json.dumps({"n": f"{c[:6]}%2D{c[7:]}"}) + "\n").encode()
        ),
    ),
    (
        "gzip body sign percent-encoded",
        lambda c: body(
            "text/plain", gzip.compress(f"{c[:6]}%2D{c[7:]}".encode()), ("Content-Encoding", "gzip")
        ),
    ),
    ("cookie sign percent-encoded", lambda c: get("/x", ("Cookie", f"n={c[:6]}%2D{c[7:]}"))),
    (
        "text digits percent-encoded",
        lambda c: body("text/plain", ("".join(f"%{ord(ch):02X}" for ch in c[:6]) + c[6:]).encode()),
    ),
    ("text backslash x escape", text("text/plain", "Potilas\\x20{c}")),
    (
        "json backslash u escape written out",
        lambda c: body("application/json", json.dumps({"log": f"Potilas\\u0020{c}"}).encode()),
    ),
    ("xml octal escape written out", text("application/xml", "<a>Potilas\\040{c}</a>")),
    # -- Base64 in a header of what is no printable text but is read: a gzip, UTF-16 --
    (
        "header base64 of gzip",
        lambda c: get("/x", ("X-Data", b64(gzip.compress(f"Potilas {c}".encode())))),
    ),
    (
        "header base64 of utf-16",
        lambda c: get("/x", ("X-Data", b64(f"Potilas {c}".encode("utf-16")))),
    ),
    (
        "header base64 of utf-16le",
        lambda c: get("/x", ("X-Data", b64(f"Potilas {c}".encode("utf-16-le")))),
    ),
    # -- Base64 whose decoding is encoded again, among texts that decode to nothing (the XML fast
    # path and the pipeline's batch of small payloads each once took such a text for inert) --
    (
        "xml text base64 of gzip",
        lambda c: body(
            "application/xml",
            f"<r><a>{b64(gzip.compress(f'Potilas {c} kotona'.encode()))}</a></r>".encode(),
        ),
    ),
    (
        "xml attribute base64 of gzip",
        lambda c: body(
            "application/xml",
            f'<r><a x="{b64(gzip.compress(f"Potilas {c} kotona".encode()))}"/></r>'.encode(),
        ),
    ),
    (
        "xml text base64 of quoted-printable",
        lambda c: body("application/xml", f"<r><a>{b64(_qp(c))}</a></r>".encode()),
    ),
    (
        "xml text base64 of base64 wrapped short",
        lambda c: body(
            "application/xml",
            f"<r><a>{b64(_wrapped(c))}</a><b>{b64(b'rivi abcdex')}</b></r>".encode(),
        ),
    ),
    (
        "json base64 of base64 wrapped short",
        lambda c: body(
            "application/json",
            json.dumps([b64(b"rivi abcdex"), b64(_wrapped(c)), b64(b"rivi abcdey")]).encode(),
        ),
    ),
    (
        "text base64 of base64 wrapped short",
        lambda c: body(
            "text/plain",
            f"rivi {b64(b'rivi abcdex')} {b64(_wrapped(c))} {b64(b'rivi abcdey')}".encode(),
        ),
    ),
    (
        "json base64 of quoted-printable",
        lambda c: body(
            "application/json",
            json.dumps([b64(b"rivi abcdex"), b64(_qp(c)), b64(b"rivi abcdey")]).encode(),
        ),
    ),
    # UTF-8 with a control byte (binary, read as UTF-8) beside Latin-1 bytes (read one byte a
    # character): screened together, the en dash of the one would not show as a dash.
    (
        "xml base64 of utf-8 with a control byte beside latin-1",
        lambda c: body(
            "application/xml",
            f"<r><a>{b64(_controlled(c))}</a><b>{b64(_LATIN)}</b></r>".encode(),
        ),
    ),
    (
        "json base64 of utf-8 with a control byte beside latin-1",
        lambda c: body("application/json", json.dumps([b64(_controlled(c)), b64(_LATIN)]).encode()),
    ),
    (
        "xml fhir stu3",
        text(
            "application/xml+fhir",
            '<Patient xmlns="http://hl7.org/fhir"><id value="{c}"/></Patient>',
        ),
    ),
    (
        "fhir xml binary base64",
        lambda c: body(
            "application/fhir+xml",
            f'<Binary xmlns="http://hl7.org/fhir"><data value="{lines(b64(f"Potilas {c}".encode() * 5), (20, 60, 76))}"/></Binary>'.encode(),
        ),
    ),
    (
        "xml base64 short",
        lambda c: body("application/xml", f"<a>{b64(c.encode())}</a>".encode()),
    ),
    (
        "xml base64 short in whitespace",
        lambda c: body("application/xml", f"<a>\n    {b64(c.encode())}\n  </a>".encode()),
    ),
    (
        "xml base64 short attribute",
        lambda c: body("application/xml", f'<a b="x" note="{b64(c.encode())}"/>'.encode()),
    ),
    (
        "cda base64 short text",
        lambda c: body(
            "application/xml",
            (
                '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>T</title><component><section>'
                f"<text><paragraph>{b64(c.encode())}</paragraph></text></section></component>"
                "</ClinicalDocument>"
            ).encode(),
        ),
    ),
    (
        "json base64 short member",
        lambda c: body("application/json", json.dumps({"note": b64(c.encode())}).encode()),
    ),
    (
        "json base64url short unpadded",
        lambda c: body(
            "application/json",
            json.dumps({"n": base64.urlsafe_b64encode(c.encode()).decode().rstrip("=")}).encode(),
        ),
    ),
    (
        "ndjson base64 short",
        lambda c: body(
            "application/fhir+ndjson", (json.dumps({"a": b64(c.encode())}) + "\n").encode()
        ),
    ),
    (
        "cda nonxmlbody pdf",
        lambda c: body(
            "application/xml",
            (
                '<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody>'
                f'<text mediaType="application/pdf" representation="B64">{lines(b64(pdf(c)), (76,))}</text>'
                "</nonXMLBody></component></ClinicalDocument>"
            ).encode(),
        ),
    ),
    (
        "cda nonxmlbody gzip compression",
        lambda c: body(
            "application/xml",
            (
                '<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody>'
                f'<text mediaType="text/plain" representation="B64" compression="GZ">{b64(gzip.compress(c.encode()))}</text>'
                "</nonXMLBody></component></ClinicalDocument>"
            ).encode(),
        ),
    ),
    (
        "cda nonxmlbody deflate compression",
        lambda c: body(
            "application/xml",
            (
                '<ClinicalDocument xmlns="urn:hl7-org:v3"><component><nonXMLBody>'
                f'<text mediaType="text/plain" representation="B64" compression="DF">{b64(zlib.compress(c.encode())[2:-4])}</text>'
                "</nonXMLBody></component></ClinicalDocument>"
            ).encode(),
        ),
    ),
    # -- text -------------------------------------------------------------------------------------------
    ("text plain base64 body", lambda c: body("text/plain", b64(f"Potilas {c}".encode()).encode())),
    (
        "octet-stream base64 body wrapped",
        lambda c: body(
            "application/octet-stream",
            lines(b64(f"Potilas {c} ".encode() * 6), (20, 60, 76)).encode(),
        ),
    ),
    ("text utf-16le no BOM", lambda c: body("text/plain", f"Potilas {c}".encode("utf-16-le"))),
    ("text utf-16be no BOM", lambda c: body("text/plain", f"Potilas {c}".encode("utf-16-be"))),
    ("text utf-32 no BOM", lambda c: body("text/plain", f"Potilas {c}".encode("utf-32-le"))),
    (
        "text charset utf-16 label",
        lambda c: body("text/plain; charset=utf-16le", f"Potilas {c}".encode("utf-16-le")),
    ),
    (
        "json raw deflate base64",
        lambda c: body(
            "application/json", json.dumps({"d": b64(raw_deflate(f"Potilas {c}"))}).encode()
        ),
    ),
    (
        "json zlib base64",
        lambda c: body(
            "application/json",
            json.dumps({"d": b64(zlib.compress(f"Potilas {c}".encode()))}).encode(),
        ),
    ),
    (
        "xml attribute raw deflate base64",
        lambda c: body(
            "application/xml", f'<a v="{b64(raw_deflate(f"Potilas {c} " * 3))}"/>'.encode()
        ),
    ),
    (
        "header raw deflate base64",
        lambda c: get("/", ("X-Data", b64(raw_deflate(f"Potilas {c}")))),
    ),
    (
        "text base64 token in a line",
        lambda c: body("text/plain", f"Potilas {b64(c.encode())} ok".encode()),
    ),
    (
        "text base64url token in a line",
        lambda c: body(
            "text/plain",
            f"Potilas {base64.urlsafe_b64encode(c.encode()).decode().rstrip('=')}, ok".encode(),
        ),
    ),
    (
        "text long base64 token in a line",
        lambda c: body("text/plain", f"Liite {b64(f'Potilas {c} lausunto'.encode())} ok".encode()),
    ),
    (
        "text base64 token after a dot",
        lambda c: body("text/plain", f"Potilas x.{b64(c.encode())}".encode()),
    ),
    (
        "text base64 gzip token in a line",
        lambda c: body("text/plain", f"Liite {b64(gzip.compress(c.encode()))} ok".encode()),
    ),
    (
        "text base64 raw deflate token in a line",
        lambda c: body("text/plain", f"Liite {b64(raw_deflate(f'Potilas {c}'))} ok".encode()),
    ),
    (
        "text base64 wrapped block after a label",
        lambda c: body(
            "text/plain",
            f"Lausunto liitteena:\n{lines(b64(f'Potilas {c} '.encode() * 8), (76,))}\nTerveisin".encode(),
        ),
    ),
    (
        "text base64 block starting after a label",
        lambda c: body(
            "text/plain",
            f"Liite: {lines(b64(f'Potilas {c} '.encode() * 8), (60, 76))}\n".encode(),
        ),
    ),
    (
        "text base64 block after a long label word",
        lambda c: body(
            "text/plain",
            f"Tietosuojaselosteliite\n{lines(b64(f'Potilas {c} '.encode() * 8), (76,))}".encode(),
        ),
    ),
    (
        "text utf-16 base64 token in a line",
        lambda c: body(
            "text/plain; charset=utf-16", f"Potilas {b64(c.encode())} ok".encode("utf-16")
        ),
    ),
    (
        "octet-stream base64 token in a line",
        lambda c: body("application/octet-stream", f"id={b64(c.encode())};".encode()),
    ),
    (
        "html base64 data uri",
        lambda c: body(
            "text/html",
            f'<p><a href="data:text/plain;base64,{b64(f"Potilas {c}".encode())}">x</a></p>'.encode(),
        ),
    ),
    ("text quoted-printable-ish", lambda c: body("text/plain", ("Potilas " + qp(c)).encode())),
    (
        "text qp soft line break",
        lambda c: body("text/plain", f"Potilas {c[:8]}=\r\n{c[8:]}".encode()),
    ),
    ("text qp sign only", lambda c: body("text/plain", f"Potilas {c[:6]}=2D{c[7:]}".encode())),
    ("text qp lower case", lambda c: body("text/plain", ("Potilas " + qp(c).lower()).encode())),
    ("text qp utf-8 dash", lambda c: body("text/plain", f"P {c[:6]}=E2=80=93{c[7:]}".encode())),
    ("html qp", lambda c: body("text/html", f"<p>Potilas {qp(c)}</p>".encode())),
    (
        "text qp latin-1",
        lambda c: body("text/plain; charset=iso-8859-1", f"P\xe4iv\xe4 {qp(c)}".encode("latin-1")),
    ),
    ("octet-stream qp", lambda c: body("application/octet-stream", f"P {qp(c)}".encode())),
    (
        "text qp among equals signs",
        lambda c: body("text/plain", f"a=10 b=FF x=3D y=\nz {qp(c)} == =ZZ".encode()),
    ),
    ("text no type, utf-16 BOM", lambda c: body(None, f"Potilas {c}".encode("utf-16"))),
    # -- forms and queries --------------------------------------------------------------------------------
    ("query", lambda c: get(f"/Patient?identifier={c}")),
    ("query double percent", lambda c: get("/Patient?identifier=" + pct(pct(c)))),
    ("query triple percent", lambda c: get("/Patient?identifier=" + pct(pct(pct(c))))),
    ("query plus for space", lambda c: get(f"/Patient?q={c[:6]}+{c[6:]}")),
    ("query name", lambda c: get(f"/Patient?{c}=1")),
    ("query semicolon", lambda c: get(f"/Patient?a=1;b={c}")),
    ("path segment", lambda c: get(f"/Patient/{c}")),
    (
        "path base64url",
        lambda c: get(
            "/Binary/" + base64.urlsafe_b64encode(f"?>{c}".encode()).decode().rstrip("=")
        ),
    ),
    ("path percent", lambda c: get("/Patient/" + pct(pct(c)))),
    ("fragment-ish", lambda c: get(f"/Patient#{c}")),
    ("form", lambda c: body("application/x-www-form-urlencoded", f"a=1&hetu={c}".encode())),
    (
        "form double percent",
        lambda c: body("application/x-www-form-urlencoded", ("hetu=" + pct(pct(c))).encode()),
    ),
    (
        "form plus",
        lambda c: body("application/x-www-form-urlencoded", f"hetu={c[:6]}+{c[6:]}".encode()),
    ),
    ("form name", lambda c: body("application/x-www-form-urlencoded", f"{c}=1".encode())),
    ("form unlabelled", lambda c: body(None, f"a=1&hetu={pct(c)}".encode())),
    (
        "form base64 value",
        lambda c: body("application/x-www-form-urlencoded", ("d=" + pct(b64(c.encode()))).encode()),
    ),
    ("query base64 short", lambda c: get("/Patient?x=" + pct(b64(c.encode())))),
    (
        "form base64 short with words",
        lambda c: body(
            "application/x-www-form-urlencoded", ("d=" + pct(b64(f"P {c}".encode()))).encode()
        ),
    ),
    # -- headers ------------------------------------------------------------------------------------------
    ("header", lambda c: get("/", ("X-Patient", c))),
    ("header folded", lambda c: get("/", ("X-Patient", f"{c[:6]}\r\n {c[6:]}"))),
    ("header repeated", lambda c: get("/", ("X-Patient", c[:6]), ("X-Patient", c[6:]))),
    ("header name", lambda c: get("/", (f"X-{c}", "1"))),
    ("header rfc2047 b", lambda c: get("/", ("X-Patient", Header(c, "utf-8").encode()))),
    ("header rfc2047 q", lambda c: get("/", ("X-Patient", "=?utf-8?Q?" + qp(c) + "?="))),
    ("header percent", lambda c: get("/", ("X-Patient", pct(pct(c))))),
    ("cookie", lambda c: get("/", ("Cookie", f"sid=1; hetu={c}"))),
    ("cookie base64", cookie_b64),
    ("cookie percent", lambda c: get("/", ("Cookie", "hetu=" + pct(c)))),
    (
        "authorization basic",
        lambda c: get("/", ("Authorization", "Basic " + b64(f"{c}:salasana".encode()))),
    ),
    (
        "trailer",
        lambda c: Request("POST", "/", (("Host", "k"),), b"x", host="k", trailers=(("X-H", c),)),
    ),
    # -- multipart --------------------------------------------------------------------------------------
    (
        "multipart preamble",
        multipart("{c}\n--b\nContent-Disposition: form-data; name=a\n\nx\n--b--\n"),
    ),
    (
        "multipart epilogue",
        multipart("--b\nContent-Disposition: form-data; name=a\n\nx\n--b--\n{c}\n"),
    ),
    (
        "multipart part header name",
        multipart("--b\nContent-Disposition: form-data; name=a\nX-{c}: 1\n\nx\n--b--\n"),
    ),
    (
        "multipart part header value",
        multipart("--b\nContent-Disposition: form-data; name=a\nX-H: {c}\n\nx\n--b--\n"),
    ),
    (
        "multipart field name",
        multipart('--b\nContent-Disposition: form-data; name="{c}"\n\nx\n--b--\n'),
    ),
    (
        "multipart filename",
        multipart('--b\nContent-Disposition: form-data; name=a; filename="{c}.txt"\n\nx\n--b--\n'),
    ),
    (
        "multipart filename rfc2231",
        lambda c: multipart(
            "--b\nContent-Disposition: form-data; name=a; filename*=UTF-8''"
            + pct(c)
            + ".txt\n\nx\n--b--\n"
        )(c),
    ),
    (
        "multipart filename rfc2231 continuation",
        lambda c: multipart(
            "--b\nContent-Disposition: form-data; name=a; filename*0*=UTF-8''"
            + pct(c[:5])
            + "; filename*1*="
            + pct(c[5:])
            + "\n\nx\n--b--\n"
        )(c),
    ),
    (
        "multipart filename rfc2047",
        lambda c: multipart(
            '--b\nContent-Disposition: form-data; name=a; filename="'
            + Header(c + ".txt", "utf-8").encode()
            + '"\n\nx\n--b--\n"'
        )(c),
    ),
    (
        "multipart nested",
        multipart(
            "--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: text/plain\n\n"
            "{c}\n--c--\n--b--\n"
        ),
    ),
    (
        "multipart nested epilogue",
        multipart(
            "--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: text/plain\n\n"
            "x\n--c--\n{c}\n--b--\n"
        ),
    ),
    (
        "multipart quoted-printable",
        lambda c: multipart(
            "--b\nContent-Disposition: form-data; name=a\nContent-Transfer-Encoding: "
            "quoted-printable\n\n" + qp(c) + "\n--b--\n"
        )(c),
    ),
    (
        "multipart base64 irregular",
        lambda c: multipart(
            "--b\nContent-Disposition: form-data; name=a\nContent-Transfer-Encoding: base64\n\n"
            + lines(b64(f"Potilas {c} ".encode() * 6), (20, 60, 76)).replace("\r\n", "\n")
            + "\n--b--\n"
        )(c),
    ),
    (
        "multipart part gzip",
        lambda c: body(
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=a; filename=a.gz\r\n"
            b"Content-Type: application/gzip\r\n\r\n"
            + gzip.compress(c.encode())
            + b"\r\n--b--\r\n",
        ),
    ),
    (
        "multipart part utf-16",
        lambda c: body(
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=a\r\n"
            b"Content-Type: text/plain; charset=utf-16le\r\n\r\n"
            + c.encode("utf-16-le")
            + b"\r\n--b--\r\n",
        ),
    ),
    (
        "multipart related",
        lambda c: body(
            'multipart/related; type="application/xop+xml"; boundary=b',
            f"--b\r\nContent-Type: application/xop+xml\r\n\r\n<a>{c}</a>\r\n--b--\r\n".encode(),
        ),
    ),
    (
        "multipart boundary quoted with space",
        lambda c: body(
            'multipart/form-data; boundary="a b"',
            f"--a b\r\nContent-Disposition: form-data; name=x\r\n\r\n{c}\r\n--a b--\r\n".encode(),
        ),
    ),
    (
        "multipart no closing delimiter",
        multipart("--b\nContent-Disposition: form-data; name=a\n\n{c}\n"),
    ),
    # -- Unicode tricks ---------------------------------------------------------------------------------
    ("fullwidth digits", lambda c: body("text/plain", f"Potilas {fullwidth(c)}".encode())),
    ("math digits", lambda c: body("text/plain", f"Potilas {math_digits(c)}".encode())),
    (
        "nfkc circled? no: superscript",
        lambda c: body("text/plain", unicodedata.normalize("NFKD", c).encode()),
    ),
    ("zero-width space", lambda c: body("text/plain", between_digits(c, "\u200b").encode())),
    ("soft hyphen", lambda c: body("text/plain", split(c, "\u00ad").encode())),
    ("word joiner", lambda c: body("text/plain", between_digits(c, "\u2060").encode())),
    ("bom inside", lambda c: body("text/plain", between_digits(c, "\ufeff").encode())),
    ("lrm marks", lambda c: body("text/plain", between_digits(c, "\u200e").encode())),
    (
        "combining grapheme joiner",
        lambda c: body("text/plain", between_digits(c, "\u034f").encode()),
    ),
    ("variation selector", lambda c: body("text/plain", between_digits(c, "\ufe0f").encode())),
    ("two spaces", lambda c: body("text/plain", split(c, " ").encode())),
    ("tab", lambda c: body("text/plain", (c[:6] + "\t" + c[6:]).encode())),
    ("space around dash", lambda c: body("text/plain", (c[:6] + " - " + c[7:]).encode())),
    ("nbsp around dash", lambda c: body("text/plain", (c[:6] + "\u00a0-\u00a0" + c[7:]).encode())),
    ("en dash", lambda c: body("text/plain", (c[:6] + "\u2013" + c[7:]).encode())),
    ("minus sign", lambda c: body("text/plain", (c[:6] + "\u2212" + c[7:]).encode())),
    ("non-breaking hyphen", lambda c: body("text/plain", (c[:6] + "\u2011" + c[7:]).encode())),
    ("fullwidth hyphen", lambda c: body("text/plain", (c[:6] + "\uff0d" + c[7:]).encode())),
    ("small hyphen", lambda c: body("text/plain", (c[:6] + "\ufe63" + c[7:]).encode())),
    ("newline between", lambda c: body("text/plain", (c[:6] + "\n" + c[6:]).encode())),
    ("crlf between", lambda c: body("text/plain", (c[:6] + "\r\n" + c[6:]).encode())),
    ("blank lines between", lambda c: body("text/plain", f"x\n{c[:6]}\n\n \n{c[6:]}\ny".encode())),
    ("newline after sign", lambda c: body("text/plain", (c[:7] + "\n" + c[7:]).encode())),
    ("newline before check", lambda c: body("text/plain", (c[:10] + "\n" + c[10:]).encode())),
    (
        "newline between fullwidth",
        lambda c: body("text/plain", (fullwidth(c[:6]) + "\n" + c[6:]).encode()),
    ),
    (
        "newline between cp1252",
        lambda c: body("text/plain", f"Päivä {c[:6]}\n{c[6:]}".encode("cp1252")),
    ),
    ("newline between html", lambda c: body("text/html", f"<p>{c[:6]}\n{c[6:]}</p>".encode())),
    (
        "newline between gzip",
        lambda c: body("application/gzip", gzip.compress((c[:6] + "\n" + c[6:]).encode())),
    ),
    ("ideographic space", lambda c: body("text/plain", (c[:6] + "\u3000" + c[6:]).encode())),
    ("lower-case check", lambda c: body("text/plain", c.lower().encode())),
    (
        "json fullwidth escaped",
        lambda c: body("application/json", json.dumps({"a": fullwidth(c)}).encode()),
    ),
    (
        "xml zero-width attribute",
        lambda c: body("application/xml", f'<a b="{between_digits(c, chr(0x200B))}"/>'.encode()),
    ),
    ("header fullwidth", lambda c: get("/", ("X-Patient", urllib.parse.quote(fullwidth(c))))),
]

#: Dash variants between the date and the individual number where the real sign is "-".
_DASH_ATTACKS = {
    "en dash",
    "minus sign",
    "non-breaking hyphen",
    "fullwidth hyphen",
    "small hyphen",
    "space around dash",
    "nbsp around dash",
    "html named dash",
}


#: Holes found by this audit, still open (strict: a fix turns them into failures to drop here).
#: Each says which file the fix belongs in.
HOLES = {}

#: Carriers the guard refuses outright (fail closed): the twin is blocked as ``unscannable``
#: too, which is the documented behaviour (DOCTYPE refused, bytes that contradict the label,
#: trailing garbage, truncation), not a false positive by a detector.
CLOSED = {
    "gzip trailing bytes",
    "gzip trailing bytes encoding",
    # ("json utf-16le no BOM" was here: read in its UTF-16 reading since 2026-12-03, RFC 4627
    # §3's detection; XML in UTF-16 must start with a BOM, XML 1.0 §4.3.3: still refused.)
    "json trailing garbage",
    "json comment",
    "xml internal entity",
    "xml entity in attribute",
    "xml parameter entity",
    "xml doctype only",
    "xml utf-16le no BOM",
    "xml utf-16be no BOM",
    "xml declared utf-8, bytes utf-16",
    "xml ebcdic",
    "multipart no closing delimiter",
}


def _marked(which: dict[str, str] | set[str]) -> list[object]:
    return [
        pytest.param(
            name,
            make,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=str(which[name]))]
            if isinstance(which, dict) and name in which
            else [],
        )
        for name, make in ATTACKS
    ]


@pytest.mark.parametrize(("name", "make"), _marked(HOLES))
def test_real_code_is_found(scanner: Scanner, name: str, make: Make) -> None:
    """The real-range code hidden this way is blocked."""
    report = scanner.scan(make(REAL))
    assert report.verdict is Verdict.BLOCK, (name, report.as_dict())


@pytest.mark.parametrize(("name", "make"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_test_code_twin_passes(scanner: Scanner, name: str, make: Make) -> None:
    """The same carrier with a 900-series test code passes (the attack's test can fail), or, for
    a carrier refused outright, is blocked as unscannable and by nothing else."""
    report = scanner.scan(make(TEST))
    if name in CLOSED:
        assert report.verdict is Verdict.BLOCK, (name, report.as_dict())
        assert {f.rule for f in report.findings} == {"unscannable"}, (name, report.as_dict())
    else:
        assert report.verdict is Verdict.PASS, (name, report.as_dict())


# -- unscannable: blocked as such, their readable twin passed --------------------------------------


def _encrypted_zip(c: str) -> bytes:
    data = bytearray(zip_of({"a.txt": f"Potilas {c}"}, zipfile.ZIP_STORED))
    data[6] |= 1
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1
    return bytes(data)


def _nested(depth: int, c: str) -> bytes:
    data: bytes = c.encode()
    for _ in range(depth):
        data = gzip.compress(data)
    return data


def _nested_zip(depth: int, c: str) -> bytes:
    data: bytes = zip_of({"a.txt": c})
    for _ in range(depth - 1):
        data = zip_of({"in.zip": data})
    return data


# (id, unreadable body and type, its readable twin with a test code)
UNSCANNABLE: list[tuple[str, Callable[[], Request], Callable[[], Request]]] = [
    (
        "encrypted zip",
        lambda: body("application/zip", _encrypted_zip(REAL)),
        lambda: body("application/zip", zip_of({"a.txt": f"Potilas {TEST}"}, zipfile.ZIP_STORED)),
    ),
    (
        "encrypted zip unlabelled",
        lambda: body(None, _encrypted_zip(REAL)),
        lambda: body(None, zip_of({"a.txt": f"Potilas {TEST}"}, zipfile.ZIP_STORED)),
    ),
    (
        "password pdf",
        lambda: body("application/pdf", pdf(REAL, password="salasana")),
        lambda: body("application/pdf", pdf(TEST)),
    ),
    (
        "password pdf as octet-stream",
        lambda: body("application/octet-stream", pdf(REAL, password="salasana")),
        lambda: body("application/octet-stream", pdf(TEST)),
    ),
    (
        "deep gzip",
        lambda: body(None, _nested(12, REAL)),
        lambda: body(None, _nested(2, TEST)),
    ),
    (
        "deep zip",
        lambda: body(None, _nested_zip(12, REAL)),
        lambda: body(None, _nested_zip(2, TEST)),
    ),
    (
        "deep content-encoding",
        lambda: body(
            "text/plain", _nested(12, REAL), ("Content-Encoding", ", ".join(["gzip"] * 12))
        ),
        lambda: body("text/plain", _nested(2, TEST), ("Content-Encoding", "gzip, gzip")),
    ),
    (
        "zip bomb",
        lambda: body(None, zip_of({"a.txt": b"\0" * (64 << 20) + REAL.encode()})),
        lambda: body(None, zip_of({"a.txt": b"\0" * 1000 + TEST.encode()})),
    ),
    (
        "gzip bomb",
        lambda: body("application/gzip", gzip.compress(b"\0" * (64 << 20) + REAL.encode())),
        lambda: body("application/gzip", gzip.compress(b"\0" * 1000 + TEST.encode())),
    ),
    (
        "unknown content-encoding",
        lambda: body("text/plain", REAL.encode()[::-1], ("Content-Encoding", "compress")),
        lambda: body("text/plain", TEST.encode()),
    ),
    (
        "7z archive",
        lambda: body(
            "application/x-7z-compressed",
            b"7z\xbc\xaf\x27\x1c\x00\x04" + lzma.compress(REAL.encode()),
        ),
        lambda: body("application/zip", zip_of({"a.txt": TEST})),
    ),
    (
        "rar archive",
        lambda: body(None, b"Rar!\x1a\x07\x01\x00" + lzma.compress(REAL.encode())),
        lambda: body(None, zip_of({"a.txt": TEST})),
    ),
    (
        "truncated zip",
        lambda: body("application/zip", zip_of({"a.txt": f"x {REAL}" * 50})[:-30]),
        lambda: body("application/zip", zip_of({"a.txt": f"x {TEST}" * 50})),
    ),
    (
        "zip unlisted entry encrypted",
        lambda: body("application/zip", zip_unlisted(REAL, flags=1)),
        lambda: body("application/zip", zip_unlisted(TEST)),
    ),
    (
        "zip unlisted stored entry with a data descriptor",
        lambda: body(
            "application/zip", zip_unlisted(REAL, method=zipfile.ZIP_STORED, descriptor=True)
        ),
        lambda: body("application/zip", zip_unlisted(TEST, method=zipfile.ZIP_STORED)),
    ),
    (
        "zip unlisted bzip2 entry",
        lambda: body("application/zip", zip_unlisted(REAL, method=zipfile.ZIP_BZIP2)),
        lambda: body("application/zip", zip_unlisted(TEST)),
    ),
    (
        "zip overlapping members",
        lambda: body(
            "application/zip", build_zip(Member("a.txt", f"Potilas {REAL}".encode(), twice=True))
        ),
        lambda: body("application/zip", build_zip(Member("a.txt", f"Potilas {TEST}".encode()))),
    ),
    (
        "zip local header contradicts the directory",
        lambda: body(
            "application/zip",
            build_zip(Member("a.txt", f"Potilas {REAL}".encode(), local_method=zipfile.ZIP_STORED)),
        ),
        lambda: body("application/zip", build_zip(Member("a.txt", f"Potilas {TEST}".encode()))),
    ),
    (
        "zip unlisted bomb",
        lambda: body(
            None, zip_between(local_entry(Member("p.txt", b"\0" * (64 << 20) + REAL.encode()))[0])
        ),
        lambda: body(None, zip_between(local_entry(Member("p.txt", TEST.encode()))[0])),
    ),
    (
        "truncated bzip2",
        lambda: body("application/x-bzip2", bz2.compress(f"x {REAL}".encode() * 50)[:-10]),
        lambda: body("application/x-bzip2", bz2.compress(f"x {TEST}".encode() * 50)),
    ),
    (
        "truncated xz",
        lambda: body(None, lzma.compress(f"x {REAL}".encode() * 50)[:-10]),
        lambda: body(None, lzma.compress(f"x {TEST}".encode() * 50)),
    ),
    (
        "truncated zstd",
        lambda: body("application/zstd", zstd.compress(f"x {REAL}".encode() * 50)[:-6]),
        lambda: body("application/zstd", zstd.compress(f"x {TEST}".encode() * 50)),
    ),
    (
        "brotli garbage declared",
        lambda: body("text/plain", b"\xff\xfe" + REAL.encode(), ("Content-Encoding", "br")),
        lambda: body("text/plain", brotli.compress(TEST.encode()), ("Content-Encoding", "br")),
    ),
]


@pytest.mark.parametrize(("name", "bad", "good"), UNSCANNABLE, ids=[u[0] for u in UNSCANNABLE])
def test_unreadable_is_blocked_unscannable(
    scanner: Scanner, name: str, bad: Callable[[], Request], good: Callable[[], Request]
) -> None:
    """What cannot be read is blocked as ``unscannable`` (or for the code it shows), never
    passed; its readable twin passes."""
    report = scanner.scan(bad())
    assert report.verdict is Verdict.BLOCK, (name, report.as_dict())
    assert REAL not in json.dumps(report.as_dict()), name
    twin = scanner.scan(good())
    assert twin.verdict is Verdict.PASS, (name, twin.as_dict())


# -- a little fuzzing ---------------------------------------------------------------------------------

_WRAPS: list[Callable[[bytes], tuple[bytes, str | None]]] = [
    lambda b: (gzip.compress(b), None),
    lambda b: (bz2.compress(b), None),
    lambda b: (lzma.compress(b), None),
    lambda b: (zstd.compress(b), "application/zstd"),
    lambda b: (brotli.compress(b), "application/x-brotli"),
    lambda b: (zip_of({"a.txt": b}), None),
    lambda b: (tar_of({"a.txt": b}), "application/x-tar"),
    # Base64 of an attachment-sized text (short Base64 is a hole of its own: HOLES).
    lambda b: (lines(b64(b), (76,)).encode(), "text/plain"),
    lambda b: (
        json.dumps({"contentType": "application/octet-stream", "data": b64(b)}).encode(),
        "application/json",
    ),
]

_TEMPLATES = [
    ("text/plain", "{pre}{c}{post}"),
    ("application/json", '{{"note":"{pre}{c}{post}"}}'),
    ("application/xml", "<a><b>{pre}{c}{post}</b></a>"),
    ("text/html", "<p>{pre}{c}{post}</p>"),
    ("application/x-www-form-urlencoded", "a={pre}{c}{post}"),
]

_filler = st.text(alphabet="abc xyz.,:;()", max_size=20)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    number=st.integers(2, 899),
    sign=st.sampled_from("+-A"),
    template=st.sampled_from(_TEMPLATES),
    wraps=st.lists(st.integers(0, len(_WRAPS) - 1), max_size=3),
    pre=_filler,
    post=_filler,
)
def test_fuzz_real_code_in_wrapped_documents(
    scanner: Scanner,
    number: int,
    sign: str,
    template: tuple[str, str],
    wraps: list[int],
    pre: str,
    post: str,
) -> None:
    """A real-range code in a document wrapped in up to three random encodings is found."""
    real = code("131052", sign, number)
    content_type, shape = template
    sep = " "
    # Attachment-sized (a short Base64 body is a hole of its own, in HOLES).
    data = shape.format(pre=pre + sep, c=real, post=" " + post + " lausunto" * 8).encode()
    label: str | None = content_type
    for index in wraps:
        if label == "application/x-brotli":
            break  # Brotli has no magic number: only its label says what it is, so it is last
        data, label = _WRAPS[index](data)
    report = scanner.scan(body(label, data))
    assert report.verdict is Verdict.BLOCK, (wraps, template, report.as_dict())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    attack=st.sampled_from([a for a in ATTACKS if a[0] not in HOLES]),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
)
def test_fuzz_mutated_attacks_never_pass_a_real_code_unread(
    scanner: Scanner, attack: tuple[str, Make], flips: list[tuple[int, int]]
) -> None:
    """An attack's body with a few bytes changed either is blocked or, if it passes, no longer
    holds the code in any form a reader could get back (it never raises)."""
    request = attack[1](REAL)
    data = bytearray(request.body)
    for at, value in flips:
        if data:
            data[at % len(data)] = value
    mutated = dataclasses.replace(request, body=bytes(data))
    report = scanner.scan(mutated)
    if report.verdict is Verdict.PASS:
        # Passing is only right when the flips destroyed the code: the untouched body with the
        # same flips applied to a copy must differ from the original where the code sat, which
        # we cannot tell for compressed bodies; require at least that a flip happened.
        assert flips and bytes(data) != request.body, (attack[0], report.as_dict())


@pytest.mark.parametrize("word", ["x", "w", "5"])
@pytest.mark.parametrize(
    "lead", ["Potilaan tunnus on nyt Potilaan tunn", "Potilaan tunnus on nyt Potilaan tunnus "]
)
def test_a_word_after_a_base64_token_does_not_hide_its_code(
    scanner: Scanner, lead: str, word: str
) -> None:
    """A token without padding, a short word on the next line: the two decode together as a
    block, to text too, and the word's bits put a digit right after the code's check
    character (``…308T1``), which no code is. Every reading that is text is read, so the
    token's own is too (found by the property test of ``base64_tokens``: 30 of 200 such
    bodies passed)."""
    for c, verdict in ((REAL, Verdict.BLOCK), (TEST, Verdict.PASS)):
        token = base64.b64encode(f"{lead}{c}".encode()).decode().rstrip("=")
        report = scanner.scan(body("text/plain", f"Liite {token}\n{word}\n".encode()))
        assert report.verdict is verdict, (c == REAL, report.as_dict())


def _hex(text: str) -> str:
    return text.encode().hex()


#: Text written in hex, as a careless system sends a binary column: XML Schema hexBinary, a
#: bytea dump behind "\x", a varbinary behind "0x"; in every place a reader could undo it.
HEX_CARRIERS: dict[str, Callable[[str], tuple[str, bytes]]] = {
    "text": lambda c: ("text/plain", f"Sarake: {_hex('Potilas ' + c)}\n".encode()),
    "text, bytea": lambda c: ("text/plain", f"note=\\x{_hex('Potilas ' + c)}\n".encode()),
    "JSON, 0x": lambda c: ("application/json", json.dumps({"note": "0x" + _hex(c)}).encode()),
    "JSON, bytea": lambda c: ("application/json", json.dumps({"note": "\\x" + _hex(c)}).encode()),
    "XML text": lambda c: ("application/xml", f"<r><v>{_hex(c)}</v></r>".encode()),
    "XML text, bytea": lambda c: (
        "application/xml",
        f"<r><v>\\x{_hex('Potilas ' + c)}</v></r>".encode(),
    ),
    "XML attribute": lambda c: ("application/xml", f'<r v="{_hex(c)}"/>'.encode()),
    "form": lambda c: ("application/x-www-form-urlencoded", f"a=1&note={_hex(c)}".encode()),
}


@pytest.mark.parametrize("carrier", HEX_CARRIERS)
def test_text_written_in_hex_is_read(scanner: Scanner, carrier: str) -> None:
    """A code spelt in hex digits passed unread (hex alone was taken for an identifier, and a
    "0x" prefix for Base64 noise); the text it spells is now read. Its twin, a test code,
    passes; a digest in hex stays an identifier."""
    for c, verdict in ((REAL, Verdict.BLOCK), (TEST, Verdict.PASS)):
        content_type, data = HEX_CARRIERS[carrier](c)
        report = scanner.scan(body(content_type, data))
        assert report.verdict is verdict, (c == REAL, report.as_dict())
    digest = "d41d8cd98f00b204e9800998ecf8427e0123456789abcdef"
    content_type, data = HEX_CARRIERS[carrier](TEST)
    clean = data.replace(_hex(TEST).encode(), digest.encode())
    assert scanner.scan(body(content_type, clean)).verdict is Verdict.PASS


@pytest.mark.parametrize(
    "place",
    ["header", "header, 0x", "cookie", "path segment", "query"],
)
def test_text_written_in_hex_is_read_in_the_request_head(scanner: Scanner, place: str) -> None:
    """The head's tokens as the body's strings: a code spelt in hex in a header, a cookie or a
    path segment passed (only Base64 was tried there); its test-code twin passes."""
    for c, verdict in ((REAL, Verdict.BLOCK), (TEST, Verdict.PASS)):
        spelt = _hex(c)
        request = {
            "header": Request("GET", "/x", (("X-Note", spelt),), b""),
            "header, 0x": Request("GET", "/x", (("X-Note", "0x" + spelt),), b""),
            "cookie": Request("GET", "/x", (("Cookie", f"s={spelt}"),), b""),
            "path segment": Request("GET", f"/fhir/Binary/{spelt}", (), b""),
            "query": Request("GET", f"/x?q={spelt}", (), b""),
        }[place]
        report = scanner.scan(request)
        assert report.verdict is verdict, (c == REAL, report.as_dict())


@pytest.mark.parametrize("real", [REAL, code("010203", "A", 456)], ids=["letters", "digits only"])
@pytest.mark.parametrize("place", ["Host header", "authority"])
def test_a_code_in_hex_in_the_host_is_read(scanner: Scanner, place: str, real: str) -> None:
    """A host label of hex (HTTP/2's ``:authority``, an absolute-form target, a Host line): its
    labels are tried as the Host header's tokens, and a label of digits alone too when it is
    long enough to be hex of text (``010203A456R`` is ``3031…3652``: skipped as a number)."""
    for c, verdict in ((real, Verdict.BLOCK), (TEST, Verdict.PASS)):
        host = f"{_hex(c)}.kanta.test"
        request = (
            Request("GET", "/x", (("Host", host),), b"")
            if place == "Host header"
            else Request("GET", f"http://{host}/x", (), b"", host=host, authority=host)
        )
        report = scanner.scan(request)
        assert report.verdict is verdict, (c == real, report.as_dict())


def test_what_hex_spells_is_located_as_hex(scanner: Scanner) -> None:
    """A finding in text decoded from hex is marked ``!hex`` (a tester looks for the encoding the
    location names); Base64's keeps ``!base64``."""
    spelt = _hex(REAL)
    encoded = base64.b64encode(f"Potilas {REAL}".encode()).decode()
    report = scanner.scan(
        body("application/xml", f"<r><v>{spelt}</v><w>{encoded}</w></r>".encode())
    )
    assert {f.location for f in report.findings} >= {"/r/v!hex:line 1", "/r/w!base64:line 1"}


@pytest.mark.parametrize(
    "carrier",
    ["XML text", "XML attribute", "XML attribute, walked", "text", "JSON"],
)
def test_hex_wrapped_in_lines_is_read(scanner: Scanner, carrier: str) -> None:
    """Hex wrapped at 32 digits (a pretty-printed ``hexBinary``): read as one text. An XML
    attribute reads its line breaks as spaces (the walk sees those: a character reference
    elsewhere makes the screen give up). Found attacking the hex reading: every wrapped form
    passed; its twin, a test code, passes."""
    import textwrap

    for c, verdict in ((REAL, Verdict.BLOCK), (TEST, Verdict.PASS)):
        wrapped = "\n".join(textwrap.wrap(_hex(f"Potilas {c} kotona"), 32))
        content_type, data = {
            "XML text": ("application/xml", f"<r><v>{wrapped}</v></r>"),
            "XML attribute": ("application/xml", f'<r v="{wrapped}"/>'),
            "XML attribute, walked": ("application/xml", f'<r a="&#233;" v="{wrapped}"/>'),
            "text": ("text/plain", f"liite:\n{wrapped}\n"),
            "JSON": ("application/json", json.dumps({"v": wrapped})),
        }[carrier]
        report = scanner.scan(body(content_type, data.encode()))
        assert report.verdict is verdict, (c == REAL, report.as_dict())
