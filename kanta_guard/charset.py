"""Finding the character set of a text body and decoding it, strictly or as a best effort.

Precedence (WHATWG Encoding "decode", RFC 7303 §3.2, RFC 8259 §8.1): a byte order mark, then
the HTTP ``charset`` parameter, then the XML declaration, then UTF-8 — or, in strict mode only,
UTF-16/32 sniffed from NUL-byte patterns (RFC 4627 §3, XML 1.0 Appendix F).

Strict mode is for bodies that claim to be text: every byte must decode, and a decoded U+0000
is refused, because neither XML nor JSON allow it and it is what UTF-16 read as UTF-8 looks like
(a server that sniffs UTF-16 would see text the guard did not). Best-effort mode is for content
of unknown type: it never fails and keeps every ASCII byte visible.

A label can lie, and receivers differ in whom they believe: :func:`readings` gives every
plausible reading of a body (the byte order mark's, the declared charset's, the XML
declaration's, UTF-8's if the bytes are valid UTF-8, UTF-16/32's if the NUL bytes say so,
windows-1252's where a label says ISO-8859-1), so a scanner can read them all.
"""

from __future__ import annotations

import codecs
import re

from kanta_guard.errors import UnscannableError
from kanta_guard.idcode import quote_input
from kanta_guard.mediatype import parse_media_type

__all__ = [
    "charset_param",
    "decode_text",
    "readings",
    "sniff_bom",
    "sniff_wide",
    "xml_declared_encoding",
]

# UTF-32 LE before UTF-16 LE: FF FE 00 00 starts with the UTF-16 LE mark.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# XML 1.0 Appendix F.1, "without a byte order mark": the first four bytes of "<?xm" per family.
_XML_FAMILIES = {
    b"\x00\x00\x00<": "utf-32-be",
    b"<\x00\x00\x00": "utf-32-le",
    b"\x00<\x00?": "utf-16-be",
    b"<\x00?\x00": "utf-16-le",
    b"<?xm": "latin-1",  # any ASCII-compatible encoding; read the declaration as Latin-1
    b"\x4c\x6f\xa7\x94": "cp037",  # EBCDIC
}
_XML_DECL_PREFIX_CHARS = 256
# XML 1.0 §2.8 XMLDecl and §4.3.3 EncodingDecl / EncName.
_XML_DECL = re.compile(
    r"<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*([\"'])[0-9.]+\1"
    r"[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*([\"'])([A-Za-z][A-Za-z0-9._-]*)\2"
)
_WIDE = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")
# Python codecs that are not character sets any client would send; refuse them as unknown.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "mbcs", "oem"}
)


# WHATWG Encoding §4.2: the labels "iso-8859-1", "latin1", "ascii", "us-ascii" name
# windows-1252, which browsers (and servers following them) use for such text.
_WINDOWS_1252_LABELS = frozenset({"iso8859-1", "ascii"})
_C1 = re.compile(rb"[\x80-\x9f]")
#: The first bytes whose NUL pattern is read (UTF-16/32 without a BOM).
_WIDE_SAMPLE = 4096


def sniff_bom(data: bytes) -> str | None:
    """The Python codec named by a leading byte order mark (``utf-16-le`` ...), else ``None``."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    return None


def xml_declared_encoding(data: bytes) -> str | None:
    """The ``encoding`` of a leading XML declaration, as written, else ``None``.

    The declaration is read in the family the first bytes show (a BOM, or the ``<?`` patterns
    of XML 1.0 Appendix F), so UTF-16 and UTF-32 documents without a BOM work too.
    """
    bom = sniff_bom(data)
    if bom is not None:
        start = len(_bom_bytes(bom))
        reader = "latin-1" if bom == "utf-8" else bom
    else:
        start = 0
        reader = _XML_FAMILIES.get(data[:4], "")
        if not reader:
            return None
    head = data[start : start + 4 * _XML_DECL_PREFIX_CHARS].decode(reader, errors="replace")
    match = _XML_DECL.match(head)
    return match.group(3) if match else None


def charset_param(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type value, if present and not empty."""
    return parse_media_type(content_type).params.get("charset", "").strip() or None


def decode_text(data: bytes, declared: str | None = None, *, strict: bool) -> str:
    """Decode ``data`` as text (``declared`` is the HTTP charset parameter); BOM removed.

    ``strict``: an unknown charset, undecodable bytes or a U+0000 character raise
    :class:`UnscannableError`. Otherwise never fails: undecodable text falls back to ISO-8859-1
    (UTF-16/32: replacement characters), so every ASCII byte is still seen.
    """
    bom = sniff_bom(data)
    skip = len(_bom_bytes(bom)) if bom is not None else 0
    name = bom or _choose(data, declared, strict=strict)
    view = memoryview(data)[skip:]
    try:
        text = str(view, name)
    except UnicodeDecodeError as exc:
        if strict:
            raise UnscannableError(
                f"body is not valid {name} (byte offset {skip + exc.start})"
            ) from None
        if name in _WIDE:
            return str(view, name, errors="replace")
        return str(view, "latin-1")
    if strict:
        nul = text.find("\x00")
        if nul >= 0:
            raise UnscannableError(
                f"body decoded as {name} contains U+0000 (character offset {nul}); "
                "UTF-16/32 without a byte order mark?"
            )
    return text


def readings(data: bytes, declared: str | None = None, *, strict: bool) -> list[tuple[str, str]]:
    """Every plausible reading of ``data`` as ``(text, how)``, the primary one first (what
    :func:`decode_text` gives), each distinct text once; ``how`` names the codec (``+replace``:
    undecodable bytes replaced, as a lenient receiver reads them).

    The candidates, in order: the byte order mark's codec (BOM stripped), the ``declared``
    charset, the XML declaration's (if it matches the bytes), UTF-8, UTF-16/32 when the NUL
    pattern says so (:func:`sniff_wide`; RFC 4627 §3), windows-1252 where the label is
    ISO-8859-1 or ASCII (WHATWG Encoding §4.2), and, when not ``strict``, ISO-8859-1, which
    reads any bytes. A candidate that fails does not stop the others; it is read with
    replacement characters as well when another one decoded.

    ``strict``: an unknown ``declared`` charset raises :class:`UnscannableError`, and so does a
    body no candidate decodes (the declared charset's error), or one whose every reading holds
    U+0000 without a UTF-16/32 reading beside it.
    """
    if (declared is None or declared.strip().lower() in ("utf-8", "utf8")) and b"\x00" not in data:
        # The common case, decided in two C-level passes: no BOM and no NUL byte, valid UTF-8.
        # (A UTF-8 BOM fails it: U+FEFF has no NUL but makes this reading differ.)
        try:
            text = str(data, "utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if not text.startswith("\ufeff"):
                return [(text, "utf-8")]
    bom = sniff_bom(data)
    # (codec, bytes skipped, whether a receiver is told to use it: then it is also read with
    # replacement characters if it fails).
    candidates: list[tuple[str, int, bool]] = []
    if bom is not None:
        candidates.append((bom, len(_bom_bytes(bom)), True))
    named = _lookup(declared, strict=strict) if declared and declared.strip() else None
    if named is not None:
        candidates.append((_byte_order(named, data), 0, True))
    if data[:4] in _XML_FAMILIES:
        in_xml = xml_declared_encoding(data)
        in_xml_name = _lookup(in_xml, strict=False) if in_xml else None
        if in_xml_name is not None and _encodes_start(in_xml_name, data):
            candidates.append((in_xml_name, 0, False))
    candidates.append(("utf-8", 0, False))
    wide = sniff_wide(data)
    if wide is not None:
        # (A receiver that sniffs it decodes what it can: replaced, if need be.)
        candidates.append((wide, 0, True))
    out: dict[str, str] = {}
    failed: list[tuple[str, int, UnicodeDecodeError]] = []
    told: list[tuple[str, int]] = []
    tried: set[tuple[str, int]] = set()
    view = memoryview(data)
    for name, skip, is_told in candidates:
        if (name, skip) in tried:
            continue
        tried.add((name, skip))
        try:
            out.setdefault(str(view[skip:], name), name)
        except UnicodeDecodeError as exc:
            failed.append((name, skip, exc))
            if is_told:
                told.append((name, skip))
    lenient = not strict and not any(name == "utf-8" for name in out.values())
    if lenient:
        # Not UTF-8: ISO-8859-1 reads any bytes, so every ASCII character is still seen.
        out.setdefault(str(view, "latin-1"), "iso8859-1")
    if (lenient or named in _WINDOWS_1252_LABELS) and _C1.search(data) is not None:
        # windows-1252 differs from ISO-8859-1 in 0x80-0x9F only, where it has the en and em
        # dash (0x96, 0x97) a code may be written with (WHATWG Encoding §4.2).
        out.setdefault(str(view, "cp1252", "replace"), "cp1252+replace")
    if not out:
        name, skip, error = failed[0]
        raise UnscannableError(f"body is not valid {name} (byte offset {skip + error.start})")
    for name, skip in told:
        out.setdefault(str(view[skip:], name, "replace"), name + "+replace")
    if strict and wide is None and all("\x00" in text for text in out):
        nul = next(iter(out)).find("\x00")
        raise UnscannableError(
            f"body contains U+0000 (character offset {nul}) in every reading; "
            "UTF-16/32 without a byte order mark?"
        )
    return list(out.items())


def sniff_wide(data: bytes) -> str | None:
    """``utf-16-le``/``-be`` or ``utf-32-le``/``-be`` if the NUL bytes of ``data`` fall as they
    do in such text without a BOM (the zero high bytes of Latin-script characters), else None.

    The first four bytes decide as in RFC 4627 §3; otherwise the NUL bytes of the first 4 KB
    by position: one byte of each UTF-16 unit mostly NUL, the other almost never.
    """
    sample = data[:_WIDE_SAMPLE]
    if b"\x00" not in sample:
        return None
    first = _sniff_nul(data)
    if first is not None:
        return first
    units = len(sample) // 4
    if units < 2:
        return None
    sample = sample[: units * 4]
    nuls = [sample[i::4].count(0) for i in range(4)]
    if nuls[2] + nuls[3] >= 1.8 * units and nuls[0] < 0.5 * units:
        return "utf-32-le"
    if nuls[0] + nuls[1] >= 1.8 * units and nuls[3] < 0.5 * units:
        return "utf-32-be"
    even, odd = nuls[0] + nuls[2], nuls[1] + nuls[3]
    if odd >= 0.5 * units and even <= 0.1 * units:
        return "utf-16-le"
    if even >= 0.5 * units and odd <= 0.1 * units:
        return "utf-16-be"
    return None


def _bom_bytes(name: str) -> bytes:
    return next(bom for bom, bom_name in _BOMS if bom_name == name)


def _choose(data: bytes, declared: str | None, *, strict: bool) -> str:
    """The codec for data without a BOM: declared, XML declaration, sniffed or UTF-8."""
    if declared and declared.strip():
        name = _lookup(declared, strict=strict)
        if name is not None:
            return _byte_order(name, data)
    family = _XML_FAMILIES.get(data[:4])
    if family is not None and family in _WIDE:
        # The bytes already fix the encoding; a declaration inside cannot change it.
        return family
    in_xml = xml_declared_encoding(data) if family is not None else None
    if in_xml is not None:
        name = _lookup(in_xml, strict=strict)
        if name is not None:
            if _encodes_start(name, data):
                return name
            if strict:
                # XML 1.0 §4.3.3: a declaration contradicting the bytes is a fatal error.
                raise UnscannableError(
                    f"XML declaration names {name}, which does not match the document's bytes"
                )
    if strict:
        return _sniff_nul(data) or "utf-8"
    # Best effort never sniffs NUL patterns: binary formats look like UTF-16 (an implicit-VR
    # DICOM data set starts 08 00 05 00) and would then hide their ASCII text.
    return "utf-8"


def _lookup(charset: str, *, strict: bool) -> str | None:
    """The canonical Python codec name of a charset label; unknown ones raise when strict."""
    label = charset.strip().strip('"').strip()
    try:
        name = codecs.lookup(label).name
        # LookupError for bytes-to-bytes codecs such as "base64" or "zlib" (not with b"":
        # decoding empty bytes takes a shortcut that never asks the codec).
        str(b"abcd", name, "ignore")
    except (LookupError, ValueError, TypeError):
        name = ""
    if name and name not in _NOT_CHARSETS:
        return name
    if strict:
        raise UnscannableError(f"unknown charset {quote_input(label, 32)}")
    return None


def _byte_order(name: str, data: bytes) -> str:
    """Give "utf-16"/"utf-32" without a BOM a byte order: sniffed, else big-endian
    (RFC 2781 §4.3; Python's codec would assume the machine's order)."""
    if name not in ("utf-16", "utf-32"):
        return name
    sniffed = _sniff_nul(data)
    if sniffed is not None and sniffed.startswith(name):
        return sniffed
    return f"{name}-be"


def _sniff_nul(data: bytes) -> str | None:
    """UTF-16/32 from the NUL bytes around the first two ASCII characters (RFC 4627 §3)."""
    if len(data) < 4:
        return None
    a, b, c, d = data[:4]
    if a == b == c == 0 and d:
        return "utf-32-be"
    if a and b == c == d == 0:
        return "utf-32-le"
    if a == c == 0 and b and d:
        return "utf-16-be"
    if a and c and b == d == 0:
        return "utf-16-le"
    return None


def _encodes_start(name: str, data: bytes) -> bool:
    """Whether ``name`` encodes "<?xml" as the document's first bytes."""
    try:
        return "<?xml".encode(name) == data[:5]
    except (UnicodeError, LookupError):
        return False
