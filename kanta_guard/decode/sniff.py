"""Identifying containers by their bytes (magic numbers), by their media type and by file name.

The label of a payload (a Content-Type, a CDA ``mediaType``, a FHIR ``contentType``, a file's
extension) is a hint: a zip declared ``text/plain`` is still a zip, and a server that reads it
as one would see what a text scan never decodes. So every payload is sniffed by its first bytes;
the label decides only when the bytes say nothing.
"""

from __future__ import annotations

from pathlib import PurePosixPath

__all__ = [
    "ARCHIVE_TYPES",
    "COMPRESSED_TYPES",
    "IMAGE_TYPES",
    "PDF",
    "UNREADABLE_TYPES",
    "ZIP",
    "container_type",
    "sniff",
    "type_for_name",
]

ZIP = "application/zip"
TAR = "application/x-tar"
PDF = "application/pdf"
GZIP = "application/gzip"
BZIP2 = "application/x-bzip2"
XZ = "application/x-xz"
#: The legacy LZMA "alone" format (``.lzma``, LZMA SDK lzma-file-format.txt; xz's
#: ``--format=lzma``): no magic number, a properties byte and a dictionary size instead.
LZMA = "application/x-lzma"
ZSTD = "application/zstd"
BROTLI = "application/x-brotli"

#: Single compressed streams, read by ``decode.archives.decompress``.
COMPRESSED_TYPES = frozenset({GZIP, BZIP2, XZ, LZMA, ZSTD, BROTLI})
#: Archives of named members.
ARCHIVE_TYPES = frozenset({ZIP, TAR})
#: Image formats whose metadata Pillow reads (the pixels are the imaging issue's).
IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/tiff", "image/webp", "image/bmp"}
)
#: Containers the guard knows but cannot open (their content would pass unread): unscannable.
UNREADABLE_TYPES = frozenset(
    {"application/x-7z-compressed", "application/vnd.rar", "application/x-ms-cab-compressed"}
)

# Media types (lower case) that name a container, mapped to the canonical one. IANA registry,
# RFC 6713 (application/gzip, application/zlib), RFC 8878 §7.1 (application/zstd); the x- names
# are what browsers and HTTP clients really send.
_ALIASES = {
    "application/zip": ZIP,
    "application/x-zip": ZIP,
    "application/x-zip-compressed": ZIP,
    "application/zip-compressed": ZIP,
    "application/java-archive": ZIP,
    "application/epub+zip": ZIP,
    "application/x-tar": TAR,
    "application/x-gtar": TAR,
    "application/tar": TAR,
    "application/pdf": PDF,
    "application/x-pdf": PDF,
    "application/acrobat": PDF,
    "application/gzip": GZIP,
    "application/x-gzip": GZIP,
    "application/gzip-compressed": GZIP,
    "application/x-gunzip": GZIP,
    "application/x-compressed-tar": GZIP,
    "application/x-bzip2": BZIP2,
    "application/x-bzip": BZIP2,
    "application/bzip2": BZIP2,
    "application/x-xz": XZ,
    "application/xz": XZ,
    "application/x-lzma": LZMA,
    "application/zstd": ZSTD,
    "application/x-zstd": ZSTD,
    "application/x-brotli": BROTLI,
    "application/brotli": BROTLI,
    "application/x-br": BROTLI,
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/apng": "image/png",
    "image/x-png": "image/png",
    "image/tif": "image/tiff",
    "image/x-tiff": "image/tiff",
    "image/x-ms-bmp": "image/bmp",
    "application/x-rar-compressed": "application/vnd.rar",
    "application/x-rar": "application/vnd.rar",
    "application/x-7z": "application/x-7z-compressed",
    "application/vnd.ms-cab-compressed": "application/x-ms-cab-compressed",
}
# Office Open XML (ECMA-376 Part 2, OPC) and OpenDocument (ISO/IEC 26300, OASIS ODF 1.3 Part 2
# §3) packages are zip archives of XML; their media types share these prefixes.
_ZIP_PREFIXES = (
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
    "application/vnd.ms-word.document.macroenabled",
    "application/vnd.ms-excel.sheet.macroenabled",
    "application/vnd.ms-powerpoint.presentation.macroenabled",
    "application/vnd.android.package-archive",
)

_EXTENSIONS = {
    ".zip": ZIP,
    ".jar": ZIP,
    ".epub": ZIP,
    ".docx": ZIP,
    ".docm": ZIP,
    ".dotx": ZIP,
    ".xlsx": ZIP,
    ".xlsm": ZIP,
    ".pptx": ZIP,
    ".odt": ZIP,
    ".ods": ZIP,
    ".odp": ZIP,
    ".odg": ZIP,
    ".tar": TAR,
    ".pdf": PDF,
    ".gz": GZIP,
    ".tgz": GZIP,
    ".gzip": GZIP,
    ".bz2": BZIP2,
    ".tbz2": BZIP2,
    ".xz": XZ,
    ".lzma": LZMA,
    ".txz": XZ,
    ".zst": ZSTD,
    ".br": BROTLI,
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".7z": "application/x-7z-compressed",
    ".rar": "application/vnd.rar",
    ".cab": "application/x-ms-cab-compressed",
    # Members of documents: read by the parsers that claim these types.
    ".xml": "application/xml",
    ".rels": "application/xml",
    ".xsl": "application/xml",
    ".svg": "image/svg+xml",
    ".xhtml": "application/xhtml+xml",
    ".html": "text/html",
    ".htm": "text/html",
    ".json": "application/json",
    ".txt": "text/plain",
    ".csv": "text/csv",
}


def container_type(media_type: str) -> str | None:
    """The canonical container type a (lower-case, parameterless) media type names, or None."""
    canonical = _ALIASES.get(media_type)
    if canonical is not None:
        return canonical
    if media_type in IMAGE_TYPES or media_type in UNREADABLE_TYPES:
        return media_type
    if media_type.startswith(_ZIP_PREFIXES) or media_type.endswith("+zip"):
        return ZIP
    if media_type.startswith("image/") and not media_type.endswith("+xml"):
        return media_type  # an image format: Pillow is asked, and refused if it cannot read it
    return None


#: First bytes that may begin a signature below, or the junk a PDF header may follow (control
#: bytes, whitespace, a BOM's first byte): 1 where :func:`sniff` must look further. Any other
#: first byte (``<``, ``{``, a letter of text) can only start a tar archive (its magic is at
#: offset 257), so the search is skipped: the scan sniffs every payload, nested ones too.
_MAYBE = bytes(
    1 if b < 0x20 or b in b" %P\x1fB\xfd\x28\xff\x89GIMR7\xef" or 0x50 <= b <= 0x5F else 0
    for b in range(256)
)


def sniff(data: bytes) -> str | None:
    """The container type the first bytes of ``data`` show, or None.

    Only signatures that text, XML and JSON cannot start with are used, so a document is never
    taken for a container. The PDF header may follow up to 1024 bytes of junk, as readers allow
    (ISO 32000-2 §7.5.2 asks for it first; Acrobat searches the first 1024 bytes), but only
    junk no text holds: a text that mentions ``%PDF-`` is still text.
    """
    if data and not _MAYBE[data[0]]:
        return TAR if data[257:262] == b"ustar" else None
    head = data[:8]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return ZIP  # APPNOTE.TXT §4.3.7 (local header), §4.3.16 (empty archive), §8.5.3 (split)
    if head.startswith(b"\x1f\x8b\x08") and not (head[3:4] and head[3] & 0xE0):
        # RFC 1952 §2.3.1: the magic, CM 8 (deflate, the only method defined) and no reserved
        # FLG bit set; zlib reads no other, so bytes that merely begin with the magic (one
        # random Base64 blob in 65536: a digest, a signature) are no gzip to any reader.
        return GZIP
    if head.startswith(b"BZh") and data[3:4] in b"123456789" and data[4:10] == b"1AY&SY":
        return BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return XZ  # The .xz File Format 1.2.1 §2.1.1.1
    if _lzma_alone(data):
        return LZMA
    if head.startswith(b"\x28\xb5\x2f\xfd") or (
        data[:1] and data[0] & 0xF0 == 0x50 and data[1:4] == b"\x2a\x4d\x18"
    ):
        return ZSTD  # RFC 8878 §3.1.1, §3.1.2 (skippable frame)
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"  # ISO/IEC 10918-1 SOI followed by a marker
    if head == b"\x89PNG\r\n\x1a\n":
        return "image/png"  # ISO/IEC 15948 §5.2
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "image/tiff"  # TIFF 6.0 §2 (and BigTIFF)
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "application/x-7z-compressed"
    if head.startswith(b"Rar!\x1a\x07"):
        return "application/vnd.rar"
    if head.startswith(b"MSCF\x00\x00\x00\x00"):
        return "application/x-ms-cab-compressed"
    if data[257:262] == b"ustar":
        return TAR  # POSIX.1-2001 ustar magic at offset 257 (GNU tar writes "ustar  \0")
    start = data[:1024].find(b"%PDF-")
    if start == 0 or (start > 0 and _junk(data[:start])):
        return PDF
    if b"PK\x05\x06" in data[-_EOCD_SPAN:] and b"PK\x03\x04" in data:
        # A zip after a stub (a self-extracting archive, a zip appended to an image or a
        # script): readers find it from its end record (APPNOTE.TXT §4.3.16, at most a 64 KiB
        # comment from the end), as zipfile does. No text holds those control bytes.
        return ZIP
    return None


#: The end of central directory record (22 bytes) and its longest comment.
_EOCD_SPAN = 22 + 0xFFFF


def _lzma_alone(data: bytes) -> bool:
    """An LZMA "alone" header: properties 0x5D (lc=3, lp=0, pb=2, what every encoder writes by
    default), a dictionary size of 2^n or 3 * 2^(n-1) (4 KiB - 1.5 GiB) and an uncompressed
    size that is unknown (all ones) or below 2^40. No text starts this way (it holds NULs)."""
    if len(data) < 13 or data[0] != 0x5D:
        return False
    dictionary = int.from_bytes(data[1:5], "little")
    sizes = {1 << n for n in range(12, 31)} | {3 << (n - 1) for n in range(12, 31)}
    size = int.from_bytes(data[5:13], "little")
    return dictionary in sizes and (size == (1 << 64) - 1 or size < 1 << 40)


def _junk(prefix: bytes) -> bool:
    """Bytes before a PDF header that no text would hold: whitespace, a BOM, control bytes."""
    rest = prefix.removeprefix(b"\xef\xbb\xbf").strip()
    return not rest or any(b < 0x09 or 0x0E <= b < 0x20 for b in rest)


def type_for_name(name: str) -> str | None:
    """The media type a member's or file's name implies by its extension, or None."""
    # Not PurePath.suffix: OPC's "_rels/.rels" is a name that is all extension (ECMA-376-2 §9.3).
    base = PurePosixPath(name.replace("\\", "/")).name
    dot = base.rfind(".")
    return _EXTENSIONS.get(base[dot:].lower()) if dot != -1 else None
