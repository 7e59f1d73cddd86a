"""The pipeline: a request (or a file) in, one :class:`Report` out.

request → request line, URL, header and trailer fields → body: size check → Content-Encoding →
payload → the first parser that claims it → fields (to every detector) and nested payloads
(parsed in turn, depth-limited) → hits → findings (masked, keyed-hashed, under the policy) →
verdict.

Anything that cannot be fully read raises :class:`UnscannableError` somewhere below; it ends the
scan with an ``unscannable`` finding, which always blocks.
"""

from __future__ import annotations

from collections.abc import Iterable

from .detectors import DETECTORS, Detector
from .encoding import decode_content
from .errors import UnscannableError
from .idcode import mask_any_form
from .masking import KeyedHasher
from .mediatype import parse_media_type
from .model import (
    Action,
    Context,
    Field,
    Finding,
    Hit,
    Payload,
    Protocol,
    Report,
    Request,
    Role,
    Verdict,
)
from .parsers import PARSERS, Parser, ScanState
from .parsers.base import BlobMemo, Item
from .parsers.request import request_fields
from .policy import Policy
from .rules import UNSCANNABLE

__all__ = ["Scanner", "protocol_of", "unscannable_report"]

_RANK = {Action.OFF: 0, Action.WARN: 1, Action.BLOCK: 2}
_VERDICT = {0: Verdict.PASS, 1: Verdict.WARN, 2: Verdict.BLOCK}


class Scanner:
    """Scans requests and files under one policy. Stateless between scans; safe to reuse."""

    def __init__(
        self,
        policy: Policy,
        hasher: KeyedHasher,
        *,
        parsers: tuple[Parser, ...] = PARSERS,
        detectors: tuple[Detector, ...] = DETECTORS,
    ) -> None:
        self.policy = policy
        self._hasher = hasher
        self._parsers = parsers
        # Detectors whose every rule is off are not run at all.
        self._detectors = tuple(
            d for d in detectors if any(policy.action(r.id) is not Action.OFF for r in d.rules)
        )
        self._systems = frozenset().union(*(d.systems for d in self._detectors))
        self._inert = BlobMemo()

    def _screen(self, data: bytes) -> frozenset[bytes] | None:
        """The needles of every detector (see ``Detector.screen``); None if one cannot tell."""
        needles: frozenset[bytes] = frozenset()
        for detector in self._detectors:
            found = detector.screen(data)
            if found is None:
                return None
            needles |= found
        return needles

    # -- entry points ---------------------------------------------------------------------------

    def scan(self, request: Request) -> Report:
        """Scan a whole request: method, authority, URL, headers, trailers and body."""
        state = ScanState(self.policy.limits, self._screen, self._systems, self._inert)
        findings: list[Finding] = []
        counter = [0]
        try:
            self._fields(request_fields(request, state), findings, state, counter)
            self._scan_body(
                request.body,
                request.header("content-type"),
                request.header("content-encoding"),
                findings,
                state,
                counter,
            )
        except UnscannableError as exc:
            findings.append(self._unscannable(exc))
        protocol = state.protocol or protocol_of(request)
        return self._report(findings, protocol, state, counter[0])

    def scan_bytes(
        self, data: bytes, content_type: str | None = None, content_encoding: str | None = None
    ) -> Report:
        """Scan a body on its own (a file, a saved body); the type is sniffed when not given."""
        state = ScanState(self.policy.limits, self._screen, self._systems, self._inert)
        findings: list[Finding] = []
        counter = [0]
        try:
            self._scan_body(data, content_type, content_encoding, findings, state, counter)
        except UnscannableError as exc:
            findings.append(self._unscannable(exc))
        return self._report(findings, state.protocol or Protocol.OTHER, state, counter[0])

    # -- steps ----------------------------------------------------------------------------------

    def _scan_body(
        self,
        data: bytes,
        content_type: str | None,
        content_encoding: str | None,
        findings: list[Finding],
        state: ScanState,
        counter: list[int],
    ) -> None:
        body = self._body(data, content_encoding, state)
        if body:
            payload = Payload(
                body, content_type, "", Context(Role.UNKNOWN), declared=content_type is not None
            )
            self._payload(payload, findings, state, counter)

    def _body(self, body: bytes, content_encoding: str | None, state: ScanState) -> bytes:
        limits = self.policy.limits
        if len(body) > limits.max_body_bytes:
            raise UnscannableError(
                f"too large: body of {len(body)} bytes exceeds the {limits.max_body_bytes}-byte "
                "limit",
                "body",
            )
        if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
            body = decode_content(body, content_encoding, max_size=limits.max_decoded_bytes)
        state.charge(len(body), "body")
        return body

    def _payload(
        self, payload: Payload, findings: list[Finding], state: ScanState, counter: list[int]
    ) -> None:
        if payload.depth > self.policy.limits.max_depth:
            raise UnscannableError(
                f"content nested more than {self.policy.limits.max_depth} layers deep",
                mask_any_form(payload.location) or "body",
            )
        state.payloads += 1
        media = parse_media_type(payload.content_type)
        parser = next(p for p in self._parsers if p.claims(media, payload))
        self._fields(parser.parse(payload, media, state), findings, state, counter)

    def _fields(
        self, items: Iterable[Item], findings: list[Finding], state: ScanState, counter: list[int]
    ) -> None:
        detectors = self._detectors
        for item in items:
            if isinstance(item, Field):
                counter[0] += 1
                for detector in detectors:
                    for hit in detector.detect(item):
                        finding = self._finding(hit)
                        if finding is not None and not _reported(finding, item.view_of, findings):
                            findings.append(finding)
            elif item.data:
                self._payload(item, findings, state, counter)

    # -- findings -------------------------------------------------------------------------------

    def _finding(self, hit: Hit) -> Finding | None:
        action = self.policy.action(hit.rule)
        if action is Action.OFF:
            return None
        return Finding(
            rule=hit.rule,
            action=action,
            location=mask_any_form(hit.field.location),
            role=hit.field.role,
            evidence=hit.masked,
            value_hash=self._hasher(hit.raw),
            explanation=hit.explanation,
        )

    @staticmethod
    def _unscannable(exc: UnscannableError) -> Finding:
        return Finding(
            rule=UNSCANNABLE.id,
            action=Action.BLOCK,
            location=mask_any_form(exc.location),
            role=Role.UNKNOWN,
            evidence="",
            value_hash="",
            explanation=mask_any_form(exc.reason),
        )

    @staticmethod
    def _report(
        findings: list[Finding], protocol: Protocol, state: ScanState, fields: int
    ) -> Report:
        rank = max((_RANK[f.action] for f in findings), default=0)
        return Report(
            verdict=_VERDICT[rank],
            findings=tuple(findings),
            protocol=protocol,
            fields_scanned=fields,
            payloads_scanned=state.payloads,
        )


def _reported(finding: Finding, view_of: str | None, findings: list[Finding]) -> bool:
    """True if ``finding`` comes from another reading of a field (``Field.view_of``) and that
    field already reported the same value under the same rule: one finding per place."""
    if view_of is None:
        return False
    location = mask_any_form(view_of)
    return any(
        f.rule == finding.rule and f.value_hash == finding.value_hash and f.location == location
        for f in findings
    )


def unscannable_report(request: Request, reason: str, location: str = "body") -> Report:
    """A request refused unread (too large for the proxy, its scan failed or timed out)."""
    finding = Scanner._unscannable(UnscannableError(reason, location))
    return Report(verdict=Verdict.BLOCK, findings=(finding,), protocol=protocol_of(request))


def protocol_of(request: Request) -> Protocol:
    """The client's protocol when no payload revealed it (a GET, an unparsable body)."""
    content_type = (request.header("content-type") or "").lower()
    accept = (request.header("accept") or "").lower()
    if "application/soap+xml" in content_type:
        return Protocol.SOAP12
    if request.header("soapaction") is not None:
        return Protocol.SOAP11
    if "fhir+xml" in content_type or (not content_type and "fhir+xml" in accept):
        return Protocol.FHIR_XML
    if "fhir" in content_type or "fhir" in accept or "_format=json" in request.target:
        return Protocol.FHIR_JSON
    return Protocol.OTHER
