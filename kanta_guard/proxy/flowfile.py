"""mitmproxy flow files (``mitmdump -w``) read into recorded requests, one flow at a time.

The mitmproxy half of :mod:`kanta_guard.recorded` (only this package imports mitmproxy). Each
HTTP flow's request becomes the request the live guard judges (:func:`.flows.flow_request`: the
body as sent, still content-encoded, with its headers and trailers); the scan then undoes the
encodings as it does live. What else a flow file holds is judged too, as bytes: the live guard
refuses these connections, so in a recording they mean traffic that went past a guard, and what
the client sent in them is what matters:

- the WebSocket messages a client sent on an HTTP flow: one more result of that flow;
- a TCP or UDP flow: the messages the client sent, joined (a code split across two segments is
  still seen whole);
- a DNS flow: the names the client asked about, one a line.

:class:`mitmproxy.io.FlowReader` reads the file as a stream (one flow in memory at a time). A
file that is corrupt or cut short raises :class:`~kanta_guard.recorded.RecordingError` after
the flows read before the damage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from mitmproxy import dns, exceptions, http, io, tcp, udp

from ..recorded import Recorded, RecordingError
from .flows import flow_request

__all__ = ["read_flows"]


def read_flows(stream: BinaryIO) -> Iterator[Recorded]:
    """Every request of a flow file open for reading in binary, in order (numbered from 1)."""
    reader = io.FlowReader(stream)
    number = 0
    try:
        for flow in reader.stream():
            number += 1
            yield from _recorded(number, flow)
    except (exceptions.FlowReadException, KeyError, TypeError, AttributeError):
        # (KeyError and the like: a tnetstring that parses but is no flow mitmproxy knows.)
        # mitmproxy's message may quote what it read: the request's own data is not shown.
        after = f" after flow {number}" if number else ""
        raise RecordingError(
            f"not a readable flow file{after}: corrupt or cut short at flow {number + 1}"
        ) from None


def _recorded(number: int, flow: object) -> Iterator[Recorded]:
    if isinstance(flow, http.HTTPFlow):
        req = flow.request
        yield Recorded(number, req.method, req.pretty_url, flow_request(flow))
        if flow.websocket is not None:
            messages = [m.content for m in flow.websocket.messages if m.from_client]
            if messages:
                yield Recorded(number, "WEBSOCKET", req.pretty_url, data=b"\n".join(messages))
    elif isinstance(flow, tcp.TCPFlow | udp.UDPFlow):
        kind = "TCP" if isinstance(flow, tcp.TCPFlow) else "UDP"
        sent = b"".join(m.content for m in flow.messages if m.from_client)
        yield Recorded(number, kind, _address(kind, flow), data=sent)
    elif isinstance(flow, dns.DNSFlow):
        names = "\n".join(q.name for q in flow.request.questions)
        yield Recorded(number, "DNS", _address("dns", flow), data=names.encode("utf-8"))
    else:
        kind = type(flow).__name__
        yield Recorded(number, kind, "", error=f"a {kind} is not a flow kanta-guard can read")


def _address(scheme: str, flow: tcp.TCPFlow | udp.UDPFlow | dns.DNSFlow) -> str:
    address = flow.server_conn.address
    return f"{scheme.lower()}://{address[0]}:{address[1]}" if address else ""
