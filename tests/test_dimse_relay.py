"""Tests for kanta_guard.dimse.relay: what passes, what is held for a verdict, what is answered
or aborted, over streams pynetdicom writes and cut anywhere."""

from __future__ import annotations

import time

import dimse_wire as wire
import pytest
from helpers import REAL

from kanta_guard.dimse.commands import CommandField, decode
from kanta_guard.dimse.pdu import Abort, AssociateRJ, PData, PduReader, parse
from kanta_guard.dimse.relay import Limits, Output, Phase, Relay


def established(limits: Limits | None = None, **ac: object) -> Relay:
    """A relay past the A-ASSOCIATE-RQ/AC exchange."""
    relay = Relay(limits)
    assert relay.from_client(wire.associate_rq()).to_server
    assert relay.from_server(wire.associate_ac(**ac)).to_client  # type: ignore[arg-type]
    assert relay.phase is Phase.ESTABLISHED
    return relay


def joined(chunks: list[bytes]) -> bytes:
    return b"".join(chunks)


def response_of(pdus: list[bytes]) -> tuple[int, int, int | None, str]:
    """(command field, message id responded to, status, error comment) of a response."""
    command = decode(_command_bytes(pdus))
    assert command.responded_to is not None
    return command.field, command.responded_to, command.status, command.error_comment


def _command_bytes(pdus: list[bytes]) -> bytes:
    data = b""
    for raw in PduReader().feed(joined(pdus)):
        pdu = parse(raw)
        assert isinstance(pdu, PData)
        data += b"".join(bytes(p.fragment(raw)) for p in pdu.pdvs if p.command)
    return data


def test_association_passes() -> None:
    """RQ, AC, release: each PDU goes on at once, as sent."""
    relay = Relay()
    assert relay.from_client(wire.associate_rq()).to_server == [wire.associate_rq()]
    assert relay.phase is Phase.REQUESTED
    assert relay.from_server(wire.associate_ac()).to_client == [wire.associate_ac()]
    assert relay.transfer_syntaxes == wire.ACCEPTED
    assert relay.abstract_syntaxes[1] == wire.SECONDARY_CAPTURE
    assert relay.from_client(wire.release_rq()).to_server == [wire.release_rq()]
    assert relay.from_server(wire.release_rp()).to_client == [wire.release_rp()]


def test_c_echo_passes_at_once() -> None:
    """A command without a data set goes on as soon as it is complete; its answer comes back."""
    relay = established()
    out = relay.from_client(joined(wire.c_echo()))
    assert out.to_server == wire.c_echo() and not out.judge
    assert relay.from_server(joined(wire.c_echo_rsp())).to_client == wire.c_echo_rsp()


def test_c_store_held_then_released_byte_identical() -> None:
    """A C-STORE (command and data set, many PDUs) is held whole until its verdict, then goes
    on as the very PDUs the client sent."""
    relay = established()
    data = wire.dataset(pixels=128)
    pdus = wire.c_store(data, max_pdu=4000)
    assert len(pdus) > 3
    out = relay.from_client(joined(pdus))
    assert out.to_server == [] and out.to_client == []
    [held] = out.judge
    assert held.data == data
    assert held.transfer_syntax == wire.IMPLICIT
    assert held.content_type == f"application/dicom; transfer-syntax={wire.IMPLICIT}"
    assert held.abstract_syntax == wire.SECONDARY_CAPTURE
    assert held.command.field == CommandField.C_STORE_RQ
    assert relay.pending == (held.ticket,)
    released = relay.decide(held.ticket, None)
    assert released.to_server == pdus
    assert relay.pending == () and relay.held == 0


def test_c_store_blocked_is_answered_never_sent() -> None:
    """A blocked C-STORE: nothing reaches the server; the client gets C-STORE-RSP 0xC000 on its
    message id, the rules in the Error Comment; the association goes on."""
    relay = established()
    pdus = wire.c_store(wire.dataset(REAL), message_id=42)
    [held] = relay.from_client(joined(pdus)).judge
    out = relay.decide(held.ticket, ("hetu.real",))
    assert out.to_server == []
    field, responded, status, comment = response_of(out.to_client)
    assert (field, responded, status) == (CommandField.C_STORE_RSP, 42, 0xC000)
    assert comment == "kanta-guard blocked: hetu.real"
    assert REAL.encode() not in joined(out.to_client)
    # The association goes on: the next store is held and judged in turn.
    clean = wire.c_store(wire.dataset(), message_id=43)
    [second] = relay.from_client(joined(clean)).judge
    assert relay.decide(second.ticket, None).to_server == clean


def after_association() -> tuple[bytes, list[bytes]]:
    """What a client sends once its association is accepted (a store of many PDUs, an echo, a
    release), and the data sets in it."""
    data = wire.dataset(pixels=64)
    client = [*wire.c_store(data, max_pdu=1200), *wire.c_echo(), wire.release_rq()]
    return joined(client), [data]


def drive(rq: list[bytes], chunks: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Feed the RQ's chunks, the AC, then the chunks of the rest to a relay, letting every data
    set pass: everything that reached the server, and the data sets judged."""
    relay = Relay()
    sent: list[bytes] = []
    for chunk in rq:
        sent += relay.from_client(chunk).to_server
    assert relay.from_server(wire.associate_ac()).to_client
    judged: list[bytes] = []
    for chunk in chunks:
        out = relay.from_client(chunk)
        sent += out.to_server
        for data_set in out.judge:
            judged.append(data_set.data)
            sent += relay.decide(data_set.ticket, None).to_server
        assert not out.refusals
    return joined(sent), judged


def test_split_at_every_byte() -> None:
    """Cut anywhere (in two at every position, and a byte at a time), the stream reaches the
    server whole and unchanged, with the one data set judged once and whole."""
    rq = wire.associate_rq()
    data, data_sets = after_association()
    for cut in range(len(rq) + 1):
        assert drive([rq[:cut], rq[cut:]], [data]) == (rq + data, data_sets), cut
    for cut in range(len(data) + 1):
        assert drive([rq], [data[:cut], data[cut:]]) == (rq + data, data_sets), cut
    one_by_one = [data[i : i + 1] for i in range(len(data))]
    assert drive([rq[i : i + 1] for i in range(len(rq))], one_by_one) == (rq + data, data_sets)


def test_nothing_overtakes_a_held_message() -> None:
    """An echo and a release sent while a store waits for its verdict go on only after it."""
    relay = established()
    store, echo = wire.c_store(wire.dataset()), wire.c_echo()
    [held] = relay.from_client(joined(store)).judge
    assert relay.from_client(joined(echo)).to_server == []
    assert relay.from_client(wire.release_rq()).to_server == []
    assert relay.decide(held.ticket, None).to_server == [*store, *echo, wire.release_rq()]


def test_blocked_message_does_not_hold_back_what_follows() -> None:
    """After a blocked store, what queued behind it goes on (the store does not)."""
    relay = established()
    [held] = relay.from_client(joined(wire.c_store(wire.dataset(REAL)))).judge
    relay.from_client(joined(wire.c_echo()))
    out = relay.decide(held.ticket, ("hetu.real",))
    assert out.to_server == wire.c_echo()


def test_pdu_spanning_two_messages_is_split() -> None:
    """One P-DATA-TF with the end of a store and a whole echo: the echo's PDVs go in a PDU of
    their own, so the store can be dropped without them."""
    relay = established()
    store = wire.c_store(wire.dataset())
    echo = wire.c_echo()
    pdvs = []
    for raw in [*store[1:], *echo]:
        pdu = parse(raw)
        assert isinstance(pdu, PData)
        pdvs += [(p.context_id, p.control, bytes(p.fragment(raw))) for p in pdu.pdvs]
    combined = PData.build(pdvs)
    out = relay.from_client(store[0] + combined)
    [held] = out.judge
    blocked = relay.decide(held.ticket, ("hetu.real",))
    assert response_of(blocked.to_client)[2] == 0xC000
    # The echo went on in a PDU of its own, equal to what pynetdicom sends for it alone.
    assert blocked.to_server == echo


def test_c_find_identifier_judged_and_answered() -> None:
    """A C-FIND's identifier is judged; blocked, the client gets C-FIND-RSP 0xC000."""
    relay = established()
    [held] = relay.from_client(joined(wire.c_find(wire.identifier(REAL)))).judge
    assert held.command.field == CommandField.C_FIND_RQ
    out = relay.decide(held.ticket, ("hetu.real",))
    assert out.to_server == []
    assert response_of(out.to_client)[:3] == (CommandField.C_FIND_RSP, 3, 0xC000)


def test_c_move_identifier_judged_and_answered() -> None:
    """A C-MOVE's identifier is judged; blocked, the client gets C-MOVE-RSP 0xC000."""
    relay = established()
    move = wire.c_move(wire.identifier())
    [held] = relay.from_client(joined(move)).judge
    assert relay.decide(held.ticket, None).to_server == move
    [held] = relay.from_client(joined(wire.c_move(wire.identifier(REAL)))).judge
    out = relay.decide(held.ticket, ("hetu.real",))
    assert out.to_server == []
    assert response_of(out.to_client)[:3] == (CommandField.C_MOVE_RSP, 4, 0xC000)


def test_n_action_storage_commitment_judged() -> None:
    """An N-ACTION (storage commitment) is judged; it passes as sent, or is answered 0x0110."""
    relay = established()
    action = wire.n_action(wire.commitment_request())
    [held] = relay.from_client(joined(action)).judge
    assert relay.decide(held.ticket, None).to_server == action
    [held] = relay.from_client(joined(wire.n_action(wire.commitment_request()))).judge
    out = relay.decide(held.ticket, ("dicom.identifying",))
    assert response_of(out.to_client)[:3] == (CommandField.N_ACTION_RSP, 5, 0x0110)


def test_blocked_response_aborts() -> None:
    """A data set the guard cannot answer (a C-FIND-RSP the client sends) aborts both ways."""
    relay = established()
    [held] = relay.from_client(joined(wire.c_find_rsp(wire.identifier(REAL)))).judge
    out = relay.decide(held.ticket, ("hetu.real",))
    assert [parse(p) for p in out.to_server] == [Abort()]
    assert [parse(p) for p in out.to_client] == [Abort()]
    assert [r.kind for r in out.refusals] == ["aborted"]
    assert relay.closed and relay.aborted
    assert not relay.from_client(joined(wire.c_echo()))


def test_too_large_data_set_refused_without_holding() -> None:
    """A data set past the limit is not held (memory stays bounded) and is answered A700."""
    relay = established(Limits(max_pdu=4096, max_data_set=10_000))
    pdus = wire.c_store(wire.dataset(pixels=200), max_pdu=4000)
    most = 0
    out = Output()
    for raw in pdus:
        step = relay.from_client(raw)
        out.to_client += step.to_client
        out.refusals += step.refusals
        assert not step.to_server and not step.judge
        most = max(most, relay.held)
    assert most <= 10_000 + 4096
    assert response_of(out.to_client)[2] == 0xA700
    assert [r.kind for r in out.refusals] == ["too-large"]
    assert relay.held == 0


def test_answer_waits_for_server_message_boundary() -> None:
    """The guard's answer is not put in the middle of a message the server is sending."""
    relay = established()
    [held] = relay.from_client(joined(wire.c_store(wire.dataset(REAL)))).judge
    find_rsp = wire.c_find_rsp(wire.identifier())  # command PDU, then data set PDU
    assert relay.from_server(find_rsp[0]).to_client == [find_rsp[0]]
    out = relay.decide(held.ticket, ("hetu.real",))
    assert out.to_client == []
    after = relay.from_server(find_rsp[1]).to_client
    assert after[0] == find_rsp[1]
    assert response_of(after[1:])[2] == 0xC000


def test_client_abort_drops_what_is_held() -> None:
    """The client's A-ABORT goes on at once; the held store never does."""
    relay = established()
    [held] = relay.from_client(joined(wire.c_store(wire.dataset()))).judge
    out = relay.from_client(wire.abort())
    assert out.to_server == [wire.abort()]
    assert relay.closed
    assert not relay.decide(held.ticket, None)


def test_server_abort_drops_what_is_held() -> None:
    """The server's A-ABORT goes on to the client; the held store is dropped."""
    relay = established()
    [held] = relay.from_client(joined(wire.c_store(wire.dataset()))).judge
    assert relay.from_server(wire.abort(2, 0)).to_client == [wire.abort(2, 0)]
    assert not relay.decide(held.ticket, None)


def test_not_admitted_is_rejected_before_the_server() -> None:
    """A guard that cannot judge rejects the association (transient, congestion); the server
    receives nothing."""
    relay = Relay(admit=lambda rq: "no policy")
    out = relay.from_client(wire.associate_rq())
    assert out.to_server == []
    assert [parse(p) for p in out.to_client] == [AssociateRJ(2, 3, 1)]
    assert [(r.kind, r.reason) for r in out.refusals] == [("rejected", "no policy")]
    assert relay.closed


def test_max_length_lowered_both_ways() -> None:
    """Unlimited Maximum Lengths are lowered to the guard's PDU limit in the RQ and the AC."""
    relay = Relay(Limits(max_pdu=65536))
    rq = relay.from_client(wire.associate_rq(max_length=0)).to_server[0]
    ac = relay.from_server(wire.associate_ac(max_length=0)).to_client[0]
    for raw in (rq, ac):
        pdu = parse(raw)
        assert pdu.user.max_length == 65530  # type: ignore[union-attr]


def test_answer_fragmented_to_client_max_length() -> None:
    """The answer fits the Maximum Length the client announced."""
    relay = Relay()
    relay.from_client(wire.associate_rq(max_length=64))
    relay.from_server(wire.associate_ac())
    [held] = relay.from_client(joined(wire.c_store(wire.dataset(REAL)))).judge
    out = relay.decide(held.ticket, ("hetu.real",))
    assert len(out.to_client) > 1
    assert all(len(p) - 6 <= 64 for p in out.to_client)
    assert response_of(out.to_client)[2] == 0xC000


@pytest.mark.parametrize(
    ("name", "client"),
    [
        ("data before the AC", [wire.associate_rq(), *wire.c_echo()]),
        ("a second RQ", [wire.associate_rq(), wire.associate_rq()]),
        ("not DICOM", [b"GET / HTTP/1.1\r\n\r\n"]),
        ("an AC from the client", [wire.associate_ac()]),
    ],
)
def test_protocol_violations_abort(name: str, client: list[bytes]) -> None:
    """What breaks the protocol aborts the association both ways, with a reason."""
    relay = Relay()
    out = Output()
    for chunk in client:
        step = relay.from_client(chunk)
        out.to_server += step.to_server
        out.to_client += step.to_client
        out.refusals += step.refusals
    assert out.to_server[-1] == Abort(reason=out.to_server[-1][-1]).encode(), name
    assert parse(out.to_client[-1]).__class__ is Abort
    assert [r.kind for r in out.refusals] == ["aborted"]


@pytest.mark.parametrize(
    "pdvs",
    [
        [(1, 0x02, b"data first")],  # a data fragment where a command is due
        [(99, 0x03, b"")],  # a context not accepted
    ],
)
def test_bad_messages_abort(pdvs: list[tuple[int, int, bytes]]) -> None:
    """A message that does not start with a command, or on a context never accepted, aborts."""
    relay = established()
    out = relay.from_client(PData.build(pdvs))
    assert [r.kind for r in out.refusals] == ["aborted"] and relay.closed


def test_command_inside_data_set_aborts() -> None:
    """A command fragment in the middle of a data set aborts."""
    relay = established()
    store = wire.c_store(wire.dataset(pixels=64), max_pdu=1000)
    out = relay.from_client(store[0] + store[1] + wire.c_echo()[0])
    assert [r.kind for r in out.refusals] == ["aborted"]
    assert not out.to_server[:-1]  # only the abort: nothing of the store went on


def test_held_bytes_bounded() -> None:
    """More held than the association may hold aborts."""
    relay = established(Limits(max_pdu=4096, max_data_set=50_000, max_held=20_000))
    out = relay.from_client(joined(wire.c_store(wire.dataset(pixels=150), max_pdu=4000)))
    assert [r.kind for r in out.refusals] == ["aborted"]
    assert "held" in out.refusals[0].reason


def test_data_set_repr_hides_the_data() -> None:
    """A held data set's repr does not show its bytes."""
    relay = established()
    [held] = relay.from_client(joined(wire.c_store(wire.dataset(REAL)))).judge
    assert REAL not in repr(held)


def test_server_stream_split_at_every_byte() -> None:
    """The server's stream, cut anywhere, reaches the client whole and unchanged; a pending
    answer lands after the server's message, never inside it."""
    answers = [
        *wire.c_store_rsp(),
        *wire.c_find_rsp(wire.identifier(), message_id=3),
        *wire.c_find_rsp(None, message_id=3, status=0),
    ]
    server = joined(answers)
    for cut in range(len(server) + 1):
        relay = established()
        [held] = relay.from_client(joined(wire.c_store(wire.dataset(REAL), message_id=6))).judge
        got = relay.from_server(server[:cut]).to_client
        got += relay.decide(held.ticket, ("hetu.real",)).to_client
        got += relay.from_server(server[cut:]).to_client
        stream = joined(got)
        [response] = [p for p in got if p not in answers]
        assert stream.replace(response, b"") == server, cut
        position = stream.index(response)
        boundaries = {0}
        total = 0
        for pdu in answers:
            total += len(pdu)
            boundaries.add(total)
        boundaries -= {len(joined(answers[:2]))}  # inside the C-FIND-RSP (command, then data)
        assert position in boundaries, cut
        assert response_of([response])[2] == 0xC000


def _flood_time(count: int) -> float:
    """Best-of-three seconds to queue ``count`` echoes behind a held store, one per call."""
    best = float("inf")
    echo = joined(wire.c_echo())
    for _ in range(3):
        relay = established(Limits(max_held=1 << 30))
        relay.from_client(joined(wire.c_store(wire.dataset())))
        start = time.perf_counter()
        for _ in range(count):
            relay.from_client(echo)
        best = min(best, time.perf_counter() - start)
    return best


def test_flood_behind_a_held_message_is_linear() -> None:
    """Many small messages queued behind a held one cost linear time (8n about 8 times n)."""
    small, large = _flood_time(500), _flood_time(4000)
    assert large / small < 8 * 2.5, (small, large)


@pytest.mark.parametrize("name", ["pdu", "commands", "relay"])
def test_all_in_sync(name: str) -> None:
    """Each module's __all__ names its public classes and functions, and only what exists."""
    import importlib
    import inspect

    module = importlib.import_module(f"kanta_guard.dimse.{name}")
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and v.__module__ == module.__name__
    }
    assert set(module.__all__) >= public
    assert all(hasattr(module, n) for n in module.__all__)


def test_data_set_in_many_small_pdvs_is_judged_whole() -> None:
    """A careless SCU's data set cut into 7-byte PDVs, five to a P-DATA-TF, a real code split
    across several of them (attacking issue 10): the relay judges the data set whole, byte for
    byte as sent, and a block sends none of it to the server."""
    data = wire.dataset(REAL, pixels=8)
    command = b"".join(
        bytes(p.fragment(raw))
        for raw in PduReader().feed(joined(wire.c_store(data, message_id=7)))
        for p in parse(raw).pdvs  # type: ignore[union-attr]
        if p.command
    )
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    pdvs = [(1, 0x03, command)] + [
        (1, 0x02 if i == len(pieces) - 1 else 0x00, piece) for i, piece in enumerate(pieces)
    ]
    assert len(pdvs) > 20
    assert not any(REAL.encode() in piece for piece in pieces)  # (the code is cut)
    stream = joined([PData.build(pdvs[i : i + 5]) for i in range(0, len(pdvs), 5)])
    relay = established()
    out = relay.from_client(stream)
    assert out.to_server == []
    [held] = out.judge
    assert held.data == data
    blocked = relay.decide(held.ticket, ("hetu.real",))
    assert blocked.to_server == [] and REAL.encode() not in joined(blocked.to_client)
    assert response_of(blocked.to_client)[:3] == (CommandField.C_STORE_RSP, 7, 0xC000)
