"""Tests for kanta_guard.proxy.connections: every layer read or refused, options confined."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import mitmproxy.proxy.layers
import pytest
from helpers import REAL
from mitmproxy import connection, exceptions
from mitmproxy.addons import next_layer, proxyserver
from mitmproxy.proxy import layer, layers
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import HTTPMode
from mitmproxy.test import taddons, tflow

from kanta_guard.eventlog import read_records
from kanta_guard.proxy.connections import (
    LAYERS,
    ConnectionGuard,
    RefusedLayer,
    layer_rule,
    unread,
)
from kanta_guard.proxy.guard import HttpGuard
from kanta_guard.proxy.state import GuardState


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def every_layer_class() -> list[type]:
    """Every subclass of mitmproxy's Layer, after importing every module of its layers package."""
    importlib.import_module("mitmproxy.proxy.tunnel")
    for info in pkgutil.walk_packages(
        mitmproxy.proxy.layers.__path__, prefix="mitmproxy.proxy.layers."
    ):
        importlib.import_module(info.name)
    return [c for c in _subclasses(layer.Layer) if c.__module__.startswith("mitmproxy.")]


def test_every_mitmproxy_layer_is_read_or_refused() -> None:
    """Each of mitmproxy's own layer classes has a decision: a new one fails until it gets one."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in every_layer_class()}
    missing = sorted(names - set(LAYERS))
    assert not missing, f"layers kanta-guard has not decided on: {missing}"
    assert len(names) >= 30  # the enumeration itself works


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("mitmproxy.proxy.layers.tcp.TCPLayer", False),
        ("mitmproxy.proxy.layers.udp.UDPLayer", False),
        ("mitmproxy.proxy.layers.dns.DNSLayer", False),
        ("mitmproxy.proxy.layers.websocket.WebsocketLayer", False),
        ("mitmproxy.proxy.layers.quic._raw_layers.RawQuicLayer", False),
        ("mitmproxy.proxy.layers.http.HttpLayer", True),
        ("mitmproxy.proxy.layers.tls.ClientTLSLayer", True),
        ("mitmproxy.proxy.layers.modes.Socks5Proxy", True),
    ],
)
def test_layer_decisions(name: str, read: bool) -> None:
    """Raw relays (TCP, UDP, DNS, WebSocket, QUIC) are refused; HTTP, TLS and modes are read."""
    assert LAYERS[name].read is read


def context() -> Context:
    """A connection context as mitmproxy makes one, for a client on loopback."""
    client = connection.Client(
        peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080), timestamp_start=1
    )
    ctx = Context(client, tctx_options())
    ctx.server.address = ("127.0.0.1", 9)
    return ctx


def tctx_options() -> Any:
    """mitmproxy's options as a running proxy has them."""
    from mitmproxy import options

    opts = options.Options()
    return opts


def test_unread_walks_the_stack() -> None:
    """A stack is refused if any layer in it is not read (TLS over raw TCP, say)."""
    ctx = context()
    ctx.layers = [layers.modes.HttpProxy(ctx), layers.HttpLayer(ctx, HTTPMode.regular)]
    tls = layers.ServerTLSLayer(ctx)
    tls.child_layer = layers.TCPLayer(ctx)
    assert unread(tls) is not None and "raw TCP" in (unread(tls) or "")
    http = layers.ServerTLSLayer(ctx)
    http.child_layer = layers.HttpLayer(ctx, HTTPMode.transparent)
    assert unread(http) is None


def test_unknown_layer_class_is_refused() -> None:
    """A layer class the table does not know (a future mitmproxy's) is refused."""

    class Future(layer.Layer):
        pass

    assert layer_rule(Future(context())) is None
    assert "does not know" in (unread(Future(context())) or "")


@pytest.fixture
def guarded(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The connection guard and the HTTP guard in a taddons context, logging to a temp file."""
    state = GuardState()
    log = tmp_path / "blocked.jsonl"
    http = HttpGuard(state, {"kanta_guard_log": str(log), "kanta_guard_workers": 0})
    conn = ConnectionGuard(state)
    with taddons.context(proxyserver.Proxyserver(), next_layer.NextLayer(), conn, http) as tctx:
        yield conn, tctx, log
    http.done()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("ignore_hosts", ["127.0.0.1"]),
        ("allow_hosts", ["example"]),
        ("tcp_hosts", ["127.0.0.1"]),
        ("udp_hosts", ["127.0.0.1"]),
        ("stream_large_bodies", "1k"),
        ("rawtcp", True),
        ("websocket", True),
        ("http3", True),
        ("mode", ["reverse:tcp://127.0.0.1:9"]),
        ("mode", ["dns"]),
        ("mode", ["reverse:udp://127.0.0.1:9"]),
        ("mode", ["wireguard"]),
    ],
)
def test_passthrough_options_are_refused(guarded, option: str, value: object) -> None:  # type: ignore[no-untyped-def]
    """Options and modes that would pass traffic unread are OptionsErrors naming them."""
    conn, tctx, _ = guarded
    with pytest.raises(exceptions.OptionsError, match=option if option != "mode" else "mode"):
        tctx.configure(conn, **{option: value})


@pytest.mark.parametrize(
    "mode", ["regular", "upstream:http://127.0.0.1:3128", "socks5", "reverse:https://127.0.0.1:9"]
)
def test_http_modes_are_allowed(guarded, mode: str) -> None:  # type: ignore[no-untyped-def]
    """Proxy modes whose connections end in HTTP are accepted."""
    conn, tctx, _ = guarded
    tctx.configure(conn, mode=[mode])


def test_raw_features_are_turned_off(guarded) -> None:  # type: ignore[no-untyped-def]
    """Raw TCP, WebSocket and HTTP/3, on by default in mitmproxy, are off with the guard."""
    _, tctx, _ = guarded
    assert (tctx.options.rawtcp, tctx.options.websocket, tctx.options.http3) == (
        False,
        False,
        False,
    )


def decide(data: bytes, server_data: bytes = b"", *, tunnel: bool = True) -> layer.NextLayer:
    """A next-layer decision inside a CONNECT tunnel (or at a regular proxy's door)."""
    ctx = context()
    ctx.layers = [layers.modes.HttpProxy(ctx), layers.HttpLayer(ctx, HTTPMode.regular)]
    if not tunnel:
        ctx.layers = [layers.modes.HttpProxy(ctx)]
    nl = layer.NextLayer(ctx)
    nl.events = [  # type: ignore[attr-defined]
        *(
            [layer.events.DataReceived(ctx.server, server_data)]  # type: ignore[attr-defined]
            if server_data
            else []
        ),
        layer.events.DataReceived(ctx.client, data),  # type: ignore[attr-defined]
    ]
    return nl


def _next(conn: ConnectionGuard, nl: layer.NextLayer) -> None:
    conn.next_layer(nl)


@pytest.mark.parametrize(
    ("data", "server"),
    [
        (b"\x16\x03\x01\x00", b""),  # TLS: intercepted
        (b"POST /services HTTP/1.1\r\nHost: kanta.test\r\n\r\n", b""),
    ],
)
def test_http_and_tls_in_a_tunnel_go_on(guarded, data: bytes, server: bytes) -> None:  # type: ignore[no-untyped-def]
    """A request line or a TLS handshake in a tunnel gets mitmproxy's own (read) layers."""
    conn, _, _ = guarded
    nl = decide(data, server)
    _next(conn, nl)
    assert nl.layer is not None and not isinstance(nl.layer, RefusedLayer)
    assert unread(nl.layer) is None


@pytest.mark.parametrize(
    ("data", "server"),
    [
        (b"\r\nPOST / HTTP/1.1\r\n\r\n", b""),  # a leading CRLF: mitmproxy would relay raw
        (b"GARBAGE" + REAL.encode() + b"\r\n", b""),  # no space in the first line
        (b"POST / HTTP/1.1\r\n", b"220 banner\r\n"),  # the server spoke first
        (b"SSH-2.0-client\r\n", b""),
    ],
)
def test_what_mitmproxy_would_relay_raw_is_refused(guarded, data: bytes, server: bytes) -> None:  # type: ignore[no-untyped-def]
    """Bytes that mitmproxy takes for raw TCP get a refusal layer, whatever rawtcp says."""
    conn, _, _ = guarded
    nl = decide(data, server)
    _next(conn, nl)
    assert isinstance(nl.layer, RefusedLayer)
    assert "not HTTP" in nl.layer.reason


def test_layer_another_addon_chose_is_judged(guarded) -> None:  # type: ignore[no-untyped-def]
    """A raw TCP layer set by another addon (or by ignore_hosts) is replaced by a refusal."""
    conn, _, _ = guarded
    nl = decide(b"POST / HTTP/1.1\r\n\r\n")
    nl.layer = layers.TCPLayer(nl.context, ignore=True)
    _next(conn, nl)
    assert isinstance(nl.layer, RefusedLayer)
    assert "raw TCP" in nl.layer.reason


def test_refused_layer_closes_logs_and_leaves_a_flow(guarded) -> None:  # type: ignore[no-untyped-def]
    """The refusal closes the client without relaying, writes a record and marks a TCP flow."""
    conn, _, log = guarded
    nl = decide(b"GARBAGE\r\n")
    _next(conn, nl)
    refused = nl.layer
    assert isinstance(refused, RefusedLayer)
    commands = list(refused._handle_event(layer.events.Start()))  # type: ignore[attr-defined]
    names = [type(c).__name__ for c in commands]
    assert names[-1] == "CloseConnection" and "SendData" not in names
    assert refused.flow.error is not None and "kanta-guard refused" in refused.flow.error.msg
    assert refused.flow.marked == ":no_entry:"
    records = [r for r in read_records(log) if "event" not in r]
    assert records and records[-1]["rules"] == ["protocol.refused"]
    # Data after the refusal goes nowhere.
    later = list(
        refused._handle_event(
            layer.events.DataReceived(nl.context.client, b"more " + REAL.encode())  # type: ignore[attr-defined]
        )
    )
    assert later == []


def test_tls_passthrough_is_refused(guarded) -> None:  # type: ignore[no-untyped-def]
    """An addon asking for TLS passthrough gets interception and then a refusal."""
    conn, _, _ = guarded
    nl = decide(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")

    class Hello:
        ignore_connection = True
        context = nl.context

    hello = Hello()
    conn.tls_clienthello(hello)
    assert hello.ignore_connection is False
    _next(conn, nl)
    assert isinstance(nl.layer, RefusedLayer)
    assert "passthrough" in nl.layer.reason


def test_server_name_with_a_code_is_never_contacted(guarded) -> None:  # type: ignore[no-untyped-def]
    """A SOCKS5 or CONNECT target whose name holds a real code gets an error before connecting."""
    conn, _, log = guarded
    flow = tflow.tflow()
    server = flow.server_conn
    server.address = (f"{REAL}.kanta.test", 443)
    server.error = None

    class Data:
        pass

    data = Data()
    data.server = server  # type: ignore[attr-defined]
    conn.server_connect(data)
    assert server.error and "refused to connect" in server.error and REAL not in server.error
    assert REAL not in log.read_text()
    clean = tflow.tflow().server_conn
    clean.address, clean.error = ("127.0.0.1", 443), None
    data.server = clean  # type: ignore[attr-defined]
    conn.server_connect(data)
    assert clean.error is None


def test_unconfigured_guard_connects_nowhere() -> None:
    """Without a configured guard, no server connection is made."""
    conn = ConnectionGuard(GuardState())
    server = tflow.tflow().server_conn
    server.address, server.error = ("127.0.0.1", 443), None

    class Data:
        pass

    data = Data()
    data.server = server  # type: ignore[attr-defined]
    with taddons.context(conn):
        conn.server_connect(data)
    assert server.error and "kanta-guard" in server.error


def test_backstop_drops_raw_messages(guarded) -> None:  # type: ignore[no-untyped-def]
    """A TCP message that reaches a hook anyway is emptied and its flow killed."""
    conn, _, _ = guarded
    flow = tflow.ttcpflow()
    conn.tcp_message(flow)
    assert flow.messages[-1].content == b""
    assert flow.error is not None
