"""Tests for kanta_guard.dimse.commands: command sets as pynetdicom writes them; the guard's
failure responses as pynetdicom reads them."""

from __future__ import annotations

from io import BytesIO

import dimse_wire as wire
import pytest
from helpers import REAL
from pynetdicom import dimse_messages, dimse_primitives
from pynetdicom.dsutils import decode as pynetdicom_decode

from kanta_guard.dimse.commands import (
    BLOCKED,
    NO_DATA_SET,
    TOO_LARGE,
    CommandField,
    Tag,
    build,
    decode,
    error_comment,
    failure_response,
    response_status,
)
from kanta_guard.dimse.pdu import PData, ProtocolError, parse


def command_of(pdus: list[bytes]) -> bytes:
    """The command set bytes carried by ``pdus``."""
    data = b""
    for raw in pdus:
        pdu = parse(raw)
        assert isinstance(pdu, PData)
        data += b"".join(bytes(p.fragment(raw)) for p in pdu.pdvs if p.command)
    return data


@pytest.mark.parametrize(
    ("pdus", "field", "message_id", "data_set", "sop_class"),
    [
        (wire.c_store(b"\x10\x00\x20\x00\x00\x00\x00\x00"), CommandField.C_STORE_RQ, 1, True,
         wire.SECONDARY_CAPTURE),
        (wire.c_echo(), CommandField.C_ECHO_RQ, 2, False, wire.VERIFICATION),
        (wire.c_find(wire.identifier()), CommandField.C_FIND_RQ, 3, True, wire.STUDY_ROOT_FIND),
        (wire.c_move(wire.identifier()), CommandField.C_MOVE_RQ, 4, True, wire.STUDY_ROOT_MOVE),
        (wire.n_action(wire.commitment_request()), CommandField.N_ACTION_RQ, 5, True,
         wire.STORAGE_COMMITMENT),
    ],
)  # fmt: skip
def test_requests_read(
    pdus: list[bytes], field: int, message_id: int, data_set: bool, sop_class: str
) -> None:
    """C-STORE, C-ECHO, C-FIND, C-MOVE and N-ACTION requests: field, id, data set, SOP class."""
    command = decode(command_of(pdus))
    assert command.field == field
    assert command.is_request
    assert command.message_id == message_id
    assert command.has_data_set is data_set
    assert command.sop_class_uid == sop_class


def test_c_store_rq_details() -> None:
    """The C-STORE-RQ's SOP instance; the N-ACTION's requested instance and action type."""
    store = decode(command_of(wire.c_store(b"", instance="1.2.3.4")))
    assert store.sop_instance_uid == "1.2.3.4"
    assert store.label == "C-STORE-RQ"
    action = decode(command_of(wire.n_action(wire.commitment_request())))
    assert action.sop_instance_uid == wire.STORAGE_COMMITMENT_INSTANCE
    assert action.get(Tag.ACTION_TYPE_ID) == 1


def test_responses_read() -> None:
    """A C-STORE-RSP and a C-ECHO-RSP: responses, the id they answer, their status."""
    rsp = decode(command_of(wire.c_store_rsp(message_id=9, status=0xB000)))
    assert not rsp.is_request
    assert (rsp.responded_to, rsp.status, rsp.has_data_set) == (9, 0xB000, False)
    echo = decode(command_of(wire.c_echo_rsp()))
    assert echo.field == CommandField.C_ECHO_RSP and echo.status == 0


def test_c_store_rsp_built_as_pynetdicom_builds_it() -> None:
    """The guard's C-STORE-RSP failure is byte for byte pynetdicom's for the same fields."""
    request = decode(command_of(wire.c_store(b"", message_id=7, instance="1.2.3.4")))
    ours = failure_response(request, 0xC000, "kanta-guard blocked: hetu.real")
    primitive = dimse_primitives.C_STORE()
    primitive.MessageIDBeingRespondedTo = 7
    primitive.AffectedSOPClassUID = wire.SECONDARY_CAPTURE
    primitive.AffectedSOPInstanceUID = "1.2.3.4"
    primitive.Status = 0xC000
    primitive.ErrorComment = "kanta-guard blocked: hetu.real"
    message = dimse_messages.C_STORE_RSP()
    message.primitive_to_message(primitive)
    pdus = wire.encode_message(message, 1, 16382)
    assert ours == command_of(pdus)


@pytest.mark.parametrize(
    ("pdus", "response"),
    [
        (wire.c_store(b"x"), dimse_messages.C_STORE_RSP),
        (wire.c_find(wire.identifier()), dimse_messages.C_FIND_RSP),
        (wire.c_move(wire.identifier()), dimse_messages.C_MOVE_RSP),
        (wire.n_action(wire.commitment_request()), dimse_messages.N_ACTION_RSP),
    ],
)
def test_failure_responses_read_by_pynetdicom(
    pdus: list[bytes], response: type[dimse_messages.DIMSEMessage]
) -> None:
    """Each failure response decodes in pynetdicom into its primitive with the request's id, the
    guard's status and the comment."""
    request = decode(command_of(pdus))
    status = response_status(request)
    assert status is not None
    data = failure_response(request, status, error_comment(["hetu.real", "dicom.private"]))
    command = pynetdicom_decode(BytesIO(data), True, True)
    message = response()
    message.command_set = command
    primitive = message.message_to_primitive()
    assert primitive.MessageIDBeingRespondedTo == request.message_id
    assert primitive.Status == BLOCKED[request.field]
    assert primitive.ErrorComment == "kanta-guard blocked: hetu.real, dicom.private"
    assert primitive.AffectedSOPClassUID == request.sop_class_uid
    assert command.CommandDataSetType == NO_DATA_SET
    again = decode(data)
    assert again.field == request.field | 0x8000
    if request.field == CommandField.N_ACTION_RQ:
        assert primitive.AffectedSOPInstanceUID == wire.STORAGE_COMMITMENT_INSTANCE
        assert primitive.ActionTypeID == 1


def test_statuses_chosen() -> None:
    """Blocks answer 0xC000 (N- services 0x0110); data sets over the limit A700 / A701 / 0x0213;
    responses and requests without a data set cannot be answered."""
    store = decode(command_of(wire.c_store(b"x")))
    assert response_status(store) == 0xC000
    assert response_status(store, too_large=True) == 0xA700
    move = decode(command_of(wire.c_move(wire.identifier())))
    assert response_status(move, too_large=True) == 0xA701
    action = decode(command_of(wire.n_action(b"")))
    assert (response_status(action), response_status(action, too_large=True)) == (0x0110, 0x0213)
    assert response_status(decode(command_of(wire.c_find_rsp(b"x")))) is None
    assert response_status(decode(command_of(wire.c_echo()))) is None
    assert set(BLOCKED) == set(TOO_LARGE)


def test_error_comment_names_rules_only_within_lo() -> None:
    """The Error Comment names the rules, is ASCII, at most 64 characters, no backslash."""
    assert error_comment(["hetu.real"]) == "kanta-guard blocked: hetu.real"
    long = error_comment([f"rule.number{i}" for i in range(20)])
    assert len(long) == 64 and long.endswith("...")
    odd = error_comment(["a\\b", "ä"])
    assert "\\" not in odd and odd.isascii()


def test_error_comment_never_holds_a_value() -> None:
    """The comment is built from rule ids: a value in the request does not reach it."""
    request = decode(command_of(wire.c_store(b"", instance="1.2.3")))
    data = failure_response(request, 0xC000, error_comment(["hetu.real"]))
    assert REAL.encode() not in data


def test_build_pads_and_orders() -> None:
    """Elements go in ascending order after the group length; odd text is padded by its VR."""
    data = build(
        {
            Tag.STATUS: 0,
            Tag.COMMAND_FIELD: 0x8030,
            Tag.AFFECTED_SOP_CLASS_UID: "1.2.3",
            Tag.ERROR_COMMENT: "odd",
        }
    )
    command = decode(data)
    assert list(command.elements) == sorted(command.elements)
    assert command.elements[Tag.AFFECTED_SOP_CLASS_UID] == b"1.2.3\0"
    assert command.elements[Tag.ERROR_COMMENT] == b"odd "
    assert command.error_comment == "odd"
    assert int.from_bytes(command.elements[Tag.COMMAND_GROUP_LENGTH], "little") == len(data) - 12


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x01",  # truncated
        b"\x08\x00\x10\x00\x02\x00\x00\x00ab",  # outside group 0000
        b"\x00\x00\x00\x01\xff\xff\xff\xff",  # undefined length
        b"\x00\x00\x00\x01\x09\x00\x00\x00\x01\x00",  # length past the end
        build({Tag.STATUS: 0}),  # no command field
        b"\x00\x00\x00\x01\x02\x00\x00\x00\x01\x00" + b"\x00\x00\x00\x00\x04\x00\x00\x00abcd",
    ],
)
def test_bad_command_sets_refused(data: bytes) -> None:
    """Truncated, out-of-group, undefined-length, unordered or field-less command sets."""
    with pytest.raises(ProtocolError):
        decode(data)


def test_command_set_limit() -> None:
    """A command set past the limit is refused before it is read."""
    with pytest.raises(ProtocolError, match="exceeds"):
        decode(bytes(100), max_bytes=64)
