"""DIMSE command sets (PS3.7 §6.3, §9, §10, Annex E): read, and built for the guard's answers.

A command set is group 0000 elements in Implicit VR Little Endian, whatever transfer syntax the
presentation context carries the data set in (PS3.7 §6.3.1). The guard reads every command a
client sends (to know whether a data set follows, and what to answer when it refuses one) and
builds the response to a request it refuses: the request's command field with bit 15 set, the
request's message id, a failure status and an Error Comment (0000,0902) naming the rule that
fired, never a value.

Statuses the guard answers (PS3.4 and PS3.7 Annex C):

- a data set blocked by a rule: **0xC000**, in the C000-CFFF range PS3.4 gives the Storage
  Service Class as "Error: Cannot understand" and Query/Retrieve as "Failed: Unable to process"
  (B.2.3, C.4.1.1.4, C.4.2.1.5, C.4.3.1.4); every SCU treats it as a failure of that one
  operation. N-ACTION, N-CREATE, N-SET and N-EVENT-REPORT get the general 0x0110 "Processing
  failure" (PS3.7 C.4.2), the only failure their service classes share;
- a data set larger than the guard holds: **0xA700** "Refused: Out of Resources" (0xA701 for
  C-MOVE and C-GET, where A700 means something else), and the general 0x0213 "Resource
  limitation" for the N- services.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .pdu import AbortReason, ProtocolError

__all__ = [
    "BLOCKED",
    "NO_DATA_SET",
    "TOO_LARGE",
    "Command",
    "CommandField",
    "Tag",
    "build",
    "decode",
    "error_comment",
    "failure_response",
    "response_status",
]

#: (0000,0800) Command Data Set Type: 0x0101 means no data set follows; any other value, one.
NO_DATA_SET = 0x0101
#: Longest Error Comment: it is LO (PS3.5 Table 6.2-1: 64 characters).
_COMMENT_MAX = 64

_ELEMENT = struct.Struct("<HHI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class CommandField(IntEnum):
    """(0000,0100) Command Field values (PS3.7 §9.3, §10.3); a response is its request | 0x8000."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150
    C_CANCEL_RQ = 0x0FFF

    @property
    def label(self) -> str:
        """The name PS3.7 uses: ``C-STORE-RQ``."""
        return self.name.replace("_", "-")


class Tag(IntEnum):
    """The command elements the guard reads or writes (PS3.7 Annex E), as (group << 16) | element;
    their VRs are in :data:`_VR`."""

    COMMAND_GROUP_LENGTH = 0x00000000
    AFFECTED_SOP_CLASS_UID = 0x00000002
    REQUESTED_SOP_CLASS_UID = 0x00000003
    COMMAND_FIELD = 0x00000100
    MESSAGE_ID = 0x00000110
    MESSAGE_ID_BEING_RESPONDED_TO = 0x00000120
    MOVE_DESTINATION = 0x00000600
    PRIORITY = 0x00000700
    COMMAND_DATA_SET_TYPE = 0x00000800
    STATUS = 0x00000900
    OFFENDING_ELEMENT = 0x00000901
    ERROR_COMMENT = 0x00000902
    ERROR_ID = 0x00000903
    AFFECTED_SOP_INSTANCE_UID = 0x00001000
    REQUESTED_SOP_INSTANCE_UID = 0x00001001
    EVENT_TYPE_ID = 0x00001002
    ATTRIBUTE_IDENTIFIER_LIST = 0x00001005
    ACTION_TYPE_ID = 0x00001008
    NUMBER_OF_REMAINING_SUBOPERATIONS = 0x00001020
    NUMBER_OF_COMPLETED_SUBOPERATIONS = 0x00001021
    NUMBER_OF_FAILED_SUBOPERATIONS = 0x00001022
    NUMBER_OF_WARNING_SUBOPERATIONS = 0x00001023
    MOVE_ORIGINATOR_AE_TITLE = 0x00001030
    MOVE_ORIGINATOR_MESSAGE_ID = 0x00001031


#: The VR of each command element the guard builds (PS3.7 Annex E, Table E.1-1).
_VR: dict[int, str] = {
    Tag.COMMAND_GROUP_LENGTH: "UL",
    Tag.AFFECTED_SOP_CLASS_UID: "UI",
    Tag.REQUESTED_SOP_CLASS_UID: "UI",
    Tag.COMMAND_FIELD: "US",
    Tag.MESSAGE_ID: "US",
    Tag.MESSAGE_ID_BEING_RESPONDED_TO: "US",
    Tag.MOVE_DESTINATION: "AE",
    Tag.PRIORITY: "US",
    Tag.COMMAND_DATA_SET_TYPE: "US",
    Tag.STATUS: "US",
    Tag.OFFENDING_ELEMENT: "AT",
    Tag.ERROR_COMMENT: "LO",
    Tag.ERROR_ID: "US",
    Tag.AFFECTED_SOP_INSTANCE_UID: "UI",
    Tag.REQUESTED_SOP_INSTANCE_UID: "UI",
    Tag.EVENT_TYPE_ID: "US",
    Tag.ATTRIBUTE_IDENTIFIER_LIST: "AT",
    Tag.ACTION_TYPE_ID: "US",
    Tag.NUMBER_OF_REMAINING_SUBOPERATIONS: "US",
    Tag.NUMBER_OF_COMPLETED_SUBOPERATIONS: "US",
    Tag.NUMBER_OF_FAILED_SUBOPERATIONS: "US",
    Tag.NUMBER_OF_WARNING_SUBOPERATIONS: "US",
    Tag.MOVE_ORIGINATOR_AE_TITLE: "AE",
    Tag.MOVE_ORIGINATOR_MESSAGE_ID: "US",
}

type Value = int | str | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Command:
    """A command set as read: each element's raw value by tag (group 0000 only)."""

    elements: dict[int, bytes]

    def __repr__(self) -> str:
        # Not the values: a client's command set is what it sent (AE titles, say).
        answered = f", responding to {self.responded_to}" if not self.is_request else ""
        return f"Command({self.label}, message {self.message_id}{answered})"

    def _int(self, tag: Tag) -> int | None:
        raw = self.elements.get(tag)
        if raw is None:
            return None
        if len(raw) == 2:
            return int(_U16.unpack(raw)[0])
        if len(raw) == 4:
            return int(_U32.unpack(raw)[0])
        raise ProtocolError(
            f"command element {tag.name} has {len(raw)} bytes", AbortReason.INVALID_PARAMETER
        )

    def _text(self, tag: Tag) -> str:
        raw = self.elements.get(tag, b"")
        return raw.decode("ascii", "replace").rstrip("\0 ")

    @property
    def field(self) -> int:
        """(0000,0100) Command Field (required: :func:`decode` refuses a command without it)."""
        value = self._int(Tag.COMMAND_FIELD)
        assert value is not None
        return value

    @property
    def label(self) -> str:
        """The command's name (``C-STORE-RQ``), or its field in hex when PS3.7 defines none."""
        try:
            return CommandField(self.field).label
        except ValueError:
            return f"command 0x{self.field:04x}"

    @property
    def is_request(self) -> bool:
        return not self.field & 0x8000

    @property
    def message_id(self) -> int | None:
        return self._int(Tag.MESSAGE_ID)

    @property
    def responded_to(self) -> int | None:
        return self._int(Tag.MESSAGE_ID_BEING_RESPONDED_TO)

    @property
    def has_data_set(self) -> bool:
        """Whether a data set follows (PS3.7 E.1: any Command Data Set Type but 0x0101)."""
        return self._int(Tag.COMMAND_DATA_SET_TYPE) != NO_DATA_SET

    @property
    def status(self) -> int | None:
        return self._int(Tag.STATUS)

    @property
    def sop_class_uid(self) -> str:
        """The affected SOP class UID, or the requested one (N-ACTION, N-SET, N-GET)."""
        return self._text(Tag.AFFECTED_SOP_CLASS_UID) or self._text(Tag.REQUESTED_SOP_CLASS_UID)

    @property
    def sop_instance_uid(self) -> str:
        """The affected SOP instance UID, or the requested one."""
        return self._text(Tag.AFFECTED_SOP_INSTANCE_UID) or self._text(
            Tag.REQUESTED_SOP_INSTANCE_UID
        )

    @property
    def error_comment(self) -> str:
        return self._text(Tag.ERROR_COMMENT)

    def get(self, tag: Tag) -> int | str | None:
        """The value of ``tag`` read by its VR (numbers as int, text as str), or None."""
        if tag not in self.elements:
            return None
        if _VR.get(tag) in ("US", "UL"):
            return self._int(tag)
        return self._text(tag)


def decode(data: bytes | memoryview, *, max_bytes: int = 65536) -> Command:
    """Read a command set (Implicit VR Little Endian, group 0000 only, ascending tags).

    Refused (:class:`ProtocolError`): longer than ``max_bytes``, a truncated element, an undefined
    length, an element outside group 0000, tags out of order, or no Command Field.
    """
    if len(data) > max_bytes:
        raise ProtocolError(
            f"command set of {len(data)} bytes exceeds the guard's limit of {max_bytes}",
            AbortReason.INVALID_PARAMETER,
        )
    view = memoryview(data)
    elements: dict[int, bytes] = {}
    offset, end, previous = 0, len(view), -1
    while offset < end:
        if end - offset < _ELEMENT.size:
            raise ProtocolError("truncated command element", AbortReason.INVALID_PARAMETER)
        group, element, length = _ELEMENT.unpack_from(view, offset)
        tag = (group << 16) | element
        offset += _ELEMENT.size
        if group != 0:
            raise ProtocolError(
                "command set holds an element outside group 0000", AbortReason.INVALID_PARAMETER
            )
        if length == 0xFFFFFFFF or offset + length > end:
            raise ProtocolError(
                "command element length out of bounds", AbortReason.INVALID_PARAMETER
            )
        if tag <= previous:
            raise ProtocolError(
                "command elements out of ascending order", AbortReason.INVALID_PARAMETER
            )
        elements[tag] = bytes(view[offset : offset + length])
        offset += length
        previous = tag
    if Tag.COMMAND_FIELD not in elements or len(elements[Tag.COMMAND_FIELD]) != 2:
        raise ProtocolError("command set without a Command Field", AbortReason.INVALID_PARAMETER)
    return Command(elements)


def build(values: dict[Tag, Value]) -> bytes:
    """A command set of ``values`` (by :class:`Tag`), with its Command Group Length first.

    Text is padded to even length as its VR wants (UI with NUL, AE and LO with a space); AT
    values are tuples of ``(group << 16) | element``.
    """
    body = bytearray()
    for tag in sorted(t for t in values if t != Tag.COMMAND_GROUP_LENGTH):
        body += _element(tag, _encode(tag, values[tag]))
    return _element(Tag.COMMAND_GROUP_LENGTH, _U32.pack(len(body))) + bytes(body)


def _element(tag: int, value: bytes) -> bytes:
    return _ELEMENT.pack(tag >> 16, tag & 0xFFFF, len(value)) + value


def _encode(tag: Tag, value: Value) -> bytes:
    vr = _VR[tag]
    if vr == "US":
        assert isinstance(value, int)
        return _U16.pack(value)
    if vr == "UL":
        assert isinstance(value, int)
        return _U32.pack(value)
    if vr == "AT":
        items = (value,) if isinstance(value, int) else value
        assert isinstance(items, tuple)
        return b"".join(_U16.pack(t >> 16) + _U16.pack(t & 0xFFFF) for t in items)
    assert isinstance(value, str)
    raw = value.encode("ascii")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return raw


# -- the guard's answers -------------------------------------------------------------------------

#: The status of a data set blocked by a rule, by request (see the module docstring).
BLOCKED: dict[int, int] = {
    CommandField.C_STORE_RQ: 0xC000,
    CommandField.C_FIND_RQ: 0xC000,
    CommandField.C_MOVE_RQ: 0xC000,
    CommandField.C_GET_RQ: 0xC000,
    CommandField.N_ACTION_RQ: 0x0110,
    CommandField.N_CREATE_RQ: 0x0110,
    CommandField.N_SET_RQ: 0x0110,
    CommandField.N_EVENT_REPORT_RQ: 0x0110,
}
#: The status of a data set too large for the guard to hold, by request.
TOO_LARGE: dict[int, int] = {
    CommandField.C_STORE_RQ: 0xA700,
    CommandField.C_FIND_RQ: 0xA700,
    CommandField.C_MOVE_RQ: 0xA701,
    CommandField.C_GET_RQ: 0xA701,
    CommandField.N_ACTION_RQ: 0x0213,
    CommandField.N_CREATE_RQ: 0x0213,
    CommandField.N_SET_RQ: 0x0213,
    CommandField.N_EVENT_REPORT_RQ: 0x0213,
}
#: Responses that name no SOP instance (PS3.7 Tables 9.3-4, 9.3-6, 9.3-8).
_NO_INSTANCE = frozenset({CommandField.C_FIND_RSP, CommandField.C_GET_RSP, CommandField.C_MOVE_RSP})


def response_status(request: Command, *, too_large: bool = False) -> int | None:
    """The failure status the guard answers ``request`` with, or None when it cannot answer it
    (a response, or a request that carries no data set): then the association is aborted."""
    table = TOO_LARGE if too_large else BLOCKED
    return table.get(request.field) if request.is_request else None


def error_comment(rules: tuple[str, ...] | list[str], prefix: str = "kanta-guard blocked") -> str:
    """The Error Comment of a refusal: the rules that fired, cut to LO's 64 characters.

    Rule ids only, never a value.
    """
    return _lo(f"{prefix}: {', '.join(rules)}" if rules else prefix)


def _lo(text: str) -> str:
    """``text`` as an LO value: ASCII, no backslash (LO's value separator), 64 characters."""
    text = text.encode("ascii", "replace").decode("ascii").replace("\\", "/")
    if len(text) > _COMMENT_MAX:
        text = text[: _COMMENT_MAX - 3].rstrip(", ") + "..."
    return text


def failure_response(request: Command, status: int, comment: str) -> bytes:
    """The command set answering ``request`` with ``status`` and ``comment`` (no data set).

    The fields are those PS3.7 gives each response (Tables 9.3-2, 9.3-4, 9.3-6, 9.3-8, 10.3-2,
    10.3-4, 10.3-5, 10.3-7): the affected SOP class and instance of the request (the requested
    ones of N-SET and N-ACTION become the affected ones), the action or event type it named.
    """
    field = request.field | 0x8000
    message_id = request.message_id
    if message_id is None:
        raise ProtocolError("request without a Message ID", AbortReason.INVALID_PARAMETER)
    values: dict[Tag, Value] = {
        Tag.COMMAND_FIELD: field,
        Tag.MESSAGE_ID_BEING_RESPONDED_TO: message_id,
        Tag.COMMAND_DATA_SET_TYPE: NO_DATA_SET,
        Tag.STATUS: status,
        Tag.ERROR_COMMENT: _lo(comment),
    }
    sop_class = request.sop_class_uid
    if sop_class:
        values[Tag.AFFECTED_SOP_CLASS_UID] = sop_class
    instance = request.sop_instance_uid
    if instance and field not in _NO_INSTANCE:
        values[Tag.AFFECTED_SOP_INSTANCE_UID] = instance
    for tag in (Tag.ACTION_TYPE_ID, Tag.EVENT_TYPE_ID):
        value = request._int(tag)
        if value is not None:
            values[tag] = value
    return build(values)
