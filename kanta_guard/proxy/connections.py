"""The connection guard: a connection becomes HTTP the guard reads, or it is refused.

mitmproxy relays as raw TCP (or UDP, or DNS, or a WebSocket) anything it does not take for HTTP:
a tunnel whose first bytes are not a request line, a server that speaks first, hosts in
``ignore_hosts``/``allow_hosts``/``tcp_hosts``, a protocol upgrade. None of those reach the HTTP
guard's hooks. So this addon decides, for every connection, from mitmproxy's own layer classes:

- at each ``next_layer`` decision, every layer of the chosen stack must be one the guard reads
  (:data:`LAYERS`); any other, and any class this table does not know (a new mitmproxy), is
  replaced by a :class:`RefusedLayer`, which closes the connection, writes a log record and
  leaves a flow in mitmweb saying why;
- options whose purpose is to pass traffic unread are refused at start-up (and at run time),
  and mitmproxy's raw-TCP, WebSocket and HTTP/3 support is turned off;
- proxy modes other than HTTP(S) ones are refused;
- TLS passthrough asked for by another addon (``tls_clienthello.ignore_connection``) is not
  granted: the connection is intercepted and refused;
- the server's name is judged before mitmproxy connects to it (or looks it up): a SOCKS5
  target or CONNECT authority holding an identity code is never resolved or contacted;
- as a backstop, a TCP, UDP, DNS or WebSocket message that reaches a hook anyway is dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mitmproxy import ctx, exceptions, flow, tcp
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers.http import HttpLayer, HTTPMode
from mitmproxy.proxy.layers.tcp import TcpErrorHook, TcpStartHook
from mitmproxy.proxy.mode_specs import (
    ProxyMode,
    RegularMode,
    ReverseMode,
    Socks5Mode,
    TransparentMode,
    UpstreamMode,
)

from ..idcode import mask_text
from ..model import Request, Verdict
from ..refusals import refused_report
from .dimse import DIMSE_KEY, OPTION, dicom_mode, dicom_stack, upstreams_of
from .flows import MARK_BLOCKED, METADATA_KEY, client_address, comment, mark, record
from .state import GuardState

__all__ = [
    "LAYERS",
    "PASSTHROUGH_OPTIONS",
    "ConnectionGuard",
    "LayerRule",
    "RefusedLayer",
    "layer_rule",
    "unread",
]

logger = logging.getLogger("kanta_guard")


@dataclass(frozen=True, slots=True)
class LayerRule:
    """Whether a connection may go on in a mitmproxy layer, and why."""

    read: bool
    why: str


_HTTP = LayerRule(True, "HTTP: every request is read and judged by the HTTP guard")
_TLS = LayerRule(True, "TLS intercepted: the plaintext inside gets a layer decision of its own")
_MODE = LayerRule(True, "a proxy mode's entry: the connection inside gets a layer decision")
_DECIDE = LayerRule(True, "a decision still to be made: judged again when it is made")
_QUIC = LayerRule(False, "QUIC and HTTP/3 are not read by kanta-guard (http3 is turned off)")

#: Every layer class of mitmproxy a connection can be in, by qualified name. A class missing here
#: is refused (and ``tests/proxy/test_connections.py`` fails, so that someone decides).
LAYERS: dict[str, LayerRule] = {
    "mitmproxy.proxy.layer.NextLayer": _DECIDE,
    "mitmproxy.proxy.layers.modes.HttpProxy": _MODE,
    "mitmproxy.proxy.layers.modes.HttpUpstreamProxy": _MODE,
    "mitmproxy.proxy.layers.modes.DestinationKnown": _MODE,
    "mitmproxy.proxy.layers.modes.ReverseProxy": _MODE,
    "mitmproxy.proxy.layers.modes.TransparentProxy": _MODE,
    "mitmproxy.proxy.layers.modes.Socks5Proxy": _MODE,
    "mitmproxy.proxy.tunnel.TunnelLayer": _TLS,
    "mitmproxy.proxy.layers.tls.TLSLayer": _TLS,
    "mitmproxy.proxy.layers.tls.ServerTLSLayer": _TLS,
    "mitmproxy.proxy.layers.tls.ClientTLSLayer": _TLS,
    "mitmproxy.proxy.layers.http._upstream_proxy.HttpUpstreamProxy": LayerRule(
        True, "the tunnel to an upstream proxy: the HTTP inside is read"
    ),
    "mitmproxy.proxy.layers.http.HttpLayer": _HTTP,
    "mitmproxy.proxy.layers.http.HttpStream": _HTTP,
    "mitmproxy.proxy.layers.http.HttpClient": _HTTP,
    "mitmproxy.proxy.layers.http._base.HttpConnection": _HTTP,
    "mitmproxy.proxy.layers.http._http1.Http1Connection": _HTTP,
    "mitmproxy.proxy.layers.http._http1.Http1Server": _HTTP,
    "mitmproxy.proxy.layers.http._http1.Http1Client": _HTTP,
    "mitmproxy.proxy.layers.http._http2.Http2Connection": _HTTP,
    "mitmproxy.proxy.layers.http._http2.Http2Server": _HTTP,
    "mitmproxy.proxy.layers.http._http2.Http2Client": _HTTP,
    "mitmproxy.proxy.layers.http._http3.Http3Connection": _QUIC,
    "mitmproxy.proxy.layers.http._http3.Http3Server": _QUIC,
    "mitmproxy.proxy.layers.http._http3.Http3Client": _QUIC,
    "mitmproxy.proxy.layers.tcp.TCPLayer": LayerRule(
        False, "raw TCP: bytes relayed unread (not HTTP, a server that speaks first, tcp_hosts)"
    ),
    "mitmproxy.proxy.layers.udp.UDPLayer": LayerRule(False, "raw UDP: datagrams relayed unread"),
    "mitmproxy.proxy.layers.dns.DNSLayer": LayerRule(
        False, "DNS: queries relayed without the guard reading them"
    ),
    "mitmproxy.proxy.layers.websocket.WebsocketLayer": LayerRule(
        False, "WebSocket: messages after an upgrade are not read by kanta-guard"
    ),
    "mitmproxy.proxy.layers.tls.MockTLSLayer": LayerRule(False, "mitmproxy's test-only TLS stub"),
    "mitmproxy.proxy.layers.quic._stream_layers.QuicLayer": _QUIC,
    "mitmproxy.proxy.layers.quic._stream_layers.ServerQuicLayer": _QUIC,
    "mitmproxy.proxy.layers.quic._stream_layers.ClientQuicLayer": _QUIC,
    "mitmproxy.proxy.layers.quic._raw_layers.QuicStreamLayer": _QUIC,
    "mitmproxy.proxy.layers.quic._raw_layers.RawQuicLayer": _QUIC,
    "mitmproxy.proxy.layers.quic._raw_layers.QuicStreamNextLayer": _QUIC,
    "mitmproxy.addons.clientplayback.MockServer": LayerRule(
        True, "mitmproxy's client replay: the replayed request is judged like any other"
    ),
    "kanta_guard.proxy.connections.RefusedLayer": LayerRule(
        False, "kanta-guard's own refusal: closes the connection"
    ),
}

#: Options that exist to pass traffic through unread: refused when set.
PASSTHROUGH_OPTIONS = {
    "ignore_hosts": "it passes those hosts' connections through unread (TLS passthrough)",
    "allow_hosts": "it passes every other host's connections through unread",
    "tcp_hosts": "it relays those hosts' connections as raw TCP, unread",
    "udp_hosts": "it relays those hosts' datagrams as raw UDP, unread",
    "stream_large_bodies": "it forwards large bodies before the guard has read them",
}
#: mitmproxy features on by default that would open unread paths: turned off, refused if set.
_FORCED_OFF = {
    "rawtcp": "raw TCP relays what is not HTTP unread",
    "websocket": "WebSocket messages after an upgrade are not read (upgrades are refused)",
    "http3": "QUIC and HTTP/3 are not read",
}
#: Proxy modes whose connections end in HTTP the guard reads.
_HTTP_MODES = (RegularMode, UpstreamMode, Socks5Mode, TransparentMode)


def layer_rule(item: object) -> LayerRule | None:
    """The rule of a layer instance's class, or None for a class the table does not know."""
    cls = type(item)
    return LAYERS.get(f"{cls.__module__}.{cls.__qualname__}")


def unread(top: object) -> str | None:
    """Why a stack of layers (``top`` and its ``child_layer`` chain) would relay something
    unread, or None when every layer in it is read."""
    item: object | None = top
    while item is not None:
        rule = layer_rule(item)
        if rule is None:
            return f"{type(item).__name__}: a connection layer kanta-guard does not know"
        if not rule.read:
            return rule.why
        item = getattr(item, "child_layer", None)
    return None


class RefusedLayer(layer.Layer):
    """Closes the client connection without relaying a byte, leaving a TCP flow that says why."""

    def __init__(self, context: Any, reason: str, guard: ConnectionGuard) -> None:
        super().__init__(context)
        self.reason = reason
        self.guard = guard
        self.flow = tcp.TCPFlow(context.client, context.server, True)

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if not isinstance(event, events.Start):
            return  # nothing after the refusal is relayed or read
        self.guard.refused(self.flow, self.reason)
        yield TcpStartHook(self.flow)
        self.flow.live = False
        yield TcpErrorHook(self.flow)
        if self.context.server.connected:
            yield commands.CloseConnection(self.context.server)
        yield commands.CloseConnection(self.context.client)


class ConnectionGuard:
    """Keeps every connection on a path the guard reads; refuses the others, visibly."""

    def __init__(self, state: GuardState) -> None:
        self.state = state
        #: Clients whose TLS passthrough another addon asked for: refused at the next decision.
        self._passthrough: set[str] = set()

    # -- options --------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        _turn_off()

    def configure(self, updated: set[str]) -> None:
        options = ctx.options
        for name, why in PASSTHROUGH_OPTIONS.items():
            if name in updated and getattr(options, name, None):
                raise exceptions.OptionsError(
                    f"kanta-guard refuses {name}: {why}. The guard forwards only what it has read."
                )
        for name, why in _FORCED_OFF.items():
            if name in updated and getattr(options, name, False):
                raise exceptions.OptionsError(
                    f"kanta-guard refuses {name}=true: {why}; kanta-guard turns it off."
                )
        if "mode" in updated or OPTION in updated:
            upstreams = upstreams_of(options)
            for spec in getattr(options, "mode", ()):
                _check_mode(spec, upstreams)

    def running(self) -> None:
        _turn_off()

    # -- connections ----------------------------------------------------------------------------

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if nextlayer.layer is None:
            # Loaded as a script, the guard runs before mitmproxy's own decision: make it now,
            # then judge it.
            decider = ctx.master.addons.get("nextlayer")
            if decider is not None and decider is not self:
                decider.next_layer(nextlayer)
            if nextlayer.layer is None:
                return  # more data needed: asked again when it arrives
        client = nextlayer.context.client
        why = unread(nextlayer.layer)
        if why is not None and dicom_stack(
            nextlayer.layer, client.proxy_mode, upstreams_of(ctx.options)
        ):
            why = None  # raw TCP to a configured DICOM upstream: the DIMSE guard reads it
        if why is None and _http_in_doubt(nextlayer):
            why = (
                "not HTTP: the first bytes are no request line (or the server spoke first); "
                "mitmproxy would relay them as raw TCP, kanta-guard refuses them"
            )
        if why is None and client.id in self._passthrough:
            why = "TLS passthrough was asked for; kanta-guard does not relay TLS it cannot read"
        if why is not None:
            nextlayer.layer = RefusedLayer(nextlayer.context, why, self)

    def tls_clienthello(self, data: Any) -> None:
        if data.ignore_connection:
            # Passthrough would relay the TLS unread (mitmproxy builds the raw layer itself, with
            # no next_layer decision): intercept instead, and refuse at the next decision.
            data.ignore_connection = False
            self._passthrough.add(data.context.client.id)

    def client_disconnected(self, client: Any) -> None:
        self._passthrough.discard(client.id)

    def server_connect(self, data: Any) -> None:
        """Judge the server's name before mitmproxy resolves or contacts it."""
        server = data.server
        if server.error:
            return
        names = [
            n
            for n in (server.address[0] if server.address else None, server.sni)
            if isinstance(n, str) and n
        ]
        state = self.state
        if not state.ready or state.scanner is None:
            server.error = "kanta-guard refused to connect: " + state.why_not_ready()
            return
        for name in names:
            try:
                report = state.scanner.scan(Request("CONNECT", "", authority=name))
            except Exception:
                logger.exception("kanta-guard: the scan of a server name failed")
                server.error = "kanta-guard refused to connect: the server name could not be read"
                return
            if report.verdict is Verdict.BLOCK:
                rules = ", ".join(report.rules)
                server.error = (
                    f"kanta-guard refused to connect: the server name holds data the policy "
                    f"forbids ({rules})"
                )
                record(
                    state,
                    report,
                    flow_id=server.id,
                    client=None,
                    method="CONNECT",
                    host=mask_text(name),
                    path="",
                )
                return

    def refused(self, refused_flow: tcp.TCPFlow, reason: str) -> None:
        """Record and show a refused connection (called by :class:`RefusedLayer`)."""
        report = refused_report(reason, location="connection")
        refused_flow.error = flow.Error(f"kanta-guard refused the connection: {reason}")
        try:
            mark(refused_flow, report)
            refused_flow.marked = MARK_BLOCKED
            refused_flow.comment = comment(report)
        except Exception:
            logger.exception("kanta-guard: could not mark a refused connection")
        address = refused_flow.server_conn.address
        record(
            self.state,
            report,
            flow_id=refused_flow.id,
            client=client_address(refused_flow.client_conn),
            method="",
            host=f"{address[0]}:{address[1]}" if address else "",
            path="",
        )

    # -- backstops: should never fire; if they do, nothing is relayed -------------------------

    def tcp_message(self, f: tcp.TCPFlow) -> None:
        # A refusal's own flow carries the guard's report (mark()); any other TCP flow is a
        # relay the guard did not make, and its message goes nowhere.
        if METADATA_KEY not in f.metadata and DIMSE_KEY not in f.metadata and f.messages:
            f.messages[-1].content = b""
            self._backstop(f, "raw TCP")

    def udp_message(self, f: Any) -> None:
        if f.messages:
            f.messages[-1].content = b""
            self._backstop(f, "raw UDP")

    def websocket_message(self, f: Any) -> None:
        if f.websocket is not None and f.websocket.messages:
            f.websocket.messages[-1].drop()
            self._backstop(f, "WebSocket")

    def dns_request(self, f: Any) -> None:
        self._backstop(f, "DNS")

    def _backstop(self, f: Any, what: str) -> None:
        logger.error("kanta-guard: a %s message reached the proxy; dropped and closed", what)
        if f.killable:
            f.kill()


def _http_in_doubt(nextlayer: layer.NextLayer) -> bool:
    """Whether mitmproxy chose HTTP for a connection only because raw TCP is off.

    mitmproxy takes a connection in a tunnel (or in transparent and reverse mode) for raw TCP
    when its first bytes do not look like a request line or the server spoke first
    (``mitmproxy/addons/next_layer.py``, step 5d, with ``rawtcp``); with ``rawtcp`` off it tries
    HTTP, which then hangs or answers with an error page. Such a connection is refused instead,
    with a record saying why. The same test as mitmproxy's is used, so that what it would have
    relayed is exactly what is refused.
    """
    chosen = nextlayer.layer
    if not isinstance(chosen, HttpLayer) or chosen.mode is not HTTPMode.transparent:
        return False
    data, server = nextlayer.data_client(), nextlayer.data_server()
    return bool(
        len(data) < 3
        or b" " not in data
        or data.find(b" ") > data.find(b"\n")
        or not data[:3].isalpha()
        or server
        or data.startswith(b"SSH")
    )


def _turn_off() -> None:
    """Turn mitmproxy's raw-TCP, WebSocket and HTTP/3 support off (they are on by default)."""
    options = ctx.options
    on = {name: False for name in _FORCED_OFF if getattr(options, name, False)}
    if on:
        for name in on:
            logger.info("kanta-guard: %s turned off: %s", name, _FORCED_OFF[name])
        options.update(**on)


def _check_mode(spec: str, upstreams: frozenset[tuple[str, int]] = frozenset()) -> None:
    if dicom_mode(spec, upstreams):
        return  # reverse:tcp:// or reverse:tls:// to a DICOM upstream: read by the DIMSE guard
    try:
        mode = ProxyMode.parse(spec)
    except ValueError:
        return  # mitmproxy's own check names the problem
    if isinstance(mode, _HTTP_MODES):
        return
    if isinstance(mode, ReverseMode) and mode.scheme in ("http", "https"):
        return
    raise exceptions.OptionsError(
        f"kanta-guard refuses mode {spec!r}: its connections are not HTTP the guard reads "
        "(use regular, upstream:URL, socks5, transparent or reverse:http(s)://…; "
        f"reverse:tcp:// and reverse:tls:// only to an upstream named in {OPTION})"
    )
