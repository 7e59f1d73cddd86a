"""The upstream server's certificate: a production one means the system is pointed at
production, and nothing is sent (``upstream.production``).

The chain the server presents is judged inside the TLS handshake, in the certificate
verification callback the addon adds to every server connection (``tls_start_server``): a
production chain fails the handshake, so no request byte can follow it, whichever connection
strategy opened it and whichever request it was opened for. (``tls_established_server`` comes
too late for that: mitmproxy sends the waiting request right after it.) The verdict is
:class:`~kanta_guard.certs.CertJudge`'s (the shared one of
:class:`~kanta_guard.proxy.trust.TrustAnchors`) over the chain as sent, leaf first, read from
OpenSSL's DER (lenient where the DVV certificates are not strict DER).

Only PRODUCTION refuses. TEST and UNKNOWN server certificates pass: whether the server is trusted
is mitmproxy's own verification (``ssl_verify_upstream_trusted_ca``, ``ssl_insecure``), which
the callback keeps as it was. A chain the guard cannot read at all is refused as
``unscannable``: it cannot be shown not to be production.

What the client sees: with the **eager** connection strategy (mitmproxy's default) the server's
TLS is established before the client's request is read, so each request on that connection is
answered in the client's protocol (403 ``upstream.production``). With **lazy** connections the
request was read (and judged) first; the failed handshake is the end of its connection, and
the request gets the same blocked answer (403 ``upstream.production``, written by
:mod:`~kanta_guard.proxy.upstreamerror` in place of mitmproxy's 502 page), mark and request
record. Either way the connection has one log record saying which certificate, and nothing was
sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, http
from OpenSSL import SSL, crypto

from ..certs import CertificateError, CertKind
from ..errors import PolicyError
from ..model import Action, Finding, Protocol, Report, Verdict
from ..pipeline import protocol_of
from ..refusals import refusal
from ..rules import UNSCANNABLE
from .flows import METADATA_KEY, flow_request, mark, record_flow
from .refuse import (
    closed_on_error,
    finding,
    record_connection,
    redact_refused,
    refuse_flow,
    refused_on_error,
    report_of,
)
from .state import GuardState
from .trust import TrustAnchors

__all__ = ["RULE", "ServerCertGuard", "peer_chain"]

logger = logging.getLogger("kanta_guard")

#: The rule of a production server certificate.
RULE = "upstream.production"
_LOCATION = "tls:server-certificate"


def peer_chain(ssl_conn: Any, current: Any = None) -> list[bytes]:
    """The DER certificates the peer sent, leaf first, from a pyOpenSSL connection (OpenSSL's
    encoding: it reads what ``cryptography`` refuses). ``current`` is the certificate a verify
    callback was given, used when the chain is not available yet."""
    chain = ssl_conn.get_peer_cert_chain() or ([current] if current is not None else [])
    return [crypto.dump_certificate(crypto.FILETYPE_ASN1, cert) for cert in chain]


@dataclass
class _Refused:
    """A server connection whose handshake the guard failed: its report and where it went."""

    report: Report
    address: tuple[str, int] | None


@dataclass
class _Check:
    """The verify callback of one server connection: judges the chain once, keeps mitmproxy's
    own verdict on trust, and fails the handshake on a production chain."""

    guard: ServerCertGuard
    conn: Any
    client: Any
    insecure: bool
    allowed: bool | None = field(default=None)

    def __call__(self, ssl_conn: Any, cert: Any, errno: int, depth: int, ok: int) -> bool:
        try:
            if self.allowed is None:
                self.allowed = self.guard.judge_connection(ssl_conn, cert, self.conn, self.client)
            if not self.allowed:
                return False
            return bool(ok) or self.insecure
        except Exception:  # never raise into OpenSSL: a failure refuses
            logger.exception("kanta-guard: judging the upstream's certificate failed")
            self.allowed = False
            return False


class ServerCertGuard:
    """Refuses server connections that present a production certificate, and their requests."""

    def __init__(self, state: GuardState, trust: TrustAnchors) -> None:
        self.state = state
        self.trust = trust
        #: Refused server connections by id, and the client each belongs to (for clean-up).
        self._refused: dict[str, _Refused] = {}
        self._by_client: dict[str, list[str]] = {}

    # -- the handshake --------------------------------------------------------------------------

    @closed_on_error
    def tls_start_server(self, data: Any) -> None:
        ssl_conn = data.ssl_conn
        policy = self.state.policy
        if ssl_conn is None or policy is None or policy.action(RULE) is Action.OFF:
            return
        insecure = bool(getattr(ctx.options, "ssl_insecure", False))
        check = _Check(self, data.conn, data.context.client, insecure)
        # VERIFY_PEER even where mitmproxy verifies nothing (ssl_insecure): the callback is then
        # called, and passes whatever mitmproxy would have passed.
        ssl_conn.set_verify(SSL.VERIFY_PEER, check)

    def judge_connection(self, ssl_conn: Any, cert: Any, conn: Any, client: Any) -> bool:
        """Judge the chain of ``conn``; False (recorded, remembered) when it is refused."""
        policy = self.state.policy
        found: Finding | None
        try:
            judgement = self.trust.judge(policy).judge_chain(peer_chain(ssl_conn, cert))
        except (CertificateError, PolicyError) as exc:
            found = refusal(
                UNSCANNABLE,
                f"the upstream server's certificate could not be judged ({exc}); kanta-guard "
                "cannot show it is no production certificate, so nothing is sent",
                _LOCATION,
            )
        else:
            if judgement.kind is not CertKind.PRODUCTION:
                return True
            action = policy.action(RULE) if policy is not None else Action.BLOCK
            found = finding(
                RULE,
                action,
                "The upstream server presents a production certificate: the system under test "
                f"is pointed at production, and nothing was sent. {judgement.reason}",
                _LOCATION,
                evidence=judgement.subject,
            )
        report = report_of([found], Protocol.OTHER)
        address = (str(conn.address[0]), int(conn.address[1])) if conn.address else None
        shown = conn.sni or (f"{address[0]}:{address[1]}" if address else "")
        record_connection(self.state, report, conn_id=conn.id, client=client, host=str(shown))
        if report.verdict is not Verdict.BLOCK:
            return True
        self._refused[conn.id] = _Refused(report, address)
        self._by_client.setdefault(client.id, []).append(conn.id)
        return False

    # -- the requests on a refused connection -------------------------------------------------

    @refused_on_error
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._answer(flow)

    @refused_on_error
    def request(self, flow: http.HTTPFlow) -> None:
        self._answer(flow)
        redact_refused(self.state, flow)

    def _answer(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None or not flow.live:
            return
        server = flow.server_conn
        refused = self._refused.get(server.id) if server is not None else None
        if refused is None:
            return
        report = Report(Verdict.BLOCK, refused.report.findings, protocol_of(flow_request(flow)))
        refuse_flow(self.state, flow, report)

    def error(self, flow: http.HTTPFlow) -> None:
        """A request whose own connection failed the check (lazy connections): its flow gets
        the connection's report (verdict block), so the answer the guard writes for a failed
        connection (:class:`~kanta_guard.proxy.upstreamerror.UpstreamErrors`) is the blocked
        answer naming ``upstream.production``, mitmweb shows why, and the request has its
        record as on an eager connection (the connection's record is already written). The
        HTTP guard had judged the request itself clean before the connection was opened: that
        pass is what this replaces."""
        if flow.error is None or flow.request is None or flow.response is not None:
            return
        judged = flow.metadata.get(METADATA_KEY)
        if isinstance(judged, dict) and judged.get("verdict") == str(Verdict.BLOCK):
            return  # blocked for its content already: that answer stands
        target = (flow.request.host, flow.request.port)
        for conn_id in self._by_client.get(flow.client_conn.id, ()):
            refused = self._refused.get(conn_id)
            if refused is not None and refused.address == target:
                report = Report(
                    Verdict.BLOCK, refused.report.findings, protocol_of(flow_request(flow))
                )
                mark(flow, report)
                record_flow(self.state, report, flow)
                return

    def client_disconnected(self, client: Any) -> None:
        for conn_id in self._by_client.pop(client.id, ()):
            self._refused.pop(conn_id, None)
