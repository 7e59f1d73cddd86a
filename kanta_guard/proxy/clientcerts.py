"""Client certificates: only test certificates are presented, by the proxy and to it.

Two behaviours, one addon each:

- :class:`OwnClientCert`: the certificate the proxy presents to Kanta (mitmproxy's
  ``client_certs``: a PEM file, or a folder of ``<host>.pem`` files) is judged when it is
  configured. A non-test one (``cert.production``, ``cert.unknown``, with the rule blocking, as
  by default) stops start-up with the file and the certificate's masked subject, and is refused
  when changed at run time (mitmweb's options), as is a policy whose trust anchors would make it
  one. Each upstream TLS handshake judges the file mitmproxy is about to present again (a folder
  can gain a file, a file can be replaced): a non-test one is not presented, the connection is
  not made, and the log says why.
- :class:`PresentedClientCert`: with ``request_client_cert`` on, the certificate chain the system
  under test presents to the proxy is judged once its TLS is established; every request on a
  connection with a non-test one is answered ``cert.production`` / ``cert.unknown`` (or
  ``unscannable`` for a chain the guard cannot read) and never forwarded; the connection has one
  log record. A client that presents no certificate is not judged (mitmproxy does not require
  one; the certificate Kanta sees is the proxy's own, judged above). An expired test
  certificate is recorded as ``cert.expired`` (warn) and passes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http
from OpenSSL import crypto

from ..certs import CertificateError, CertKind, Judgement, load_certificates
from ..errors import PolicyError
from ..idcode import mask_text
from ..model import Action, Finding, Protocol, Report, Verdict
from ..pipeline import protocol_of
from ..policy import Policy
from ..refusals import refusal
from ..rules import UNSCANNABLE
from .flows import flow_request
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
from .trust import TrustAnchors, configured_policy

__all__ = [
    "OwnClientCert",
    "PresentedClientCert",
    "client_cert_files",
    "presented_file",
    "rule_of",
]

logger = logging.getLogger("kanta_guard")

EXPIRED = "cert.expired"


def rule_of(judgement: Judgement) -> str:
    """The rule a non-test verdict breaks."""
    return "cert.production" if judgement.kind is CertKind.PRODUCTION else "cert.unknown"


def client_cert_files(option: str) -> list[Path]:
    """The files ``client_certs`` can present: the file itself, or every ``*.pem`` of the
    folder (mitmproxy presents ``<sni or address>.pem`` from it)."""
    if not option:
        return []
    path = Path(os.path.expanduser(option))
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".pem" and p.is_file())
    return []  # mitmproxy itself refuses a path that does not exist


def presented_file(option: str, server: Any) -> Path | None:
    """The file mitmproxy presents to ``server`` (its ``tlsconfig.tls_start_server`` rule)."""
    if not option:
        return None
    path = os.path.expanduser(option)
    if os.path.isfile(path):
        return Path(path)
    name = server.sni or (server.address[0] if server.address else None)
    candidate = os.path.join(path, f"{name}.pem") if name else None
    return Path(candidate) if candidate and os.path.isfile(candidate) else None


@dataclass(frozen=True, slots=True)
class _FileVerdict:
    """A client_certs file judged: the problem that forbids presenting it (None: it may be)."""

    problem: str | None
    judgement: Judgement | None


class OwnClientCert:
    """The client certificate the proxy presents upstream (``client_certs``) must be a test one."""

    def __init__(self, state: GuardState, trust: TrustAnchors) -> None:
        self.state = state
        self.trust = trust
        self._checked = False
        #: (path, mtime_ns, size, anchors) -> verdict: a file is read again only when it changes.
        self._cache: dict[tuple[str, int, int, str], _FileVerdict] = {}
        #: Why start-up failed (the process is ending), or None.
        self.failed: str | None = None

    def configure(self, updated: set[str]) -> None:
        if self._checked and not updated & {"client_certs", "kanta_guard_policy"}:
            return
        policy = configured_policy(self.state, updated)
        if policy is None:
            return
        problem = self.check(getattr(ctx.options, "client_certs", None) or "", policy)
        if problem is not None:
            raise exceptions.OptionsError(problem)
        self._checked = True

    def running(self) -> None:
        if self._checked or self.state.policy is None:
            return
        problem = self.check(getattr(ctx.options, "client_certs", None) or "", self.state.policy)
        self._checked = True
        if problem is not None:
            # An error logged while the proxy starts ends it (mitmproxy's errorcheck).
            self.failed = problem
            logger.error("%s", problem)

    def check(self, option: str, policy: Policy) -> str | None:
        """The first problem with what ``option`` would present under ``policy``, or None."""
        for path in client_cert_files(option):
            verdict = self.judge_file(path, policy)
            if verdict.problem is not None:
                return verdict.problem
        return None

    def judge_file(self, path: Path, policy: Policy) -> _FileVerdict:
        """The verdict on one client_certs file (cached while the file and anchors stay)."""
        try:
            stat = path.stat()
        except OSError as exc:
            return _FileVerdict(_problem(path, f"cannot be read ({exc.strerror})"), None)
        anchors = str(policy.certificates.anchors or "")
        key = (str(path), stat.st_mtime_ns, stat.st_size, anchors)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        verdict = self._judge_file(path, policy)
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = verdict
        return verdict

    def _judge_file(self, path: Path, policy: Policy) -> _FileVerdict:
        try:
            certs = load_certificates(path.read_bytes())
            if not certs:
                return _FileVerdict(_problem(path, "holds no certificate"), None)
            judgement = self.trust.judge(policy).judge_chain(certs)
        except OSError as exc:
            return _FileVerdict(_problem(path, f"cannot be read ({exc.strerror})"), None)
        except (CertificateError, PolicyError) as exc:
            return _FileVerdict(_problem(path, f"cannot be judged ({exc})"), None)
        if judgement.is_test:
            if judgement.expired:
                logger.warning(
                    "kanta-guard: %s: the client certificate in %s is an expired test "
                    "certificate (subject %s); Kanta may refuse it",
                    EXPIRED,
                    mask_text(str(path)),
                    judgement.subject,
                )
            return _FileVerdict(None, judgement)
        rule = rule_of(judgement)
        action = policy.action(rule)
        if action is Action.OFF:
            return _FileVerdict(None, judgement)
        what = (
            f"is not a test certificate ({rule}: subject {judgement.subject}). "
            f"{judgement.reason} Only test service certificates may be presented to the Kanta "
            "test environment"
        )
        if action is Action.WARN:
            logger.warning("kanta-guard: the client certificate %s %s", mask_text(str(path)), what)
            return _FileVerdict(None, judgement)
        return _FileVerdict(_problem(path, what), judgement)

    @closed_on_error
    def tls_start_server(self, data: Any) -> None:
        """The file about to be presented is judged again: one that is no longer a test
        certificate is not presented, and the connection is not made."""
        policy = self.state.policy
        option = getattr(ctx.options, "client_certs", None) or ""
        if data.ssl_conn is None or policy is None or not option:
            return
        path = presented_file(option, data.conn)
        if path is None:
            return
        verdict = self.judge_file(path, policy)
        if verdict.problem is None:
            return
        data.ssl_conn = None  # mitmproxy fails a TLS connection it was given no context for
        data.conn.error = verdict.problem
        judgement = verdict.judgement
        found = (
            finding(rule_of(judgement), Action.BLOCK, verdict.problem, "tls:client_certs")
            if judgement is not None
            else refusal(UNSCANNABLE, verdict.problem, "tls:client_certs")
        )
        conn = data.conn
        record_connection(
            self.state,
            report_of([found], Protocol.OTHER),
            conn_id=conn.id,
            client=data.context.client,
            host=str(conn.sni or (conn.address[0] if conn.address else "")),
        )


class PresentedClientCert:
    """With ``request_client_cert``, a client presenting a non-test certificate is refused."""

    def __init__(self, state: GuardState, trust: TrustAnchors) -> None:
        self.state = state
        self.trust = trust
        #: Clients (by connection id) whose certificate was refused: the report their
        #: requests are answered with.
        self._refused: dict[str, Report] = {}

    def tls_established_client(self, data: Any) -> None:
        if not getattr(ctx.options, "request_client_cert", False):
            return
        try:
            self._judge_client(data)
        except Exception as exc:  # fail closed: nothing from this client goes on unjudged
            logger.exception("kanta-guard: judging a client certificate failed")
            why = f"internal error judging the client certificate: {type(exc).__name__}"
            found = refusal(UNSCANNABLE, why, "tls:client-certificate")
            self._refused[data.conn.id] = report_of([found], Protocol.OTHER)

    def _judge_client(self, data: Any) -> None:
        policy = self.state.policy
        if policy is None:
            return  # the guard refuses everything until it has one
        chain = _client_chain(data.ssl_conn)
        if not chain:
            return  # no certificate presented: nothing to judge
        client = data.conn
        found: Finding | None = None
        try:
            judgement = self.trust.judge(policy).judge_chain(chain)
        except (CertificateError, PolicyError) as exc:
            found = refusal(
                UNSCANNABLE,
                f"the client certificate could not be judged ({exc}); kanta-guard forwards "
                "nothing from a client it cannot show uses a test certificate",
                "tls:client-certificate",
            )
        else:
            if judgement.is_test:
                if judgement.expired and policy.action(EXPIRED) is not Action.OFF:
                    found = finding(
                        EXPIRED,
                        policy.action(EXPIRED),
                        f"The client presents an expired test certificate. {judgement.reason}",
                        "tls:client-certificate",
                        evidence=judgement.subject,
                    )
            else:
                rule = rule_of(judgement)
                found = finding(
                    rule,
                    policy.action(rule),
                    "The system under test presents a client certificate that is not a test "
                    f"certificate: nothing it sends is forwarded. {judgement.reason}",
                    "tls:client-certificate",
                    evidence=judgement.subject,
                )
        if found is None or found.action is Action.OFF:
            return
        report = report_of([found], Protocol.OTHER)
        record_connection(
            self.state, report, conn_id=client.id, client=client, host=str(client.sni or "")
        )
        if report.verdict is Verdict.BLOCK:
            self._refused[client.id] = report

    @refused_on_error
    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._answer(flow)

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
        refused = self._refused.get(flow.client_conn.id)
        if refused is None:
            return
        report = Report(Verdict.BLOCK, refused.findings, protocol_of(flow_request(flow)))
        refuse_flow(self.state, flow, report)

    def client_disconnected(self, client: Any) -> None:
        self._refused.pop(client.id, None)


def _client_chain(ssl_conn: Any) -> list[bytes]:
    """The DER chain a client presented, leaf first (on the server side OpenSSL keeps the leaf
    apart from the rest of the chain)."""
    if ssl_conn is None:
        return []
    leaf = ssl_conn.get_peer_certificate()
    if leaf is None:
        return []
    chain = [crypto.dump_certificate(crypto.FILETYPE_ASN1, leaf)]
    for cert in ssl_conn.get_peer_cert_chain() or ():
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
        if der not in chain:
            chain.append(der)
    return chain


def _problem(path: Path, what: str) -> str:
    return mask_text(f"kanta-guard: the client certificate file {path} (client_certs) {what}.")
