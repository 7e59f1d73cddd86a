"""Tests for kanta_guard.dimse.pdu: PDUs as pynetdicom writes them, read whole or in pieces."""

from __future__ import annotations

import dimse_wire as wire
import pytest
from pynetdicom import pdu as pynetdicom_pdu

from kanta_guard.dimse.pdu import (
    Abort,
    AbortReason,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    ContextResult,
    PData,
    PduReader,
    PresentationContext,
    ProtocolError,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
    parse,
    patch_max_length,
    split_pdvs,
)


def stream() -> list[bytes]:
    """One association's PDUs of every type, as pynetdicom encodes them."""
    return [
        wire.associate_rq(),
        wire.associate_ac(rejected=(13,)),
        *wire.c_store(wire.dataset(pixels=64), max_pdu=1000),
        *wire.c_echo(),
        wire.release_rq(),
        wire.release_rp(),
        wire.associate_rj(),
        wire.abort(),
    ]


def test_associate_rq_read() -> None:
    """An A-ASSOCIATE-RQ: AE titles, every proposed context, the user information."""
    pdu = parse(wire.associate_rq(version="KG_1"))
    assert isinstance(pdu, AssociateRQ)
    assert (pdu.calling_ae, pdu.called_ae) == ("TEST-SCU", "TEST-SCP")
    assert pdu.application_context == wire.APPLICATION_CONTEXT
    assert [(c.id, c.abstract_syntax, c.transfer_syntaxes) for c in pdu.contexts] == [
        (i, a, t) for i, a, t in wire.CONTEXTS
    ]
    assert pdu.user.max_length == 16382
    assert pdu.user.implementation_class_uid == "1.2.826.0.1.3680043.9.3811.3.0"
    assert pdu.user.implementation_version == "KG_1"


def test_associate_ac_read() -> None:
    """An A-ASSOCIATE-AC: the transfer syntax of each accepted context, the rejected ones not."""
    pdu = parse(wire.associate_ac(rejected=(13,), max_length=0))
    assert isinstance(pdu, AssociateAC)
    assert pdu.accepted() == wire.ACCEPTED
    assert [c.result for c in pdu.contexts if c.id == 13] == [
        ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
    ]
    assert pdu.user.max_length == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (wire.associate_rj(1, 2, 2), AssociateRJ(1, 2, 2)),
        (wire.release_rq(), ReleaseRQ()),
        (wire.release_rp(), ReleaseRP()),
        (wire.abort(0, 0), Abort(0, 0)),
        (wire.abort(2, 6), Abort(2, 6)),
    ],
)
def test_short_pdus_read(raw: bytes, expected: object) -> None:
    """A-ASSOCIATE-RJ, A-RELEASE-RQ/RP and A-ABORT read as pynetdicom writes them."""
    assert parse(raw) == expected


def test_p_data_read() -> None:
    """P-DATA-TF: each PDV's context, command/last bits and fragment, uncopied."""
    data = wire.dataset(pixels=64)
    pdus = wire.c_store(data, max_pdu=1000)
    values = []
    for raw in pdus:
        pdu = parse(raw)
        assert isinstance(pdu, PData)
        values += [(p.context_id, p.command, p.last, bytes(p.fragment(raw))) for p in pdu.pdvs]
    assert [v[1:3] for v in values[:1]] == [(True, True)]
    assert all(v[0] == 1 for v in values)
    assert all(not v[1] for v in values[1:])
    assert [v[2] for v in values[1:]] == [False] * (len(values) - 2) + [True]
    assert b"".join(v[3] for v in values[1:]) == data


@pytest.mark.parametrize(
    "value",
    [
        AssociateRQ(
            "TEST-SCP",
            "TEST-SCU",
            tuple(PresentationContext(i, a, t) for i, a, t in wire.CONTEXTS),
            UserInformation(16382, "1.2.826.0.1.3680043.9.3811.3.0"),
        ),
        AssociateAC(
            "TEST-SCP",
            "TEST-SCU",
            (
                *(
                    PresentationContext(i, "", (t,), ContextResult.ACCEPTANCE)
                    for i, t in wire.ACCEPTED.items()
                ),
                PresentationContext(13, "", (wire.IMPLICIT,), ContextResult(3)),
            ),
            UserInformation(16382, "1.2.826.0.1.3680043.9.3811.3.0"),
        ),
    ],
)
def test_associate_built_as_pynetdicom_builds_it(value: AssociateRQ | AssociateAC) -> None:
    """The guard's A-ASSOCIATE encoders write pynetdicom's bytes for the same content."""
    if isinstance(value, AssociateRQ):
        assert value.encode() == wire.associate_rq()
    else:
        assert value.encode() == wire.associate_ac(rejected=(13,))
    assert parse(value.encode()) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AssociateRJ(2, 3, 1), wire.associate_rj(2, 3, 1)),
        (ReleaseRQ(), wire.release_rq()),
        (ReleaseRP(), wire.release_rp()),
        (Abort(2, AbortReason.INVALID_PARAMETER), wire.abort(2, 6)),
    ],
)
def test_short_pdus_built(
    value: AssociateRJ | ReleaseRQ | ReleaseRP | Abort, expected: bytes
) -> None:
    """The guard's RJ, release and abort PDUs are pynetdicom's bytes."""
    assert value.encode() == expected


def test_p_data_built_is_read_by_pynetdicom() -> None:
    """A P-DATA-TF the guard builds decodes in pynetdicom to the same PDVs."""
    raw = PData.build([(1, 0x03, b"\x01\x02"), (3, 0x00, b"abcd")])
    decoded = pynetdicom_pdu.P_DATA_TF()
    decoded.decode(raw)
    values = [
        (item.presentation_context_id, item.presentation_data_value)
        for item in decoded.presentation_data_value_items
    ]
    assert values == [(1, b"\x03\x01\x02"), (3, b"\x00abcd")]
    assert decoded.encode() == raw


def test_reader_whole_stream() -> None:
    """A stream of whole PDUs comes out as the same PDUs."""
    pdus = stream()
    assert PduReader().feed(b"".join(pdus)) == pdus


def test_reader_split_at_every_byte() -> None:
    """The stream cut in two at every position, and fed a byte at a time, gives the same PDUs."""
    pdus = stream()
    data = b"".join(pdus)
    for cut in range(len(data) + 1):
        reader = PduReader()
        assert reader.feed(data[:cut]) + reader.feed(data[cut:]) == pdus, cut
        assert reader.pending == 0
    reader = PduReader()
    out: list[bytes] = []
    for index in range(len(data)):
        out += reader.feed(data[index : index + 1])
    assert out == pdus


def test_reader_refuses_unknown_type_at_once() -> None:
    """A first byte that is no PDU type is refused before anything else arrives."""
    with pytest.raises(ProtocolError) as caught:
        PduReader().feed(b"G")  # an HTTP request, say
    assert caught.value.abort == AbortReason.UNRECOGNIZED_PDU


def test_reader_refuses_over_long_pdu_from_its_header() -> None:
    """A PDU longer than the limit is refused from its header: its body is never buffered."""
    reader = PduReader(max_pdu=1000)
    with pytest.raises(ProtocolError, match="exceeds"):
        reader.feed(b"\x04\x00" + (995).to_bytes(4, "big"))
    assert PduReader(max_pdu=1000).feed(b"\x04\x00" + (994).to_bytes(4, "big")) == []


@pytest.mark.parametrize(
    "raw",
    [
        b"\x04\x00\x00\x00\x00\x00",  # no PDV
        b"\x04\x00\x00\x00\x00\x05" + b"\x00\x00\x00\x01\x01",  # PDV length 1
        b"\x04\x00\x00\x00\x00\x08" + b"\x00\x00\x00\x09\x01\x03\x00\x00",  # past the end
        b"\x04\x00\x00\x00\x00\x07" + b"\x00\x00\x00\x03\x01\x07\x00",  # reserved control bits
    ],
)
def test_bad_p_data_refused(raw: bytes) -> None:
    """Malformed P-DATA-TF PDUs raise ProtocolError, not IndexError."""
    with pytest.raises(ProtocolError):
        list(split_pdvs(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x05\x00\x00\x00\x00\x02\x00\x00",  # release of the wrong length
        b"\x01\x00\x00\x00\x00\x04\x00\x01\x00\x00",  # RQ too short
        wire.associate_rq()[:-3],  # length no longer matches
    ],
)
def test_bad_pdus_refused(raw: bytes) -> None:
    """Malformed PDUs raise ProtocolError."""
    with pytest.raises(ProtocolError):
        parse(raw)


@pytest.mark.parametrize(("announced", "expected"), [(0, 65530), (1 << 24, 65530), (16382, 16382)])
def test_max_length_lowered_in_place(announced: int, expected: int) -> None:
    """Unlimited or too large a Maximum Length is lowered to the guard's; every other byte
    stays, and pynetdicom reads the result."""
    raw = wire.associate_ac(max_length=announced)
    patched = patch_max_length(raw, 65530)
    assert len(patched) == len(raw)
    assert sum(a != b for a, b in zip(raw, patched, strict=True)) <= 4
    pdu = parse(patched)
    assert isinstance(pdu, AssociateAC)
    assert pdu.user.max_length == expected
    decoded = pynetdicom_pdu.A_ASSOCIATE_AC()
    decoded.decode(patched)
    assert decoded.to_primitive().maximum_length_received == expected
    rq = patch_max_length(wire.associate_rq(max_length=announced), 65530)
    assert isinstance(pdu := parse(rq), AssociateRQ) and pdu.user.max_length == expected
