"""The DICOM upper layer's PDUs (PS3.8 §9.3): read from a byte stream, parsed, built.

Seven PDU types travel on an association, each a 6-byte header (type, reserved, 4-byte big-endian
length of what follows) and a body: A-ASSOCIATE-RQ/AC/RJ, P-DATA-TF, A-RELEASE-RQ/RP and
A-ABORT. :class:`PduReader` cuts a stream into whole PDUs however TCP split it, refusing a type
it does not know or a length past its limit as soon as the header shows it (before buffering the
body). :func:`parse` reads one whole PDU into a value; every value has ``encode()``, so the
guard can answer (an A-ABORT, an A-ASSOCIATE-RJ, a P-DATA-TF carrying a C-STORE-RSP) and tests
can compare with pynetdicom's encoders.

A P-DATA-TF's presentation data values (PS3.8 §9.3.5.1, Annex E.2) are kept as offsets into the
raw PDU, not copied: a data set is copied once, when it is complete and joined for the scan.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import KantaGuardError

__all__ = [
    "APPLICATION_CONTEXT",
    "DEFAULT_MAX_PDU",
    "HEADER",
    "Abort",
    "AbortReason",
    "AbortSource",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "ContextResult",
    "PData",
    "Pdu",
    "PduReader",
    "PduType",
    "Pdv",
    "PresentationContext",
    "ProtocolError",
    "ReleaseRP",
    "ReleaseRQ",
    "UserInformation",
    "parse",
    "patch_max_length",
    "split_pdvs",
]

#: Bytes of every PDU's header: type (1), reserved (1), length of the rest (4, big-endian).
HEADER = 6
#: Longest PDU (header included) the guard takes by default: P-DATA-TF PDUs are no longer than
#: the receiver's Maximum Length (pynetdicom's default 16 382, DCMTK's 16 384, at most a few
#: hundred KiB in practice); the guard lowers an unlimited (0) or larger maximum to this, so a
#: conforming peer never sends more. Association PDUs are a few KiB.
DEFAULT_MAX_PDU = 1 << 20

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">BBI")
_ITEM = struct.Struct(">BBH")
#: Variable item types (PS3.8 §9.3.2 and Annex D.3.3).
_APPLICATION_CONTEXT = 0x10
_CONTEXT_RQ = 0x20
_CONTEXT_AC = 0x21
_ABSTRACT_SYNTAX = 0x30
_TRANSFER_SYNTAX = 0x40
_USER_INFORMATION = 0x50
_MAX_LENGTH = 0x51
_IMPLEMENTATION_CLASS = 0x52
_IMPLEMENTATION_VERSION = 0x55
#: The DICOM application context name (PS3.7 Annex A.2.1).
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"


class ProtocolError(KantaGuardError):
    """Bytes that are not the DICOM upper layer protocol, or break its rules or the guard's
    limits. The association is aborted (nothing more is relayed); the message names what was
    wrong, never a value."""

    def __init__(self, reason: str, abort: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The A-ABORT reason the guard sends (:class:`AbortReason`).
        self.abort = abort


class PduType(IntEnum):
    """PDU types (PS3.8 Table 9-10 and the following)."""

    ASSOCIATE_RQ = 0x01
    ASSOCIATE_AC = 0x02
    ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    RELEASE_RQ = 0x05
    RELEASE_RP = 0x06
    ABORT = 0x07


class AbortSource(IntEnum):
    """Who aborts (PS3.8 Table 9-26): the service user, or the service provider (here: the
    guard, which stands in the provider's place on both sides)."""

    SERVICE_USER = 0
    SERVICE_PROVIDER = 2


class AbortReason(IntEnum):
    """Why the service provider aborts (PS3.8 Table 9-26)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PARAMETER = 4
    UNEXPECTED_PARAMETER = 5
    INVALID_PARAMETER = 6


class ContextResult(IntEnum):
    """Result of one proposed presentation context in an A-ASSOCIATE-AC (PS3.8 Table 9-18)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


@dataclass(frozen=True, slots=True)
class PresentationContext:
    """One presentation context: proposed (abstract syntax and transfer syntaxes) or answered
    (result and the one transfer syntax accepted; the abstract syntax is the proposal's)."""

    id: int
    abstract_syntax: str = ""
    transfer_syntaxes: tuple[str, ...] = ()
    result: ContextResult | None = None


@dataclass(frozen=True, slots=True)
class UserInformation:
    """The user information item (PS3.8 §9.3.2.3, Annex D.3.3): the maximum length the sender
    receives (0: unlimited), the implementation's identity, and every other sub-item as read
    (asynchronous operations, role selection, extended negotiation, user identity)."""

    max_length: int | None = None
    implementation_class_uid: str = ""
    implementation_version: str = ""
    #: (type, value) of the sub-items not named above, in order.
    other: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        body = bytearray()
        if self.max_length is not None:
            body += _ITEM.pack(_MAX_LENGTH, 0, 4) + _U32.pack(self.max_length)
        if self.implementation_class_uid:
            body += _item(_IMPLEMENTATION_CLASS, self.implementation_class_uid.encode("ascii"))
        if self.implementation_version:
            body += _item(_IMPLEMENTATION_VERSION, self.implementation_version.encode("ascii"))
        for kind, value in self.other:
            body += _item(kind, value)
        return _item(_USER_INFORMATION, bytes(body))


@dataclass(frozen=True, slots=True)
class _Associate:
    """What an A-ASSOCIATE-RQ and -AC share (PS3.8 §9.3.2, §9.3.3)."""

    called_ae: str
    calling_ae: str
    contexts: tuple[PresentationContext, ...] = ()
    user: UserInformation = field(default_factory=UserInformation)
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1

    def _encode(self, kind: PduType, context_item: int) -> bytes:
        body = bytearray(_U16.pack(self.protocol_version) + b"\0\0")
        body += _ae(self.called_ae) + _ae(self.calling_ae) + bytes(32)
        body += _item(_APPLICATION_CONTEXT, self.application_context.encode("ascii"))
        for context in self.contexts:
            if context_item == _CONTEXT_RQ:
                subs = _item(_ABSTRACT_SYNTAX, context.abstract_syntax.encode("ascii"))
                head = bytes((context.id, 0, 0, 0))
            else:
                subs = b""
                result = context.result if context.result is not None else 0
                head = bytes((context.id, 0, int(result), 0))
            for uid in context.transfer_syntaxes:
                subs += _item(_TRANSFER_SYNTAX, uid.encode("ascii"))
            body += _item(context_item, head + subs)
        body += self.user.encode()
        return _pdu(kind, bytes(body))


@dataclass(frozen=True, slots=True)
class AssociateRQ(_Associate):
    """A-ASSOCIATE-RQ: the requestor's AE titles, proposed presentation contexts, user info."""

    def encode(self) -> bytes:
        return self._encode(PduType.ASSOCIATE_RQ, _CONTEXT_RQ)


@dataclass(frozen=True, slots=True)
class AssociateAC(_Associate):
    """A-ASSOCIATE-AC: the result of each proposed context and the transfer syntax accepted."""

    def encode(self) -> bytes:
        return self._encode(PduType.ASSOCIATE_AC, _CONTEXT_AC)

    def accepted(self) -> dict[int, str]:
        """Context id → the transfer syntax accepted, for the contexts accepted."""
        return {
            c.id: c.transfer_syntaxes[0]
            for c in self.contexts
            if c.result is ContextResult.ACCEPTANCE and c.transfer_syntaxes
        }


@dataclass(frozen=True, slots=True)
class AssociateRJ:
    """A-ASSOCIATE-RJ (PS3.8 §9.3.4): result 1 permanent, 2 transient; source 1 the service
    user, 2 the provider's ACSE, 3 its presentation layer; the reason is the source's."""

    result: int
    source: int
    reason: int

    def encode(self) -> bytes:
        return _pdu(PduType.ASSOCIATE_RJ, bytes((0, self.result, self.source, self.reason)))


@dataclass(frozen=True, slots=True)
class Pdv:
    """One presentation data value of a P-DATA-TF: where its fragment lies in the raw PDU.

    The message control header (PS3.8 Annex E.2): bit 0 set for a command fragment (clear for a
    data set fragment), bit 1 set for the last fragment of the command or data set.
    """

    context_id: int
    control: int
    #: Offset of the fragment in the raw PDU, and its length.
    start: int
    length: int

    @property
    def command(self) -> bool:
        return bool(self.control & 0x01)

    @property
    def last(self) -> bool:
        return bool(self.control & 0x02)

    def fragment(self, raw: bytes | memoryview) -> memoryview:
        """The fragment's bytes in ``raw`` (the PDU it was read from), uncopied."""
        return memoryview(raw)[self.start : self.start + self.length]


@dataclass(frozen=True, slots=True)
class PData:
    """P-DATA-TF: one or more presentation data values."""

    pdvs: tuple[Pdv, ...]

    @staticmethod
    def build(values: Iterator[tuple[int, int, bytes]] | list[tuple[int, int, bytes]]) -> bytes:
        """A P-DATA-TF of ``(context id, control header, fragment)`` values."""
        body = bytearray()
        for context_id, control, fragment in values:
            body += _U32.pack(len(fragment) + 2) + bytes((context_id, control)) + fragment
        return _pdu(PduType.P_DATA_TF, bytes(body))


@dataclass(frozen=True, slots=True)
class ReleaseRQ:
    """A-RELEASE-RQ: the requestor ends the association in good order."""

    def encode(self) -> bytes:
        return _pdu(PduType.RELEASE_RQ, bytes(4))


@dataclass(frozen=True, slots=True)
class ReleaseRP:
    """A-RELEASE-RP: the acceptor agrees."""

    def encode(self) -> bytes:
        return _pdu(PduType.RELEASE_RP, bytes(4))


@dataclass(frozen=True, slots=True)
class Abort:
    """A-ABORT: the association ends at once, either side; what is in transit is lost."""

    source: int = AbortSource.SERVICE_PROVIDER
    reason: int = AbortReason.NOT_SPECIFIED

    def encode(self) -> bytes:
        return _pdu(PduType.ABORT, bytes((0, 0, self.source, self.reason)))


type Pdu = AssociateRQ | AssociateAC | AssociateRJ | PData | ReleaseRQ | ReleaseRP | Abort


class PduReader:
    """Cuts a byte stream into whole PDUs, however it arrives; linear in the bytes fed.

    A PDU of a type PS3.8 does not define, or longer than ``max_pdu`` bytes (header included),
    raises :class:`ProtocolError` as soon as its header is in: nothing of it is buffered.
    """

    def __init__(self, max_pdu: int = DEFAULT_MAX_PDU) -> None:
        self.max_pdu = max_pdu
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held of a PDU not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The PDUs ``data`` completes, in order, each whole (header included)."""
        buffer = self._buffer
        if not buffer and len(data) >= HEADER:
            # The common case, a message of whole PDUs: cut it without copying it into the
            # buffer first.
            pdus, used = self._cut(data)
            if used == len(data):
                return pdus
            buffer += memoryview(data)[used:]
            self._check(buffer)
            return pdus
        buffer += data
        pdus, used = self._cut(buffer)
        del buffer[:used]  # (deleting from the front of a bytearray is amortised O(1))
        if buffer:
            self._check(buffer)
        return pdus

    def _cut(self, data: bytes | bytearray) -> tuple[list[bytes], int]:
        pdus: list[bytes] = []
        start, size = 0, len(data)
        while size - start >= HEADER:
            length = self._check(memoryview(data)[start : start + HEADER])
            end = start + length
            if end > size:
                break
            pdus.append(bytes(data[start:end]))
            start = end
        return pdus, start

    def _check(self, head: bytes | bytearray | memoryview) -> int:
        """The whole length of the PDU whose header starts ``head``, if the guard takes it."""
        kind = head[0]
        if kind not in _TYPES:
            raise ProtocolError(
                f"not a DICOM upper layer PDU (type 0x{kind:02x})", AbortReason.UNRECOGNIZED_PDU
            )
        if len(head) < HEADER:
            return HEADER  # more to come
        _, _, length = _HEAD.unpack_from(head)
        whole = int(length) + HEADER
        if whole > self.max_pdu:
            raise ProtocolError(
                f"PDU of {whole} bytes exceeds the guard's limit of {self.max_pdu}",
                AbortReason.INVALID_PARAMETER,
            )
        return whole


_TYPES = frozenset(int(t) for t in PduType)


def parse(raw: bytes) -> Pdu:
    """The value of one whole PDU (as :class:`PduReader` cuts them)."""
    if len(raw) < HEADER:
        raise ProtocolError("PDU shorter than its header", AbortReason.INVALID_PARAMETER)
    kind, _, length = _HEAD.unpack_from(raw)
    if length != len(raw) - HEADER:
        raise ProtocolError("PDU length does not match its header", AbortReason.INVALID_PARAMETER)
    try:
        pdu_type = PduType(kind)
    except ValueError:
        raise ProtocolError(
            f"not a DICOM upper layer PDU (type 0x{kind:02x})", AbortReason.UNRECOGNIZED_PDU
        ) from None
    body = memoryview(raw)[HEADER:]
    if pdu_type is PduType.P_DATA_TF:
        return PData(tuple(split_pdvs(raw)))
    if pdu_type in (PduType.ASSOCIATE_RQ, PduType.ASSOCIATE_AC):
        return _associate(pdu_type, body)
    if len(body) != 4:
        raise ProtocolError(
            f"{pdu_type.name} PDU of length {len(body)} (4 expected)",
            AbortReason.INVALID_PARAMETER,
        )
    if pdu_type is PduType.ASSOCIATE_RJ:
        return AssociateRJ(body[1], body[2], body[3])
    if pdu_type is PduType.RELEASE_RQ:
        return ReleaseRQ()
    if pdu_type is PduType.RELEASE_RP:
        return ReleaseRP()
    return Abort(body[2], body[3])


def split_pdvs(raw: bytes) -> Iterator[Pdv]:
    """The presentation data values of a whole P-DATA-TF PDU, in order (at least one)."""
    offset, end = HEADER, len(raw)
    if offset == end:
        raise ProtocolError("P-DATA-TF without a presentation data value")
    while offset < end:
        if end - offset < 6:
            raise ProtocolError("truncated presentation data value", AbortReason.INVALID_PARAMETER)
        (length,) = _U32.unpack_from(raw, offset)
        if length < 2 or offset + 4 + length > end:
            raise ProtocolError(
                "presentation data value length out of bounds", AbortReason.INVALID_PARAMETER
            )
        context_id, control = raw[offset + 4], raw[offset + 5]
        if control & 0xFC:
            raise ProtocolError(
                "reserved bits set in a message control header", AbortReason.INVALID_PARAMETER
            )
        yield Pdv(context_id, control, offset + 6, length - 2)
        offset += 4 + length


def patch_max_length(raw: bytes, limit: int) -> bytes:
    """An A-ASSOCIATE-RQ or -AC whose Maximum Length Received is at most ``limit``.

    The guard holds whole P-DATA-TF PDUs; a peer announcing 0 (unlimited) or more than the
    guard takes would invite PDUs the guard must refuse. The sub-item has a fixed size, so it is
    rewritten in place: the PDU keeps its length and every other byte. A PDU without the
    sub-item gets none (PS3.8 makes it mandatory; pynetdicom then assumes unlimited, and the
    reader's limit still applies).
    """
    view = memoryview(raw)
    for _, kind, start, end in _items(view, HEADER + 68, len(raw)):
        if kind != _USER_INFORMATION:
            continue
        for _, sub_kind, sub_start, sub_end in _items(view, start, end):
            if sub_kind != _MAX_LENGTH or sub_end - sub_start != 4:
                continue
            (value,) = _U32.unpack_from(raw, sub_start)
            if value and value <= limit:
                return raw
            patched = bytearray(raw)
            patched[sub_start:sub_end] = _U32.pack(limit)
            return bytes(patched)
    return raw


# -- reading and writing the variable items --------------------------------------------------------


def _items(data: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(offset, type, value start, value end) of each item between ``start`` and ``end``."""
    offset = start
    while offset < end:
        if end - offset < 4:
            raise ProtocolError("truncated item", AbortReason.INVALID_PARAMETER)
        kind, _, length = _ITEM.unpack_from(data, offset)
        value = offset + 4
        if value + length > end:
            raise ProtocolError("item length out of bounds", AbortReason.INVALID_PARAMETER)
        yield offset, kind, value, value + length
        offset = value + length


def _associate(pdu_type: PduType, body: memoryview) -> AssociateRQ | AssociateAC:
    if len(body) < 68:
        raise ProtocolError(f"{pdu_type.name} PDU too short", AbortReason.INVALID_PARAMETER)
    (version,) = _U16.unpack_from(body, 0)
    called, calling = _text(body[4:20]).strip(" "), _text(body[20:36]).strip(" ")
    application = ""
    contexts: list[PresentationContext] = []
    user = UserInformation()
    context_item = _CONTEXT_RQ if pdu_type is PduType.ASSOCIATE_RQ else _CONTEXT_AC
    for _, kind, start, end in _items(body, 68, len(body)):
        if kind == _APPLICATION_CONTEXT:
            application = _uid(body[start:end])
        elif kind == context_item:
            contexts.append(_context(body, start, end, kind))
        elif kind == _USER_INFORMATION:
            user = _user(body, start, end)
        else:
            raise ProtocolError(
                f"unexpected item type 0x{kind:02x} in {pdu_type.name}",
                AbortReason.UNEXPECTED_PARAMETER,
            )
    cls = AssociateRQ if pdu_type is PduType.ASSOCIATE_RQ else AssociateAC
    return cls(called, calling, tuple(contexts), user, application, version)


def _context(body: memoryview, start: int, end: int, kind: int) -> PresentationContext:
    if end - start < 4:
        raise ProtocolError("presentation context item too short", AbortReason.INVALID_PARAMETER)
    context_id = body[start]
    abstract = ""
    syntaxes: list[str] = []
    for _, sub, sub_start, sub_end in _items(body, start + 4, end):
        if sub == _ABSTRACT_SYNTAX and kind == _CONTEXT_RQ:
            abstract = _uid(body[sub_start:sub_end])
        elif sub == _TRANSFER_SYNTAX:
            syntaxes.append(_uid(body[sub_start:sub_end]))
        else:
            raise ProtocolError(
                f"unexpected sub-item type 0x{sub:02x} in a presentation context",
                AbortReason.UNEXPECTED_PARAMETER,
            )
    if kind == _CONTEXT_RQ:
        return PresentationContext(context_id, abstract, tuple(syntaxes))
    try:
        result = ContextResult(body[start + 2])
    except ValueError:
        raise ProtocolError(
            "unknown presentation context result", AbortReason.INVALID_PARAMETER
        ) from None
    return PresentationContext(context_id, "", tuple(syntaxes), result)


def _user(body: memoryview, start: int, end: int) -> UserInformation:
    max_length: int | None = None
    class_uid = version = ""
    other: list[tuple[int, bytes]] = []
    for _, kind, sub_start, sub_end in _items(body, start, end):
        value = body[sub_start:sub_end]
        if kind == _MAX_LENGTH:
            if len(value) != 4:
                raise ProtocolError(
                    "maximum length sub-item of the wrong size", AbortReason.INVALID_PARAMETER
                )
            (max_length,) = _U32.unpack_from(value)
        elif kind == _IMPLEMENTATION_CLASS:
            class_uid = _uid(value)
        elif kind == _IMPLEMENTATION_VERSION:
            version = _text(value).strip(" ")
        else:
            other.append((kind, bytes(value)))
    return UserInformation(max_length, class_uid, version, tuple(other))


def _text(value: memoryview | bytes) -> str:
    # AE titles and implementation names are the default repertoire; anything else is shown
    # replaced, not refused (the guard does not route on them).
    return bytes(value).decode("ascii", "replace")


def _uid(value: memoryview | bytes) -> str:
    """A UID as sent, without the trailing NUL or space padding some implementations add."""
    return _text(value).rstrip("\0 ")


def _ae(title: str) -> bytes:
    return title.encode("ascii")[:16].ljust(16, b" ")


def _item(kind: int, value: bytes) -> bytes:
    return _ITEM.pack(kind, 0, len(value)) + value


def _pdu(kind: PduType, body: bytes) -> bytes:
    return _HEAD.pack(kind, 0, len(body)) + body
