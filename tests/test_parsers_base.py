"""Base64 sniffing shared by the parsers: what is decoded, and the fast search for candidates."""

from __future__ import annotations

import base64
import random

import pytest

from kanta_guard.parsers.base import base64_content, base64_spans, looks_base64


def _wrap(text: str, width: int, newline: str) -> str:
    return newline.join(text[i : i + width] for i in range(0, len(text), width))


def _samples() -> list[str]:
    """Base64 texts as they really come: one line, MIME/PEM-wrapped, padded, url-safe."""
    rng = random.Random(20261129)
    out: list[str] = []
    for size in (25, 100, 300):
        raw = bytes(rng.randrange(256) for _ in range(size))
        for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            out.append(encoded)
            for width in (16, 64, 76):
                for newline in ("\n", "\r\n", " "):
                    out.append(_wrap(encoded, width, newline))
                    out.append("\n  " + _wrap(encoded, width, newline) + "\n")
    return out


@pytest.mark.parametrize("text", _samples())
def test_spans_find_every_base64_text(text: str) -> None:
    """The span search is a superset: every text base64_content accepts is a candidate."""
    if base64_content(text) is None:
        pytest.skip("not Base64 by base64_content's rules (short, or a ragged last line)")
    data = f"<a x='1'>{text}</a>".encode()
    start = data.index(b">") + 1
    assert (start, start + len(text)) in list(base64_spans(data, b">", b"<"))
    escaped = text.replace("\r", "\\r").replace("\n", "\\n")
    quoted = f'{{"k": "{escaped}"}}'.encode()
    start = quoted.index(b'"', 5) + 1
    assert (start, start + len(escaped)) in list(base64_spans(quoted, b'"', b'"'))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Potilas käyttää lääkettä ohjeen mukaan kahdesti päivässä", False),
        ("6f1c0000-0000-4000-8000-000000000001", False),  # a UUID: an identifier
        ("0123456789abcdef0123456789abcdef", False),  # hex digest
        ("short", False),
        (base64.b64encode(b"<ClinicalDocument/>" * 3).decode(), True),
        (_wrap(base64.b64encode(bytes(range(90))).decode(), 20, "\n"), True),
    ],
)
def test_looks_base64(text: str, expected: bool) -> None:
    assert looks_base64(text) is expected


def test_natural_text_is_no_candidate() -> None:
    """Narrative text (words and spaces) does not even reach base64_content."""
    sentence = b"Potilas kayttaa laaketta ohjeen mukaan kahdesti paivassa. "
    text = b"<text>" + sentence * 20 + b"</text>"
    assert list(base64_spans(text, b">", b"<")) == []


def test_blob_memo_keeps_certificate_sized_texts_only() -> None:
    """Only 1-16 KB texts are kept (certificates), and the memo is bounded."""
    from kanta_guard.parsers.base import BlobMemo

    memo = BlobMemo()
    short, cert, document = b"A" * 344, b"B" * 2000, b"C" * 20_000
    for text in (short, cert, document):
        memo.add(text, len(text) * 3 // 4)
    assert memo.get(short) is None and memo.get(document) is None
    assert memo.get(cert) == 1500
    for i in range(BlobMemo.MAX_ENTRIES):
        memo.add(b"%05d" % i + b"D" * 2000, 1)
    assert memo.get(cert) is None  # full: started over
    assert len(memo._known) <= BlobMemo.MAX_ENTRIES
