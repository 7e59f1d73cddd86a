"""End to end: what a careless system sends in containers, odd labels and odd encodings is read.

One representative of each class the guard once forwarded unread (issue 7), through the real
proxy (``kanta-guard run``, two scan workers) to the recording upstream: a real code inside is
answered 403 and never arrives; the same request with a 900-series code arrives byte for byte.
Also: a pathological body is answered in bounded time, and other clients keep being served.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import REAL, TEST, cda

from .conftest import Proxy, Upstream, marker, requests_session

pytestmark = pytest.mark.e2e


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
    return buf.getvalue()


def _pdf(text: str) -> bytes:
    """A one-page PDF whose page text is in a Flate-compressed content stream."""
    from pypdf import PdfWriter
    from pypdf.generic import (
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
    )

    writer = PdfWriter()
    page = writer.add_blank_page(200, 200)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode("latin-1"))
    stream = stream.flate_encode()
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _jpeg_with_comment(text: str) -> bytes:
    """A JPEG whose EXIF ImageDescription holds ``text``."""
    from PIL import Image

    image = Image.new("RGB", (8, 8), "white")
    exif = Image.Exif()
    exif[0x010E] = text  # ImageDescription
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _wrapped(data: bytes, widths: tuple[int, ...]) -> str:
    """Base64 of ``data`` with line breaks at irregular widths (as hand-built messages have)."""
    text = base64.b64encode(data).decode()
    lines, at, i = [], 0, 0
    while at < len(text):
        width = widths[min(i, len(widths) - 1)]
        lines.append(text[at : at + width])
        at, i = at + width, i + 1
    return "\r\n".join(lines)


def _multipart_pdf(value: str) -> tuple[bytes, str]:
    boundary = "kg-e2e-boundary"
    part = base64.b64encode(_pdf(f"Potilas {value}")).decode()
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="liite"; filename="a.pdf"\r\n'
        f"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{part}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


#: case: builds (body, headers) for a value (a real code or a test code)
CASES: dict[str, Callable[[str], tuple[bytes, dict[str, str]]]] = {
    "zip": lambda v: (_zip("kertomus.txt", f"Potilas {v}"), {"Content-Type": "application/zip"}),
    "docx": lambda v: (
        _zip("word/document.xml", f'<w:document xmlns:w="urn:w"><w:t>{v}</w:t></w:document>'),
        {"Content-Type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    ),
    "pdf-multipart": lambda v: (
        _multipart_pdf(v)[0],
        {"Content-Type": _multipart_pdf(v)[1]},
    ),
    "gzip-as-media-type": lambda v: (
        gzip.compress(f"Potilas {v}".encode()),
        {"Content-Type": "application/gzip"},
    ),
    "jpeg-exif": lambda v: (_jpeg_with_comment(f"Potilas {v}"), {"Content-Type": "image/jpeg"}),
    "json-labelled-png": lambda v: (
        json.dumps({"resourceType": "Patient", "note": v}).encode(),
        {"Content-Type": "image/png"},
    ),
    "gzip-twice-two-lines": lambda v: (
        gzip.compress(gzip.compress(cda(patient=v).encode())),
        # Two header lines are one list (RFC 9110 §5.3): undone in order, both.
        {"Content-Type": "application/xml", "Content-Encoding": "gzip, gzip"},
    ),
    "utf16-text-no-bom": lambda v: (
        f"Potilas {v} tuli vastaanotolle".encode("utf-16-le"),
        {"Content-Type": "text/plain"},
    ),
    "split-by-markup": lambda v: (
        cda(narrative=f"{v[:4]}<content>{v[4:]}</content>").encode(),
        {"Content-Type": "application/xml"},
    ),
    "base64-irregular-lines": lambda v: (
        (
            '<Binary xmlns="http://hl7.org/fhir"><contentType value="application/xml"/>'
            f'<data value="{_wrapped(cda(patient=v).encode(), (20, 60, 76))}"/></Binary>'
        ).encode(),
        {"Content-Type": "application/fhir+xml"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_code_inside_is_blocked(proxy: Proxy, upstream: Upstream, case: str) -> None:
    """A real code inside each container or odd encoding is answered 403 and never arrives."""
    path = marker(case)
    body, headers = CASES[case](REAL)
    response = requests_session(proxy).post(
        upstream.url(path), data=body, headers=headers, timeout=30
    )
    assert response.status_code == 403, (case, response.status_code, response.text[:300])
    assert "hetu.real" in response.headers.get("X-Kanta-Guard-Rules", "")
    assert upstream.got(path) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_test_code_inside_arrives_unchanged(proxy: Proxy, upstream: Upstream, case: str) -> None:
    """The same request with a 900-series code reaches the upstream byte for byte."""
    path = marker(f"{case}-clean")
    body, headers = CASES[case](TEST)
    response = requests_session(proxy).post(
        upstream.url(path), data=body, headers=headers, timeout=30
    )
    assert response.status_code == 200, (case, response.status_code, response.text[:300])
    got = upstream.got(path)
    assert len(got) == 1 and got[0].body == body


def test_query_percent_encoded_twice_is_blocked(proxy: Proxy, upstream: Upstream) -> None:
    """A code percent-encoded twice in the query is found (a receiver may decode it again)."""
    path = marker("query-twice")
    twice = REAL.replace("-", "%252D")
    response = requests_session(proxy).get(upstream.url(f"{path}?identifier={twice}"), timeout=30)
    assert response.status_code == 403
    assert upstream.got(path) == []


def test_pathological_bodies_are_answered_in_bounded_time(proxy: Proxy, upstream: Upstream) -> None:
    """Bodies that once took tens of seconds (OID fragments, a flood of codes) are answered
    within seconds, and a plain request meanwhile is served in normal time."""
    fragments = ('<a root="1.2.246.21" extension="x"/>' * 250).encode()  # ~8.5 KB
    flood = " ".join(REAL for _ in range(20_000)).encode()  # ~240 KB of real codes
    plain = marker("plain-meanwhile")
    with ThreadPoolExecutor(max_workers=3) as pool:
        started = time.monotonic()
        slow = [
            pool.submit(
                requests_session(proxy).post,
                upstream.url(marker(name)),
                data=data,
                headers={"Content-Type": "text/plain"},
                timeout=60,
            )
            for name, data in (("fragments", fragments), ("flood", flood))
        ]
        time.sleep(0.05)
        t0 = time.monotonic()
        meanwhile = requests_session(proxy).get(upstream.url(plain), timeout=30)
        plain_seconds = time.monotonic() - t0
        answers = [f.result() for f in slow]
        total = time.monotonic() - started
    assert meanwhile.status_code == 200 and plain_seconds < 2.0, plain_seconds
    assert answers[0].status_code == 200  # fragments: clean
    assert answers[1].status_code == 403  # the flood: blocked, with a bounded answer
    assert len(answers[1].content) < 100_000
    assert total < 20, total


def test_deflate_body_declared_zlib_is_read(proxy: Proxy, upstream: Upstream) -> None:
    """A deflate-encoded SOAP body with a code is decoded and blocked (control for encodings)."""
    path = marker("deflate")
    body = zlib.compress(cda(patient=REAL).encode())
    headers = {"Content-Type": "application/xml", "Content-Encoding": "deflate"}
    response = requests_session(proxy).post(
        upstream.url(path), data=body, headers=headers, timeout=30
    )
    assert response.status_code == 403
    assert upstream.got(path) == []
