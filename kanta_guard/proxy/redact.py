"""Redaction: what mitmweb and saved flows keep of a flagged request holds no readable value.

A blocked request never reaches the upstream, so it is redacted as soon as it is judged. A warned
request goes upstream as sent, so it is redacted once it has left (when its response starts, or
when it fails); the :class:`Redactor` addon sits at the front of the addon chain, so that
mitmproxy's dumper (``flow_detail``), the flow file writer and mitmweb see the redacted request,
not the original. A request that failed before it was judged (a malformed header, a body over
the limit) is redacted the same way: mitmproxy prints and keeps it too.

Redacting masks every identity-code-shaped token in the URL, the headers, the trailers and the
decoded body, then scans the result again: where something could still be read (inside Base64,
a JWT, a compressed layer), that header or the body is withheld entirely.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from mitmproxy import http

from ..encoding import decode_content
from ..errors import UnscannableError
from ..eventlog import WITHHELD
from ..idcode import mask_text
from ..pipeline import Scanner
from .flows import METADATA_KEY, flow_request
from .state import GuardState

__all__ = ["REDACTED_HEADER", "WITHHELD", "Redactor", "redact_request"]

logger = logging.getLogger("kanta_guard")

#: Header added to a redacted request, saying what was done to it.
REDACTED_HEADER = "x-kanta-guard-redacted"
#: Findings that masking itself produces (a masked test code in an identity field reads as a
#: malformed code): they say nothing readable is left.
_FROM_MASKING = frozenset({"hetu.malformed", "hetu.malformed_test"})
#: Flow metadata key: set once the request has been redacted.
_DONE = "kanta_guard_redacted"


def redact_request(flow: http.HTTPFlow, scanner: Scanner | None) -> None:
    """Mask the flow's request in place; withhold what masking cannot make unreadable.

    Never raises: a redaction that fails withholds everything it had not shown clean.
    """
    if flow.metadata.get(_DONE):
        return
    flow.metadata[_DONE] = True
    req = flow.request
    try:
        req.method = mask_text(req.method)
        req.path = mask_text(unquote(req.path, errors="replace"))
        if req.authority:
            req.authority = mask_text(unquote(req.authority, errors="replace"))
        req.headers.fields = _masked_fields(req.headers.fields)
        if req.trailers:
            req.trailers.fields = _masked_fields(req.trailers.fields)
        limit = scanner.policy.limits.max_decoded_bytes if scanner else 2**27
        if _body_withheld(flow):
            body = b""  # (withheld below: masking it first would only cost time)
        else:
            try:
                body = decode_content(
                    req.raw_content or b"", req.headers.get("content-encoding"), max_size=limit
                )
            except UnscannableError:
                body = b""
        req.headers.pop("content-encoding", None)
        req.content = mask_text(body.decode("latin-1")).encode("latin-1")
        what = _withhold_readable(flow, scanner)
    except Exception:
        logger.exception("kanta-guard: redaction failed; the request is withheld from the record")
        req.path = "/" + WITHHELD
        req.headers.clear()
        req.trailers = None
        req.content = b""
        what = "everything withheld: redaction failed"
    req.headers[REDACTED_HEADER] = what


def _masked_fields(fields: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[bytes, bytes], ...]:
    """Header (or trailer) fields with codes masked in names and values, percent-encoded too."""

    def masked(raw: bytes) -> bytes:
        text = raw.decode("utf-8", "surrogateescape")
        return mask_text(unquote(mask_text(text), errors="replace")).encode(
            "utf-8", "surrogateescape"
        )

    return tuple((masked(name), masked(value)) for name, value in fields)


def _withhold_readable(flow: http.HTTPFlow, scanner: Scanner | None) -> str:
    """Withhold each part where a finding is still readable: where the guard found what
    masking does not hide (a name, a phone number, an e-mail, an address: only identity codes
    are masked), and, scanning the masked request again, where a code could still be read."""
    req = flow.request
    if scanner is None:
        req.content = b""
        return "identity codes masked; body withheld (no scanner to check it)"
    judged = flow.metadata.get(METADATA_KEY)
    found = judged.get("findings", []) if isinstance(judged, dict) else []
    kept = [
        _Where(str(f.get("location", "")))
        for f in found
        if isinstance(f, dict) and not str(f.get("rule", "")).startswith(_MASKED_RULES)
    ]
    withheld = _withhold(req, kept)
    masked = any(
        isinstance(f, dict) and str(f.get("rule", "")).startswith(_MASKED_RULES) for f in found
    )
    if masked or not isinstance(judged, dict) or not found:
        # Codes were masked (or the request was never judged): scan again, for a code masking
        # could not reach (inside Base64, a JWT, a compressed layer). (Only then: a scan costs
        # as much as the first one.)
        report = scanner.scan(flow_request(flow))
        left = [_Where(f.location) for f in report.findings if f.rule not in _FROM_MASKING]
        withheld += _withhold(req, left)
    if not withheld:
        return "identity codes masked"
    return "identity codes masked; withheld as still readable: " + ", ".join(
        dict.fromkeys(withheld)
    )


def _body_withheld(flow: http.HTTPFlow) -> bool:
    """Whether ``_withhold_readable`` will withhold the body for what the scan found there: a
    finding masking does not hide (a name, a contact) located in the body (``_withhold``'s
    last case)."""
    judged = flow.metadata.get(METADATA_KEY)
    found = judged.get("findings", []) if isinstance(judged, dict) else []
    return any(
        isinstance(f, dict)
        and not str(f.get("rule", "")).startswith(_MASKED_RULES)
        and not str(f.get("location", "")).startswith(_NOT_BODY)
        for f in found
    )


#: Locations ``_withhold`` reads as a part of the request other than the body.
_NOT_BODY = ("header:", "cookie:", "header-name:", "trailer:", "trailer-name:", "url", "request:")
#: Rules whose values masking hides (identity codes): their findings need the second scan.
_MASKED_RULES = ("hetu.",)


class _Where:
    """A finding's location (what ``_withhold`` needs of a finding)."""

    __slots__ = ("location",)

    def __init__(self, location: str) -> None:
        self.location = location


def _withhold(req: http.Request, findings: list[_Where]) -> list[str]:
    """Withhold the part of the request each finding stands in; what was withheld."""
    withheld: list[str] = []
    for finding in findings:
        where = finding.location
        if where.startswith("header:"):
            name = where.split(":", 1)[1].split("!", 1)[0]
            if name in req.headers:
                req.headers[name] = WITHHELD
                withheld.append(f"header {name}")
            else:  # a location that does not name the header exactly: every value
                req.headers.fields = tuple((k, WITHHELD.encode()) for k, _ in req.headers.fields)
                withheld.append("headers")
        elif where.startswith("cookie:"):
            if "cookie" in req.headers:
                req.headers["cookie"] = WITHHELD
            withheld.append("header Cookie")
        elif where.startswith("header-name:"):
            # A name that still reads as a code: the name and its value go.
            req.headers.fields = tuple(
                (b"x-kanta-guard-withheld", WITHHELD.encode()) for _ in req.headers.fields
            )
            withheld.append("headers")
        elif where.startswith(("trailer:", "trailer-name:")):
            req.trailers = None
            withheld.append("trailers")
        elif where.startswith(("url", "request:")):
            req.path = "/" + WITHHELD
            req.authority = ""
            if where.startswith("request:method"):
                req.method = WITHHELD
            withheld.append("url")
        else:  # the body, a part of it, or a body that no longer scans
            req.content = b""
            withheld.append("body")
    return withheld


class Redactor:
    """Redacts warned requests once sent, and requests that failed before they were judged.

    Placed at the front of the addon chain (see :mod:`kanta_guard.proxy.launch`).
    """

    def __init__(self, state: GuardState) -> None:
        self.state = state

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        # The request has left; what stays in mitmweb need no longer be what was sent.
        if _flagged(flow):
            redact_request(flow, self.state.scanner)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.request is None:
            return
        if METADATA_KEY not in flow.metadata or _flagged(flow):
            # Not judged: it failed before the scan (a malformed request, a body over the
            # limit); mitmproxy keeps and prints it, so it is masked like a flagged one.
            redact_request(flow, self.state.scanner)


def _flagged(flow: http.HTTPFlow) -> bool:
    """Whether the guard warned about or blocked the flow's request."""
    report = flow.metadata.get(METADATA_KEY)
    return isinstance(report, dict) and report.get("verdict") in ("warn", "block")
