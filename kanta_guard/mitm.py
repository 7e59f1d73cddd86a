"""The one adapter between kanta-guard and mitmproxy: the addon, the content view, the launcher.

Everything else in :mod:`kanta_guard` is pure and runs without a proxy; this module only
translates flows and options into library calls (mitmproxy's addon style: options declared
in ``load``, re-parsed in ``configure`` with bad values raised as ``OptionsError``, hooks opening
with a guard clause).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mitmproxy import contentviews, ctx, exceptions, http

from .answer import blocked_answer
from .encoding import decode_content
from .errors import PolicyError, UnscannableError
from .eventlog import EventLog, make_record
from .idcode import mask_text
from .masking import KeyedHasher, load_key
from .model import Action, Report, Request, Verdict
from .pipeline import Scanner, unscannable_report
from .policy import Policy, load_policy
from .worker import WorkerPool

__all__ = ["KantaGuard", "KantaGuardView", "flow_request", "run_tool"]

logger = logging.getLogger("kanta_guard")

#: ``flow.metadata`` key holding the report (a plain dict: flows are serialised with it).
METADATA_KEY = "kanta_guard"
MARK_BLOCKED = ":no_entry:"
MARK_WARNED = ":warning:"
#: The addon's own options: a change to any of them rebuilds the scanner, log and workers.
_OPTIONS = frozenset(
    {"kanta_guard_policy", "kanta_guard_log", "kanta_guard_workers", "kanta_guard_scan_timeout"}
)


def flow_request(flow: http.HTTPFlow) -> Request:
    """The pure request of a flow: the body exactly as received (still content-encoded)."""
    req = flow.request
    return Request(
        method=req.method,
        target=req.path,
        headers=tuple((k, v) for k, v in req.headers.items(multi=True)),
        body=req.raw_content or b"",
        host=req.pretty_host,
    )


def _comment(report: Report) -> str:
    """One line for mitmweb's Comment column."""
    counted = [f for f in report.findings if f.action is not Action.OFF]
    if not counted:
        return ""
    first = counted[0]
    more = f" (+{len(counted) - 1} more)" if len(counted) > 1 else ""
    return f"kanta-guard {report.verdict}: {first.rule} at {first.location}{more}"


class KantaGuard:
    """Scans every request; blocks, warns or passes it under the policy; logs what it stops."""

    def __init__(self) -> None:
        self.policy: Policy | None = None
        self.scanner: Scanner | None = None
        self.log: EventLog | None = None
        self.workers: WorkerPool | None = None
        self._key = b""

    def load(self, loader: Any) -> None:
        loader.add_option(
            "kanta_guard_policy",
            str,
            "",
            """
            kanta-guard policy file (TOML). Empty: the embedded default policy, which blocks
            every real-range personal identity code and everything it cannot read.
            """,
        )
        loader.add_option(
            "kanta_guard_log",
            str,
            "",
            """
            Blocked-request log (JSON Lines), overriding the policy's log.path.
            """,
        )
        loader.add_option(
            "kanta_guard_workers",
            int,
            _default_workers(),
            """
            kanta-guard scan worker processes. Each scans one request at a time on its own
            core, so the proxy's event loop is never held by a scan. 0: scan in the proxy's
            own thread. The default is one less than the number of cores (at least 1, at
            most 4).
            """,
        )
        loader.add_option(
            "kanta_guard_scan_timeout",
            float,
            30.0,
            """
            Seconds a worker may take over one request; past it the request is blocked as
            unscannable and the worker replaced.
            """,
        )
        contentviews.add(KantaGuardView)

    def configure(self, updated: set[str]) -> None:
        # Both options belong to mitmproxy's proxyserver addon; absent where it is not loaded.
        if "stream_large_bodies" in updated and getattr(ctx.options, "stream_large_bodies", None):
            raise exceptions.OptionsError(
                "kanta-guard never streams request bodies past the scan: unset stream_large_bodies"
            )
        if ctx.options.kanta_guard_workers < 0:
            raise exceptions.OptionsError("kanta_guard_workers must be 0 or more")
        if ctx.options.kanta_guard_scan_timeout <= 0:
            raise exceptions.OptionsError("kanta_guard_scan_timeout must be more than 0")
        if self.scanner is not None and not updated & _OPTIONS:
            return
        try:
            policy = load_policy(ctx.options.kanta_guard_policy)
            key = load_key(policy.log.hash_key_file)
            hasher = KeyedHasher(key)
            log_path = Path(ctx.options.kanta_guard_log or policy.log.path)
            log = EventLog(log_path, max_bytes=policy.log.max_bytes, backups=policy.log.backups)
        except PolicyError as exc:
            raise exceptions.OptionsError(f"kanta-guard: {exc}") from exc
        if self.log is not None:
            self.log.close()
        if self.workers is not None:
            self.workers.close()
        self.policy, self.scanner, self.log = policy, Scanner(policy, hasher), log
        count = ctx.options.kanta_guard_workers
        self.workers = (
            WorkerPool(policy, key, count, ctx.options.kanta_guard_scan_timeout) if count else None
        )
        # A hard backstop: bodies far beyond the scan limit are refused before being buffered.
        backstop = 2 * policy.limits.max_body_bytes
        if getattr(ctx.options, "body_size_limit", "unset") is None:
            ctx.options.update(body_size_limit=str(backstop))
        logger.info("kanta-guard: policy %s, log %s", policy.source, log_path)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Never stream: the body must be read whole before anything reaches the upstream.
        flow.request.stream = False

    async def running(self) -> None:
        # Workers start with the proxy, so that the first requests do not wait for them.
        if self.workers is not None:
            await self.workers.start()

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or self.scanner is None:
            return
        request = flow_request(flow)
        try:
            if self.workers is not None and not _small(request):
                report = await self.workers.scan(request)
            else:
                report = self.scanner.scan(request)
        except Exception as exc:
            # Never forward what was not scanned: an error here blocks the request (an addon
            # exception would otherwise only be logged, and the flow would go on upstream).
            logger.exception("kanta-guard: the scan failed")
            report = unscannable_report(
                request, f"internal error in the scan: {type(exc).__name__}"
            )
        flow.metadata[METADATA_KEY] = report.as_dict()
        if report.verdict is Verdict.PASS:
            return
        self._record(flow, report)
        if report.verdict is Verdict.WARN:
            flow.marked = MARK_WARNED
            flow.comment = _comment(report)
            return
        answer = blocked_answer(report, request_id=flow.id)
        flow.response = http.Response.make(
            answer.status, answer.body, [(k.encode(), v.encode()) for k, v in answer.headers]
        )
        flow.marked = MARK_BLOCKED
        flow.comment = _comment(report)
        self._redact(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        """A body over mitmproxy's body_size_limit never reached the scan: log it as blocked."""
        if flow.error is None or "body_size_limit" not in flow.error.msg or self.log is None:
            return
        if METADATA_KEY in flow.metadata:
            return
        report = unscannable_report(
            flow_request(flow),
            "too large: body exceeds the proxy's body_size_limit; refused unread",
        )
        flow.metadata[METADATA_KEY] = report.as_dict()
        flow.marked = MARK_BLOCKED
        flow.comment = _comment(report)
        self._record(flow, report)

    def done(self) -> None:
        if self.workers is not None:
            self.workers.close()
        if self.log is not None:
            self.log.close()

    def _record(self, flow: http.HTTPFlow, report: Report) -> None:
        assert self.log is not None
        client = flow.client_conn.peername
        record = make_record(
            report,
            flow_id=flow.id,
            client=f"{client[0]}:{client[1]}" if client else None,
            method=flow.request.method,
            host=flow.request.pretty_host,
            path=flow.request.path,
        )
        self.log.write(record)
        logger.warning(
            "kanta-guard %s %s %s: %s",
            report.verdict,
            flow.request.method,
            record["path"],
            ", ".join(report.rules),
        )

    def _redact(self, flow: http.HTTPFlow) -> None:
        """Mask identity codes in a blocked request, so mitmweb and flow files never show them.

        The upstream never sees this request; what remains is for the tester to read. Where
        masking the decoded body cannot be shown to remove every finding (a code inside Base64 or
        a compressed layer), the body is withheld entirely.
        """
        assert self.scanner is not None
        req = flow.request
        req.path = mask_text(unquote(req.path, errors="replace"))
        for name in set(req.headers.keys()):
            values = req.headers.get_all(name)
            req.headers.set_all(name, [mask_text(v) for v in values])
        try:
            body = decode_content(
                req.raw_content or b"",
                req.headers.get("content-encoding"),
                max_size=self.scanner.policy.limits.max_decoded_bytes,
            )
        except UnscannableError:
            body = b""
        req.headers.pop("content-encoding", None)
        req.content = mask_text(body.decode("latin-1")).encode("latin-1")
        # Masking turns test codes in identity fields into "malformed" ones; what matters is
        # whether a real code is still readable anywhere (inside Base64, say).
        try:
            again = self.scanner.scan(flow_request(flow))
            withhold = any(f.rule == "hetu.real" for f in again.findings)
        except Exception:
            withhold = True  # what cannot be shown clean is not kept
        if withhold:
            req.content = b""
            req.headers["x-kanta-guard-redacted"] = "body withheld: it still held blocked data"
        else:
            req.headers["x-kanta-guard-redacted"] = "identity codes masked"


class KantaGuardView(contentviews.Contentview):
    """The "kanta-guard" content view: a flow's findings, with their locations."""

    @property
    def name(self) -> str:
        return "kanta-guard"

    def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
        flow = metadata.flow
        report = flow.metadata.get(METADATA_KEY) if flow is not None else None
        if not report:
            return "kanta-guard: not scanned (no request hook ran for this flow)"
        lines = [f"kanta-guard verdict: {report['verdict']}"]
        findings = report.get("findings") or []
        if not findings:
            lines.append("no findings")
        for finding in findings:
            lines.append("")
            lines.append(f"{finding['action']:<5} {finding['rule']}  ({finding['role']})")
            lines.append(f"      at {finding['location']}")
            if finding.get("evidence"):
                lines.append(f"      evidence {finding['evidence']}  {finding['value_hash']}")
            lines.append(f"      {finding['explanation']}")
        return "\n".join(lines)

    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        flow = metadata.flow
        if flow is None or METADATA_KEY not in flow.metadata:
            return -1
        if metadata.http_message is not None and metadata.http_message is not getattr(
            flow, "request", None
        ):
            return -1
        report = flow.metadata[METADATA_KEY]
        # On a flagged request, show the findings first; on a clean one, leave the usual view.
        return 2 if report.get("findings") else -1


#: Requests whose body is at most this long, and not content-encoded, are scanned on the proxy's
#: own thread even when there are workers: a scan that small (a GET, a FHIR resource of a few KB:
#: 20-60 µs) costs less than handing the request to a worker and back (about 200 µs of the
#: proxy's CPU, measured with bench/benchmark.py), and it cannot grow (no decompression).
INLINE_BYTES = 8 * 1024


def _small(request: Request) -> bool:
    encoding = (request.header("content-encoding") or "").strip().lower()
    return len(request.body) <= INLINE_BYTES and encoding in ("", "identity")


def _default_workers() -> int:
    """One core for the proxy's own thread, the others (up to 4) for scans; at least one."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def run_tool(tool: str, args: Sequence[str]) -> int:
    """Run mitmdump or mitmweb in this process with the given arguments."""
    from mitmproxy.tools import main

    entry = {"mitmdump": main.mitmdump, "mitmweb": main.mitmweb}[tool]
    result = entry(list(args))
    return int(result or 0)
