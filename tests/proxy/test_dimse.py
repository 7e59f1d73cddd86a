"""Tests for kanta_guard.proxy.dimse: the DIMSE guard in taddons with ttcpflow flows.

A small stand-in for mitmproxy's TCP layer (:class:`Layer`) appends each message to the flow,
runs the hook and "sends" what the message holds afterwards; its ``inject.tcp`` command delivers
the injected bytes later, through the hook again, as mitmproxy does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dimse_wire as wire
import pytest
from helpers import REAL, identity_policy_file
from mitmproxy import command, exceptions, flow, tcp
from mitmproxy.options import Options
from mitmproxy.proxy import layers
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow

from kanta_guard.dimse.commands import decode
from kanta_guard.dimse.pdu import AssociateRJ, PData, PduReader, parse
from kanta_guard.eventlog import read_records
from kanta_guard.model import Request
from kanta_guard.proxy import dimse
from kanta_guard.proxy.dimse import (
    DIMSE_KEY,
    KEEP_MESSAGES,
    DimseGuard,
    dicom_mode,
    dicom_stack,
    parse_upstreams,
)
from kanta_guard.proxy.flows import MARK_BLOCKED, METADATA_KEY
from kanta_guard.proxy.guard import HttpGuard
from kanta_guard.proxy.state import GuardState

ARCHIVE = ("127.0.0.1", 11112)
MODE = "reverse:tcp://127.0.0.1:11112"


class Layer:
    """mitmproxy's TCP relay, as far as the addon can tell: messages in, hook, bytes out."""

    def __init__(self) -> None:
        self.addon: DimseGuard | None = None
        self.flow: tcp.TCPFlow | None = None
        self.to_server = bytearray()
        self.to_client = bytearray()
        #: While True, injected messages wait in ``held`` until ``deliver()``.
        self.hold = False
        self.held: list[tuple[bool, bytes]] = []

    def deliver(self) -> None:
        held, self.held = self.held, []
        for from_client, data in held:
            self.receive(from_client, data)

    def receive(self, from_client: bool, data: bytes) -> None:
        assert self.addon is not None and self.flow is not None
        message = tcp.TCPMessage(from_client, data)
        self.flow.messages.append(message)
        self.addon.tcp_message(self.flow)
        (self.to_server if from_client else self.to_client).extend(message.content)

    @command.command("inject.tcp")
    def inject(self, f: flow.Flow, to_client: bool, message: bytes) -> None:
        if self.hold:
            self.held.append((not to_client, message))
        else:
            asyncio.get_running_loop().call_soon(self.receive, not to_client, message)


def dicom_flow(mode: str = MODE) -> tcp.TCPFlow:
    f = tflow.ttcpflow(messages=[])
    f.client_conn.proxy_mode = ProxyMode.parse(mode)
    f.server_conn.address = ARCHIVE
    return f


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[tuple[DimseGuard, Layer, Path]]:
    """The DIMSE guard after the HTTP guard configured the state (no workers), with a Layer."""
    log = tmp_path / "blocked.jsonl"
    settings = {
        "kanta_guard_log": str(log),
        "kanta_guard_workers": 0,
        "kanta_guard_policy": str(identity_policy_file(tmp_path)),  # identity-code rules only
    }
    http_guard = HttpGuard(GuardState(), settings)
    addon = DimseGuard(http_guard.state, {"kanta_guard_dicom": ["127.0.0.1:11112"]})
    layer = Layer()
    with taddons.context(http_guard, addon, layer):
        layer.addon = addon
        yield addon, layer, log
    http_guard.done()


def start(addon: DimseGuard, layer: Layer, f: tcp.TCPFlow | None = None) -> tcp.TCPFlow:
    """A DICOM flow through the association's RQ and AC."""
    f = f or dicom_flow()
    layer.flow = f
    addon.tcp_start(f)
    layer.receive(True, wire.associate_rq())
    layer.receive(False, wire.associate_ac())
    return f


async def settle(addon: DimseGuard) -> None:
    """Let every judgement and injection run to its end."""
    for _ in range(200):
        await asyncio.sleep(0.005)
        tasks = [t for a in addon._associations.values() for t in a.tasks]
        if tasks:
            await asyncio.gather(*tasks)
            continue
        if not any(a.inflight[True] or a.inflight[False] for a in addon._associations.values()):
            await asyncio.sleep(0.005)
            return


def responses(data: bytes) -> list[tuple[int, int | None, int | None, str]]:
    """(field, responded to, status, comment) of each command the client received."""
    out = []
    parts = b""
    for raw in PduReader().feed(data):
        pdu = parse(raw)
        if not isinstance(pdu, PData):
            continue
        for pdv in pdu.pdvs:
            if pdv.command:
                parts += bytes(pdv.fragment(raw))
                if pdv.last:
                    command = decode(parts)
                    parts = b""
                    out.append(
                        (command.field, command.responded_to, command.status, command.error_comment)
                    )
    return out


def records(log: Path) -> list[dict[str, object]]:
    return [r for r in read_records(log) if "event" not in r] if log.exists() else []


def test_clean_store_arrives_as_sent(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """Clean data sets (one judged at once, one off the event loop) reach the server as the
    client's bytes; the flow carries its counts and no mark."""
    addon, layer, log = guard

    async def run() -> bytes:
        start(addon, layer)
        sent = wire.associate_rq()
        for message_id, pixels in ((1, 16), (2, 200)):
            pdus = wire.c_store(wire.dataset(pixels=pixels), message_id=message_id)
            for raw in pdus:
                layer.receive(True, raw)
            sent += b"".join(pdus)
            await settle(addon)
        return sent

    sent = asyncio.run(run())
    assert bytes(layer.to_server) == sent
    assert layer.flow is not None
    assert layer.flow.metadata[DIMSE_KEY] == {"passed": 2, "warned": 0, "blocked": 0}
    assert not layer.flow.marked
    assert records(log) == []


def test_dirty_store_answered_never_sent(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """A real code in PatientID: no byte of the store reaches the server; the client gets
    C-STORE-RSP 0xC000 naming hetu.real; the log has a masked record; the flow is marked."""
    addon, layer, log = guard

    async def run() -> None:
        start(addon, layer)
        for raw in wire.c_store(wire.dataset(REAL, pixels=200), message_id=9):
            layer.receive(True, raw)
        await settle(addon)

    asyncio.run(run())
    assert bytes(layer.to_server) == wire.associate_rq()
    [(command, message_id, status, comment)] = responses(bytes(layer.to_client))
    assert (command, message_id, status) == (0x8001, 9, 0xC000)
    # (The imaging rules may name the same value as well: dicom.identifying, for one.)
    assert comment.startswith("kanta-guard blocked: hetu.real")
    [entry] = records(log)
    assert entry["method"] == "C-STORE-RQ" and entry["rules"][0] == "hetu.real"
    assert entry["host"] == "127.0.0.1:11112"
    assert REAL not in log.read_text("utf-8")
    f = layer.flow
    assert f is not None and f.marked == MARK_BLOCKED
    assert "hetu.real" in f.comment
    assert f.metadata[METADATA_KEY]["verdict"] == "block"
    assert f.metadata[DIMSE_KEY]["blocked"] == 1


def test_echo_and_find_judged_at_once(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """C-ECHO and a small C-FIND identifier are decided in the hook: no injection needed."""
    addon, layer, _ = guard

    async def run() -> None:
        f = start(addon, layer)
        for raw in wire.c_echo() + wire.c_find(wire.identifier()):
            layer.receive(True, raw)
        association = addon._associations[f.id]
        assert not association.inflight[True] and not association.tasks
        for raw in wire.c_find(wire.identifier(REAL), message_id=8):
            layer.receive(True, raw)
        await settle(addon)

    asyncio.run(run())
    expected = wire.associate_rq() + b"".join(wire.c_echo() + wire.c_find(wire.identifier()))
    assert bytes(layer.to_server) == expected
    command, message_id, status, comment = responses(bytes(layer.to_client))[-1]
    assert (command, message_id, status) == (0x8020, 8, 0xC000)
    assert comment.startswith("kanta-guard blocked: hetu.real")


def test_later_messages_wait_behind_a_release(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """Messages the client sends while its store is judged, and while the release is on its way
    round, reach the server after the store, in order."""
    addon, layer, _ = guard

    async def run() -> bytes:
        f = start(addon, layer)
        store = wire.c_store(wire.dataset(pixels=200))
        for raw in store:
            layer.receive(True, raw)
        echo = wire.c_echo()
        layer.receive(True, echo[0])  # during the scan
        layer.hold = True
        await next(iter(addon._associations[f.id].tasks))  # the verdict: the release injected
        assert addon._associations[f.id].inflight[True]
        layer.receive(True, wire.release_rq())  # while the release is on its way
        assert bytes(layer.to_server) == wire.associate_rq()
        layer.hold = False
        layer.deliver()
        await settle(addon)
        return wire.associate_rq() + b"".join(store) + echo[0] + wire.release_rq()

    expected = asyncio.run(run())
    assert bytes(layer.to_server) == expected


def test_other_flows_untouched(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """A TCP flow that is not to a DICOM upstream is none of this addon's business."""
    addon = guard[0]
    f = dicom_flow("reverse:tcp://127.0.0.1:9999")
    addon.tcp_start(f)
    assert DIMSE_KEY not in f.metadata
    f.messages.append(tcp.TCPMessage(True, b"raw"))
    addon.tcp_message(f)
    assert f.messages[-1].content == b"raw"


def test_not_ready_rejects_association(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """A guard without a policy rejects the association; the server hears nothing."""
    addon, layer, _ = guard
    addon.state.policy = None

    async def run() -> None:
        f = dicom_flow()
        layer.flow = f
        addon.tcp_start(f)
        layer.receive(True, wire.associate_rq())
        await settle(addon)

    asyncio.run(run())
    assert bytes(layer.to_server) == b""
    [pdu] = [parse(p) for p in PduReader().feed(bytes(layer.to_client))]
    assert pdu == AssociateRJ(2, 3, 1)


def test_scan_failure_blocks(guard: tuple[DimseGuard, Layer, Path], monkeypatch: Any) -> None:
    """A scan that raises blocks the data set (unscannable), it is never forwarded."""
    addon, layer, log = guard
    scanner = addon.state.scanner
    assert scanner is not None

    original = scanner.scan_bytes

    def broken(data: bytes, content_type: str | None = None) -> object:
        if content_type and content_type.startswith("application/dicom"):
            raise RuntimeError("boom")  # (the association request is judged as it was)
        return original(data, content_type)

    monkeypatch.setattr(scanner, "scan_bytes", broken)

    async def run() -> None:
        start(addon, layer)
        for raw in wire.c_store(wire.dataset(pixels=200)):
            layer.receive(True, raw)
        await settle(addon)

    asyncio.run(run())
    assert bytes(layer.to_server) == wire.associate_rq()
    assert responses(bytes(layer.to_client))[0][2] == 0xC000
    assert "unscannable" in records(log)[0]["rules"]  # type: ignore[operator]


def test_scan_timeout_blocks(guard: tuple[DimseGuard, Layer, Path], monkeypatch: Any) -> None:
    """A scan past kanta_guard_scan_timeout blocks the data set."""
    addon, layer, _ = guard
    from mitmproxy import ctx

    ctx.options.update(kanta_guard_scan_timeout=0.05)  # (a new scanner: patched after)
    scanner = addon.state.scanner
    assert scanner is not None
    original = scanner.scan_bytes

    def slow(data: bytes, content_type: str | None = None) -> object:
        if content_type and content_type.startswith("application/dicom"):
            time.sleep(0.5)  # (the association request is judged as it was)
        return original(data, content_type)

    monkeypatch.setattr(scanner, "scan_bytes", slow)

    async def run() -> None:
        start(addon, layer)
        for raw in wire.c_store(wire.dataset(pixels=200)):
            layer.receive(True, raw)
        await settle(addon)

    asyncio.run(run())
    assert bytes(layer.to_server) == wire.associate_rq()
    assert responses(bytes(layer.to_client))[0][2] == 0xC000


def test_protocol_violation_aborts_and_is_logged(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """Bytes that are not DICOM abort the association both ways and leave a record."""
    addon, layer, log = guard

    async def run() -> None:
        start(addon, layer)
        layer.receive(True, b"GET / HTTP/1.1\r\n\r\n")
        await settle(addon)

    asyncio.run(run())
    assert bytes(layer.to_server).endswith(bytes.fromhex("070000000004000002" + "01"))
    [entry] = records(log)
    assert entry["rules"] == ["protocol.refused"]


def test_messages_kept_bounded(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """A long association keeps only the last few messages on its flow."""
    addon, layer, _ = guard
    f = start(addon, layer)
    for message_id in range(20):
        for raw in wire.c_echo(message_id=message_id):
            layer.receive(True, raw)
    assert len(f.messages) <= KEEP_MESSAGES


def test_option_refuses_bad_values(guard: tuple[DimseGuard, Layer, Path]) -> None:
    """kanta_guard_dicom takes host:port values only."""
    from mitmproxy import ctx

    with pytest.raises(exceptions.OptionsError):
        ctx.options.update(kanta_guard_dicom=["archive.test"])
    ctx.options.update(kanta_guard_dicom=["[::1]:104", "Archive.Test:11112"])
    assert guard[0].upstreams == {("::1", 104), ("archive.test", 11112)}


def test_parse_upstreams() -> None:
    """host:port, [IPv6]:port; a missing or out-of-range port is refused."""
    assert parse_upstreams(["a.test:104", "[::1]:11112"]) == {("a.test", 104), ("::1", 11112)}
    for bad in ("a.test", "a.test:0", "a.test:70000", ":104", "a.test:x"):
        with pytest.raises(ValueError):
            parse_upstreams([bad])


def test_dicom_mode() -> None:
    """Only reverse:tcp:// and reverse:tls:// to a configured upstream are DICOM modes."""
    upstreams = frozenset({ARCHIVE})
    assert dicom_mode(MODE, upstreams)
    assert dicom_mode("reverse:tls://127.0.0.1:11112", upstreams)
    assert not dicom_mode("reverse:tcp://127.0.0.1:11113", upstreams)
    assert not dicom_mode("reverse:http://127.0.0.1:11112", upstreams)
    assert not dicom_mode("regular", upstreams)
    assert not dicom_mode("reverse:tcp://", upstreams)


def test_dicom_stack() -> None:
    """The layer stacks of a DICOM mode: TCP, or TLS then TCP; never an ignored relay."""
    upstreams = frozenset({ARCHIVE})
    mode = ProxyMode.parse(MODE)
    context = Context(tflow.tclient_conn(), Options())
    context.server = tflow.tserver_conn()
    tcp_layer = layers.TCPLayer(context)
    assert dicom_stack(tcp_layer, mode, upstreams)
    tls = layers.ClientTLSLayer(context)
    tls.child_layer = layers.TCPLayer(context)
    assert dicom_stack(tls, mode, upstreams)
    assert not dicom_stack(layers.TCPLayer(context, ignore=True), mode, upstreams)
    assert not dicom_stack(tcp_layer, ProxyMode.parse("reverse:tcp://127.0.0.1:1"), upstreams)
    from mitmproxy.proxy.layers.http import HttpLayer, HTTPMode

    assert not dicom_stack(HttpLayer(context, HTTPMode.transparent), mode, upstreams)


def test_worker_request_reads_as_scan_bytes(scanner: Any) -> None:
    """The request the worker pool is handed judges a data set as scan_bytes does."""
    for patient_id in ("020516C903K", REAL):
        data = wire.dataset(patient_id, pixels=32)
        content_type = f"application/dicom; transfer-syntax={wire.IMPLICIT}"
        direct = scanner.scan_bytes(data, content_type)
        wrapped = scanner.scan(Request("", "", (("content-type", content_type),), data))
        assert (wrapped.verdict, wrapped.rules) == (direct.verdict, direct.rules)


def test_module_exports() -> None:
    """__all__ names what the module defines."""
    assert all(hasattr(dimse, name) for name in dimse.__all__)


@pytest.mark.parametrize(
    ("calling", "identity"),
    [("TEST-SCU", REAL.encode()), (REAL.replace("-", "+"), b"")],
    ids=["user-identity", "calling-ae-title"],
)
def test_an_association_request_carrying_a_real_code_is_rejected(
    guard: tuple[DimseGuard, Layer, Path], calling: str, identity: bytes
) -> None:
    """A real code as the User Identity's user name, or as the calling AE title: the
    association is rejected before the archive hears of it, with a masked record."""
    addon, layer, log = guard

    async def run() -> None:
        f = dicom_flow()
        layer.flow = f
        addon.tcp_start(f)
        layer.receive(True, wire.associate_rq(calling=calling[:16], identity=identity))
        await settle(addon)

    asyncio.run(run())
    assert bytes(layer.to_server) == b""
    assert isinstance(parse(bytes(layer.to_client)), AssociateRJ)
    [entry] = records(log)
    assert entry["method"] == "A-ASSOCIATE" and "hetu.real" in entry["rules"]
    assert REAL not in log.read_text("utf-8")


def test_a_clean_association_request_passes(guard: tuple[DimseGuard, Layer, Path]) -> None:
    addon, layer, log = guard
    request = wire.associate_rq(identity=b"testikayttaja")

    async def run() -> None:
        f = dicom_flow()
        layer.flow = f
        addon.tcp_start(f)
        layer.receive(True, request)
        await settle(addon)

    asyncio.run(run())
    assert bytes(layer.to_server) == request
    assert records(log) == []
