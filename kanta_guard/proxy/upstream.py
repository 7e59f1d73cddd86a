"""Destinations: requests go only to the hosts the policy allows, refused before any connection.

The policy's ``[upstream] hosts`` (:class:`~kanta_guard.destinations.Destinations`) decides;
this addon asks it at every point where mitmproxy learns where traffic is going, so that no
path opens a connection to a host the list does not allow:

- ``http_connect``: the CONNECT target, before the tunnel (and, with the eager connection
  strategy, its connection) is opened: answered 403 ``upstream.not-allowed``;
- ``requestheaders``: every name a request gives for where it goes: the host mitmproxy will
  connect to (absolute-form target, CONNECT target of its tunnel, SOCKS5 target, the
  transparent or reverse destination), each ``Host`` header, HTTP/2 ``:authority``, the TLS
  SNI the client sent (mitmproxy passes it upstream). All must be allowed: a ``Host`` differing
  from the CONNECT target names the virtual host a front end routes to;
- ``request``: the same again as the request leaves (``map_remote``, ``modify_headers`` and
  scripts may have changed it since);
- ``server_connect`` (the safety net, whatever opened it: an eager connection, SOCKS5, reverse
  mode, a replay): the address and SNI of every server connection; a refused one never
  connects (mitmproxy answers 502 with the reason) and leaves a log record;
- ``tls_start_server``: the SNI and address of a TLS connection to the server (through an
  upstream proxy, or an SNI that differs from the address): no ClientHello is sent.

In ``upstream:`` mode the configured upstream proxy is the hop, not a destination: connections
to it are not judged; the request's own host is, on every request.

The answer is the blocked answer in the client's protocol, with what the scanner finds in the
request head (a host name holding an identity code is also ``hetu.real``), logged and marked like
any block; the request's unread body is withheld from mitmweb. Hosts the proxy answers itself
(the status page, mitmproxy's onboarding app) are not destinations.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.proxy.mode_specs import UpstreamMode

from ..destinations import Destinations, split_authority
from ..eventlog import WITHHELD, host_unmaskable
from ..idcode import mask_text
from ..model import Action, Finding, Protocol, Request
from ..policy import Policy
from .refuse import (
    REFUSED_KEY,
    closed_on_error,
    finding,
    head_findings,
    record_connection,
    redact_refused,
    refuse_flow,
    refused_on_error,
    report_of,
)
from .state import GuardState
from .status import STATUS_HOST

__all__ = ["RULE", "UpstreamGuard", "judge_names", "request_names"]

logger = logging.getLogger("kanta_guard")

#: The rule of a destination outside the policy's allowed hosts.
RULE = "upstream.not-allowed"
#: (location, host, port) of one name a request gives for where it goes.
Name = tuple[str, str, int | None]


def request_names(flow: http.HTTPFlow) -> tuple[list[Name], list[str]]:
    """Every name ``flow``'s request gives for where it goes, and the locations of those that
    cannot be read as ``host[:port]`` at all (refused as such)."""
    req = flow.request
    port = req.port
    names: list[Name] = [("destination:host", req.host, port)]
    unreadable: list[str] = []
    authorities = [("destination:authority", req.authority)] if req.authority else []
    authorities += [("destination:header:host", value) for value in req.headers.get_all("host")]
    for location, value in authorities:
        try:
            host, given = split_authority(value)
        except ValueError:
            unreadable.append(location)
            continue
        names.append((location, host, given if given is not None else port))
    sni = flow.client_conn.sni if flow.client_conn is not None else None
    if isinstance(sni, str) and sni:
        names.append(("destination:sni", sni, port))
    return names, unreadable


def judge_names(
    destinations: Destinations, names: list[Name], unreadable: list[str], action: Action
) -> list[Finding]:
    """The ``upstream.not-allowed`` findings of a request's names (one per distinct name)."""
    found = [
        finding(
            RULE,
            action,
            f"{location.split(':', 1)[1]} is no host[:port]; kanta-guard cannot tell where the "
            "request goes, so it does not send it",
            location,
        )
        for location in unreadable
    ]
    seen: set[tuple[str, int | None]] = set()
    for location, host, port in names:
        if (host, port) in seen:
            continue
        seen.add((host, port))
        why = destinations.judge(host, port)
        if why is not None:
            found.append(finding(RULE, action, _sentence(why), location))
    return found


class UpstreamGuard:
    """Refuses every request and connection to a host outside ``[upstream] hosts``."""

    def __init__(self, state: GuardState) -> None:
        self.state = state

    # -- flows ----------------------------------------------------------------------------------

    @refused_on_error
    def http_connect(self, flow: http.HTTPFlow) -> None:
        policy = self._policy(flow)
        if policy is None or _local(flow.request.host):
            return
        req = flow.request
        names: list[Name] = [("destination:connect", req.host, req.port)]
        self._decide(flow, policy, names, [], final=True)

    @refused_on_error
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Early, before the body is read: a refusal here is final; a warning waits for the
        # request as it leaves (one record per request).
        policy = self._policy(flow)
        if policy is None or _local(flow.request.pretty_host):
            return
        self._decide(flow, policy, *request_names(flow), final=False)

    @refused_on_error
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(REFUSED_KEY):
            redact_refused(self.state, flow)  # refused at requestheaders: its body is in now
            return
        policy = self._policy(flow)
        if policy is None or _local(flow.request.pretty_host):
            return
        self._decide(flow, policy, *request_names(flow), final=True)
        redact_refused(self.state, flow)

    def _policy(self, flow: http.HTTPFlow) -> Policy | None:
        """The policy to judge ``flow`` under, or None when there is nothing to judge (no
        policy: the HTTP guard refuses everything; the rule off; answered; not live)."""
        if flow.response is not None or flow.error is not None or not flow.live:
            return None
        policy = self.state.policy
        if policy is None or policy.action(RULE) is Action.OFF:
            return None
        return policy

    def _decide(
        self,
        flow: http.HTTPFlow,
        policy: Policy,
        names: list[Name],
        unreadable: list[str],
        *,
        final: bool,
    ) -> None:
        action = policy.action(RULE)
        if not final and action is not Action.BLOCK:
            return
        found = judge_names(policy.upstream, names, unreadable, action)
        if not found:
            return
        head, protocol = head_findings(self.state, flow)
        if host_unmaskable(head):
            # (A name, or a code in Base64 or hex, in the host: its sentence quotes no host.)
            found = [_unquoted(f, names) for f in found]
        refuse_flow(self.state, flow, report_of([*head, *found], protocol))

    # -- connections: the safety net ----------------------------------------------------------

    @closed_on_error
    def server_connect(self, data: Any) -> None:
        """No server connection opens to a host the policy does not allow, however it came
        about (an eager connection, SOCKS5, reverse mode, a replay)."""
        server = data.server
        if server.error or server.address is None or _upstream_proxy(data.client, server):
            return
        why = self._refused(server.address, server.sni)
        if why is not None:
            server.error = f"kanta-guard refused to connect: {why}"
            self._record(data.client, server, why)

    @closed_on_error
    def tls_start_server(self, data: Any) -> None:
        """The SNI of a TLS connection to the server is a destination too (the upstream proxy's
        own TLS in upstream mode is not): no ClientHello goes to a name not allowed."""
        conn = data.conn
        if data.ssl_conn is None or conn.address is None:
            return
        if _upstream_proxy(data.context.client, conn):
            return
        why = self._refused(conn.address, conn.sni)
        if why is not None:
            # mitmproxy fails a TLS connection it was given no context for, before any byte.
            data.ssl_conn = None
            conn.error = f"kanta-guard refused the TLS connection: {why}"
            self._record(data.context.client, conn, why)

    def _refused(self, address: tuple[str, int], sni: object) -> str | None:
        """Why a connection to ``address`` (with ``sni``) is refused, masked; None if it is not.
        Only a blocking rule refuses: with ``warn`` the requests on it carry the warning."""
        policy = self.state.policy
        if policy is None or policy.action(RULE) is not Action.BLOCK:
            return None  # (no policy: the connection guard refuses every connection)
        host, port = address[0], address[1]
        why = policy.upstream.judge(host, port)
        if why is None and isinstance(sni, str) and sni and sni != host:
            why = policy.upstream.judge(sni, port)
        return None if why is None else mask_text(_sentence(why))

    def _record(self, client: Any, server: Any, why: str) -> None:
        state = self.state
        names = [n for n in (server.address[0], server.sni) if isinstance(n, str) and n]
        found: list[Finding] = []
        scanner = state.scanner
        if scanner is not None:
            for name in dict.fromkeys(names):
                try:
                    found.extend(scanner.scan(Request("CONNECT", "", authority=name)).findings)
                except Exception:
                    logger.exception("kanta-guard: the scan of a server name failed")
        found.append(
            finding(RULE, Action.BLOCK, why + "; the connection was not opened", "connection")
        )
        report = report_of(found, Protocol.OTHER)
        address = server.address
        record_connection(
            state, report, conn_id=server.id, client=client, host=f"{address[0]}:{address[1]}"
        )


def _unquoted(found: Finding, names: list[Name]) -> Finding:
    """``found`` with every name of ``names`` its sentence quotes withheld."""
    explanation = found.explanation
    for _, host, _ in sorted(names, key=lambda name: -len(name[1])):
        if host:
            explanation = explanation.replace(host, WITHHELD)
    return dataclasses.replace(found, explanation=explanation)


def _sentence(why: str) -> str:
    return why[:1].upper() + why[1:] if why else why


def _local(host: str) -> bool:
    """Whether the proxy answers ``host`` itself (nothing goes upstream): the guard's status
    page, mitmproxy's onboarding app while it is on."""
    if host == STATUS_HOST:
        return True
    options = ctx.options
    return bool(getattr(options, "onboarding", False)) and host == getattr(
        options, "onboarding_host", None
    )


def _upstream_proxy(client: Any, server: Any) -> bool:
    """Whether ``server`` is the upstream proxy of ``upstream:`` mode (a hop the operator
    configured, not a destination)."""
    mode = getattr(client, "proxy_mode", None)
    return isinstance(mode, UpstreamMode) and tuple(server.address) == tuple(mode.address)
