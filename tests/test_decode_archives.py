"""Tests of kanta_guard/decode/archives.py's zip reading: the archives real tools write are read
whole and pass, with nothing left over; what the central directory does not list (a local entry a
streaming reader reads, bytes between entries, before the first or after the end record) is read
too, or refused where it cannot be.

The archives of ``tests/fixtures/zips`` are written by Info-ZIP's zip, 7-Zip, libarchive's bsdtar
and the JDK's jar (``make.sh`` there regenerates them); Python's zipfile is driven here with each
of its options. ``build_zip`` assembles archives byte by byte, entries listed or not, for the
attacks (tests/test_attacks_decoding.py uses it too).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from helpers import REAL, TEST
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parsers_container import docx, jpeg, odt, xlsx, zip_of

from kanta_guard import Scanner
from kanta_guard.decode import Piece, archives
from kanta_guard.decode.archives import NotAZipError, zip_pieces
from kanta_guard.errors import UnscannableError
from kanta_guard.model import Verdict

ZIPS = Path(__file__).resolve().parent / "fixtures" / "zips"

# -- an archive assembled byte by byte ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Member:
    """One local entry of ``build_zip``: listed in the central directory, or not."""

    name: str
    content: bytes
    method: int = zipfile.ZIP_DEFLATED
    flags: int = 0
    #: Sizes and CRC in a data descriptor after the data (flag bit 3), zeros in the header.
    descriptor: bool = False
    listed: bool = True
    #: Listed twice in the central directory (two records, one local entry).
    twice: bool = False
    #: Bytes after the compressed data, counted in the compressed size.
    trailing: bytes = b""
    #: The method the local header states, where it differs from the directory's.
    local_method: int | None = None


def compress(content: bytes, method: int) -> bytes:
    if method == zipfile.ZIP_DEFLATED:
        encoder = zlib.compressobj(9, zlib.DEFLATED, -15)
        return encoder.compress(content) + encoder.flush()
    if method == zipfile.ZIP_STORED:
        return content
    return zipfile._get_compressor(method).compress(content) + b""  # type: ignore[attr-defined]


def local_entry(member: Member) -> tuple[bytes, bytes]:
    """A member's local entry (header, data, descriptor) and its compressed data."""
    data = compress(member.content, member.method) + member.trailing
    crc = zlib.crc32(member.content)
    name = member.name.encode()
    flags = member.flags | (0x8 if member.descriptor else 0)
    sizes = (0, 0, 0) if member.descriptor else (crc, len(data), len(member.content))
    method = member.method if member.local_method is None else member.local_method
    header = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, *sizes, len(name), 0
    )
    out = header + name + data
    if member.descriptor:
        out += struct.pack("<4s3L", b"PK\x07\x08", crc, len(data), len(member.content))
    return out, data


def build_zip(
    *items: Member | bytes, before_end: bytes = b"", after: bytes = b"", comment: bytes = b""
) -> bytes:
    """A zip of the items in this order: members (listed or not) and raw bytes between them;
    ``before_end`` between the central directory and the end record, ``after`` after it."""
    out = bytearray()
    central = bytearray()
    count = 0
    for item in items:
        if isinstance(item, bytes):
            out += item
            continue
        offset = len(out)
        entry, data = local_entry(item)
        out += entry
        if not item.listed:
            continue
        name = item.name.encode()
        flags = item.flags | (0x8 if item.descriptor else 0)
        record = struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            flags,
            item.method,
            0,
            0x21,
            zlib.crc32(item.content),
            len(data),
            len(item.content),
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        for _ in range(2 if item.twice else 1):
            central += record + name
            count += 1
    start = len(out)
    out += central + before_end
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), start, 0)
    return bytes(out + comment + after)


def pieces(data: bytes, **options: bool) -> list[Piece]:
    return list(zip_pieces(data, max_entries=100, max_size=1 << 30, location="body", **options))


def contents(data: bytes, **options: bool) -> dict[str, bytes]:
    return {p.where: p.data for p in pieces(data, **options) if p.data is not None}


def left_over(found: list[Piece]) -> list[str]:
    """Where pieces of what the directory does not account for were given."""
    return [p.where for p in found if p.where.startswith(("bytes[", "unlisted@"))]


# -- archives real tools write ------------------------------------------------------------------


FIXTURES = sorted(p for p in ZIPS.glob("*.zip") if p.name != "7zip-deflate64.zip")


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_tool_written_zip_is_read_whole(scanner: Scanner, path: Path) -> None:
    """Each tool's archive (descriptors, zip64, stored, bzip2, LZMA, a comment, UTF-8 names,
    NUL block padding): every member read as zipfile reads it, nothing left over, and it
    passes (it holds a 900-series code only)."""
    data = path.read_bytes()
    found = pieces(data)
    assert left_over(found) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        expected = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
    assert {k: v for k, v in contents(data).items()} == expected
    assert b"010181-900C" in b"".join(expected.values())
    report = scanner.scan_bytes(data, "application/zip")
    assert report.verdict is Verdict.PASS, report.as_dict()


def test_deflate64_is_refused_by_its_method(scanner: Scanner) -> None:
    """7-Zip's Deflate64 (method 9), which zipfile cannot decode: unscannable, named."""
    report = scanner.scan_bytes((ZIPS / "7zip-deflate64.zip").read_bytes(), "application/zip")
    assert report.verdict is Verdict.BLOCK
    assert [f.rule for f in report.findings] == ["unscannable"]
    assert "method 9" in report.findings[0].explanation


def _python_zip(
    method: int, level: int | None, streamed: bool, zip64: bool, comment: bytes, names: list[str]
) -> bytes:
    out = io.BytesIO()
    target: io.RawIOBase | io.BytesIO = out
    if streamed:
        # Not seekable: zipfile writes data descriptors (flag bit 3), as a streaming writer does.
        class Pipe(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, b: object) -> int:
                return out.write(b)  # type: ignore[arg-type]

        target = Pipe()
    with zipfile.ZipFile(target, "w", method, compresslevel=level) as archive:
        archive.comment = comment
        for index, name in enumerate(names):
            if name.endswith("/"):
                archive.mkdir(name)
                continue
            content = (f"rivi {index} {TEST} " * (index + 1)).encode()
            with archive.open(name, "w", force_zip64=zip64) as stream:
                stream.write(content)
    return out.getvalue()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(
        [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
    ),
    level=st.sampled_from([None, 1, 9]),
    streamed=st.booleans(),
    zip64=st.booleans(),
    comment=st.sampled_from([b"", b"kommentti"]),
    names=st.lists(
        st.sampled_from(["a.txt", "kansio/", "kansio/b.xml", "ä.txt", "c.json", "d"]),
        max_size=5,
        unique=True,
    ),
)
def test_python_written_zip_is_read_whole(
    scanner: Scanner,
    method: int,
    level: int | None,
    streamed: bool,
    zip64: bool,
    comment: bytes,
    names: list[str],
) -> None:
    """zipfile's archives, with every option that changes the layout (method, level, data
    descriptors, zip64 records, a comment, directories, none at all): nothing left over."""
    data = _python_zip(method, level, streamed, zip64, comment, names)
    found = pieces(data)
    assert left_over(found) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        expected = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
    assert contents(data) == expected
    assert scanner.scan_bytes(data, "application/zip").verdict is Verdict.PASS


def epub(text: str) -> bytes:
    """An EPUB (OCF 3.3 §4.3: the ``mimetype`` member first, stored, no extra field)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", "<container/>", zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/a.xhtml", f"<html><p>{text}</p></html>", zipfile.ZIP_DEFLATED)
    return out.getvalue()


@pytest.mark.parametrize("make", [docx, xlsx, odt, epub], ids=["docx", "xlsx", "odt", "epub"])
def test_office_packages_have_nothing_left_over(scanner: Scanner, make: object) -> None:
    assert callable(make)
    data = make(f"Potilas {TEST}")
    assert left_over(pieces(data)) == []
    assert scanner.scan_bytes(data, None).verdict is Verdict.PASS
    assert scanner.scan_bytes(make(f"Potilas {REAL}"), None).verdict is Verdict.BLOCK


# -- what the directory does not list -------------------------------------------------------------

HIDDEN = f"Potilas {REAL}".encode()


def test_unlisted_entry_is_read_with_its_own_method() -> None:
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        data = build_zip(
            Member("a.txt", b"ei mitaan"),
            Member("piilo.txt", HIDDEN, method=method, listed=False),
            Member("b.txt", b"ei tata"),
        )
        at = len(local_entry(Member("a.txt", b"ei mitaan"))[0])
        found = contents(data)
        assert found[f"unlisted@{at}:piilo.txt"] == HIDDEN
        assert found["a.txt"] == b"ei mitaan" and found["b.txt"] == b"ei tata"


def test_unlisted_entry_with_a_data_descriptor_is_read_to_its_stream_end() -> None:
    """As ZipInputStream reads one: the DEFLATE stream ends it, its descriptor is consumed."""
    data = build_zip(
        Member("piilo.txt", HIDDEN, listed=False, descriptor=True),
        Member("a.txt", b"ei mitaan"),
    )
    found = pieces(data)
    assert [p.where for p in found if p.data is not None] == ["a.txt", "unlisted@0:piilo.txt"]
    assert contents(data)["unlisted@0:piilo.txt"] == HIDDEN


def test_unlisted_entry_gets_its_media_type_from_its_name() -> None:
    data = build_zip(Member("piilo.json", b'{"a": 1}', listed=False), Member("a.txt", b"x"))
    (piece,) = [p for p in pieces(data) if p.where.startswith("unlisted@") and p.data]
    assert piece.media_type == "application/json"


def test_bytes_no_entry_accounts_for_are_given() -> None:
    """Between entries, after the end record. (Between the directory and the end record they
    move the directory where zipfile looks for it: no archive, refused.)"""
    hidden = gzip.compress(HIDDEN)
    with pytest.raises(NotAZipError):
        pieces(build_zip(Member("a.txt", b"x"), before_end=hidden))
    for where in ("between", "after"):
        items: list[Member | bytes] = [Member("a.txt", b"x")]
        options = {}
        if where == "between":
            items.append(hidden)
        else:
            options[where] = hidden
        items.append(Member("b.txt", b"y"))
        data = build_zip(*items, **options)
        found = [p for p in pieces(data) if p.where.startswith("bytes[")]
        assert [p.data for p in found] == [hidden], where
        start = data.find(hidden)
        assert found[0].where == f"bytes[{start}:{start + len(hidden)}]"


def test_nul_padding_is_not_given() -> None:
    data = build_zip(Member("a.txt", b"x"), b"\x00" * 64, Member("b.txt", b"y"), after=b"\0" * 9)
    assert left_over(pieces(data)) == []


def test_a_member_data_after_its_deflate_stream_is_read() -> None:
    """Bytes the central directory counts in a member but its DEFLATE stream does not take
    (zipfile ignores them; a streaming reader takes them for the next entry)."""
    hidden, _ = local_entry(Member("piilo.txt", HIDDEN))
    data = build_zip(Member("a.txt", b"ei mitaan", trailing=hidden), Member("b.txt", b"y"))
    found = contents(data)
    assert found["a.txt"] == b"ei mitaan"
    assert [v for k, v in found.items() if k.startswith("unlisted@")] == [HIDDEN]


def test_appended_archive_leaves_the_file_before_it_to_its_reader() -> None:
    host = jpeg()
    data = host + zip_of({"a.txt": "x"})
    assert left_over(pieces(data, appended=True)) == []
    assert left_over(pieces(data)) == [f"bytes[0:{len(host)}]"]


def test_appended_archive_of_no_members_is_nothing() -> None:
    data = jpeg() + b"PK\x05\x06" + b"\x00" * 18 + b"rest of the picture"
    assert pieces(data, appended=True) == []


def test_not_a_zip_is_told_apart() -> None:
    with pytest.raises(NotAZipError):
        pieces(b"PK\x03\x04 no archive at all")


# -- what cannot be read is refused -------------------------------------------------------------

REFUSED = [
    (
        "overlapping members",
        build_zip(Member("a.txt", b"x" * 100, twice=True)),
        "overlap",
    ),
    (
        "local method differs",
        build_zip(Member("a.txt", HIDDEN, local_method=zipfile.ZIP_STORED)),
        "contradicts the central directory",
    ),
    (
        "unlisted stored with a descriptor",
        build_zip(
            Member("p.txt", HIDDEN, method=zipfile.ZIP_STORED, descriptor=True, listed=False),
            Member("a.txt", b"x"),
        ),
        "size is unknown",
    ),
    (
        "unlisted encrypted",
        build_zip(Member("p.txt", HIDDEN, flags=1, listed=False), Member("a.txt", b"x")),
        "encrypted",
    ),
    (
        "unlisted bzip2",
        build_zip(
            Member("p.txt", HIDDEN, method=zipfile.ZIP_BZIP2, listed=False), Member("a.txt", b"x")
        ),
        "method 12",
    ),
    (
        "unlisted entry running into a listed one",
        # (its header claims more stored bytes than there are before the next entry)
        build_zip(
            local_entry(Member("p.txt", HIDDEN, method=zipfile.ZIP_STORED))[0][:-5],
            Member("a.txt", b"x"),
        ),
        "runs into another entry",
    ),
    (
        "unlisted deflate stream running into a listed one",
        build_zip(local_entry(Member("p.txt", HIDDEN * 20))[0][:-9], Member("a.txt", b"x")),
        "corrupt unlisted zip entry",
    ),
    (
        "unlisted bomb",
        build_zip(Member("p.txt", b"\0" * (64 << 20), listed=False), Member("a.txt", b"x")),
        "zip bomb",
    ),
]


@pytest.mark.parametrize(("name", "data", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_unreadable_layout_is_refused(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UnscannableError) as caught:
        pieces(data)
    assert reason in caught.value.reason, caught.value.reason
    assert REAL not in str(caught.value)


def test_unlisted_entries_count_against_the_member_limit() -> None:
    hidden = [Member(f"p{i}.txt", b"x", listed=False) for i in range(5)]
    data = build_zip(*hidden, Member("a.txt", b"x"))
    with pytest.raises(UnscannableError, match="member limit"):
        list(zip_pieces(data, max_entries=3, max_size=1 << 20, location="body"))
    assert len(list(zip_pieces(data, max_entries=6, max_size=1 << 20, location="body"))) > 6


def test_unlisted_entries_count_against_the_size_limit() -> None:
    data = build_zip(Member("p.txt", b"a" * 5000, listed=False), Member("a.txt", b"b" * 5000))
    with pytest.raises(UnscannableError, match="limit"):
        list(zip_pieces(data, max_entries=10, max_size=8000, location="body"))


def test_walk_of_left_over_bytes_is_linear() -> None:
    """Local header signatures everywhere in a gap: each is read once, in linear time."""

    def archive(n: int) -> bytes:
        hidden = [Member(f"{i}", b"x", method=zipfile.ZIP_STORED, listed=False) for i in range(n)]
        return build_zip(*hidden, b"PK\x03" * n, Member("a.txt", b"x"))

    def cost(n: int) -> float:
        data = archive(n)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            list(zip_pieces(data, max_entries=n + 1, max_size=1 << 30, location="body"))
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(2000), cost(8000)
    assert large < 8 * small, (small, large)


def _inflated(data: bytes) -> bytes | str | None:
    try:
        return archives.inflate_raw(data, 1 << 20)
    except UnscannableError:
        return "unscannable"


def _streams() -> st.SearchStrategy[bytes]:
    """Random bytes, and real raw DEFLATE and zlib streams (every level, small windows, a preset
    dictionary), whole or cut short."""

    @st.composite
    def stream(draw: st.DrawFn) -> bytes:
        payload = draw(st.binary(max_size=200))
        level = draw(st.integers(0, 9))
        wbits = draw(st.sampled_from([-15, -9, 9, 12, 15]))
        zdict = draw(st.sampled_from([None, b"a dictionary"]))
        maker = (
            zlib.compressobj(level, zlib.DEFLATED, wbits, zdict=zdict)
            if zdict and wbits > 0
            else zlib.compressobj(level, zlib.DEFLATED, wbits)
        )
        data = maker.compress(payload) + maker.flush()
        return data[: draw(st.integers(0, len(data)))]

    return st.one_of(st.binary(max_size=48), stream())


@settings(max_examples=1500, deadline=None)
@given(_streams())
def test_inflate_raw_header_check_changes_no_answer(data: bytes) -> None:
    """``inflate_raw`` refuses at the header what zlib would refuse at its first bytes: the
    answer is the one the trial gives."""
    checked = _inflated(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(archives, "_may_open", lambda data, wbits: True)
        assert _inflated(data) == checked
