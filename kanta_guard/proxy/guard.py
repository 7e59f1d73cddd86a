"""The HTTP guard: judges every request as it will leave the proxy, and stops what it must.

mitmproxy's addon style: options declared in ``load``, re-read in ``configure`` (a bad value is an
``OptionsError``: at start-up the proxy does not start), hooks that open with a guard clause.
Every way out of a hook ends in a decision: a request is forwarded only when the guard is ready,
has read it whole and judged it clean (or merely warned, with the warning on record).

The guard runs last in the addon chain (:mod:`kanta_guard.proxy.launch` puts it there), so what it
judges is what leaves: mitmproxy's ``modify_body``, ``modify_headers``, ``map_remote``,
``stickycookie``, interception edits and user scripts have all run before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mitmproxy import contentviews, ctx, exceptions, http

from ..errors import PolicyError
from ..eventlog import EventLog, make_event
from ..idcode import mask_text
from ..masking import KeyedHasher, load_key
from ..model import Report, Request, Verdict
from ..pipeline import Scanner, protocol_of, unscannable_report
from ..policy import Policy, TestingMode, load_policy, weakenings
from ..refusals import refusal, refused_report, unavailable_report, with_findings
from ..registry import RegistryError, load_registry
from ..rules import REFUSED
from ..worker import WorkerPool
from .flows import COUNTED_PASS, METADATA_KEY, flow_request, mark, record_flow
from .redact import redact_request
from .refuse import answer_of
from .state import GuardState
from .view import KantaGuardView

__all__ = ["INLINE_BYTES", "OPTIONS", "HttpGuard", "default_workers"]

logger = logging.getLogger("kanta_guard")

#: The guard's own options: a change to any of them rebuilds the scanner, log and workers.
OPTIONS = frozenset(
    {
        "kanta_guard_policy",
        "kanta_guard_log",
        "kanta_guard_workers",
        "kanta_guard_scan_timeout",
        "kanta_guard_registry",
        "kanta_guard_mode",
        "kanta_guard_case",
    }
)
#: How often the registry file is looked at for changes (seconds).
REGISTRY_POLL = 1.0
#: The testing-mode option's values: as the policy says, or one of the two modes.
MODES = ("policy", "independent", "joint")

#: Requests whose body is at most this long, and not content-encoded, are scanned on the proxy's
#: own thread even when there are workers: a scan that small (a GET, a FHIR resource of a few KB:
#: 20-60 µs) costs less than handing the request to a worker and back (about 200 µs of the
#: proxy's CPU, measured with bench/benchmark.py), and it cannot grow (no decompression).
INLINE_BYTES = 8 * 1024

#: Addons that, placed after the guard, change requests when their option is set.
_MODIFIERS = {
    "mapremote": "map_remote",
    "modifybody": "modify_body",
    "modifyheaders": "modify_headers",
    "stickyauth": "stickyauth",
    "stickycookie": "stickycookie",
    "intercept": "intercept",
}
#: Addons with request hooks that never change a request that goes upstream: they record it,
#: show it, or answer it themselves (then nothing goes upstream).
_INERT = frozenset(
    {
        "save",
        "savehar",
        "dumper",
        "view",
        "eventstore",
        "serverplayback",
        "maplocal",
        "upstreamauth",
        "keepserving",
        "readfilestdin",
        "errorcheck",
        "termlog",
        "status",
        "connectionguard",
        "redactor",
        "disableh2c",
        "tlsconfig",  # answers requests for its CRL itself
        "onboarding",  # answers mitm.it itself
    }
)


def default_workers() -> int:
    """One core for the proxy's own thread, the others (up to 4) for scans; at least one."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class HttpGuard:
    """Scans every HTTP request (and CONNECT) and blocks, warns or passes it under the policy."""

    def __init__(self, state: GuardState, settings: Mapping[str, Any] | None = None) -> None:
        self.state = state
        #: Option values the launcher read from the command line: the options' defaults, so
        #: that the guard is configured from the start (mitmproxy configures an addon that is not
        #: a script only when an option changes).
        self.settings = dict(settings or {})
        self._running = False
        self._workers_wanted: tuple[int, float] | None = None
        self._watcher: asyncio.Task[None] | None = None

    # -- options --------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        settings = self.settings
        loader.add_option(
            "kanta_guard_policy",
            str,
            str(settings.get("kanta_guard_policy", "")),
            """
            kanta-guard policy file (TOML). Empty: the embedded default policy, which blocks
            every real-range personal identity code and everything it cannot read. Changed at
            run time, a policy that enforces less than the active one is refused unless the
            active one says [runtime] allow_weakening = true.
            """,
        )
        loader.add_option(
            "kanta_guard_log",
            str,
            str(settings.get("kanta_guard_log", "")),
            """
            Blocked-request log (JSON Lines), overriding the policy's log.path.
            """,
        )
        loader.add_option(
            "kanta_guard_workers",
            int,
            int(settings.get("kanta_guard_workers", default_workers())),
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
            float(settings.get("kanta_guard_scan_timeout", 30.0)),
            """
            Seconds a worker may take over one request; past it the request is blocked as
            unscannable and the worker replaced.
            """,
        )
        contentviews.add(KantaGuardView)
        loader.add_option(
            "kanta_guard_registry",
            str,
            str(settings.get("kanta_guard_registry", "")),
            """
            Registry of test identities (TOML or CSV), overriding the policy's [registry] file.
            Reloaded when it changes; a bad new version is refused and the last good one stays.
            """,
        )
        loader.add_option(
            "kanta_guard_mode",
            str,
            str(settings.get("kanta_guard_mode", "policy")),
            """
            Testing mode: independent, or joint (with kanta_guard_case); "policy": as the
            policy's [testing] says. A request is judged under one mode, never a mix.
            """,
            choices=MODES,
        )
        loader.add_option(
            "kanta_guard_case",
            str,
            str(settings.get("kanta_guard_case", "")),
            "Test case id of joint testing (the cases the joint codes were requested for).",
        )
        if self.settings:
            # Launched by kanta-guard run/web: configure now, before the proxy listens.
            try:
                self._apply()
            except exceptions.OptionsError as exc:
                self.state.config_error = str(exc)
                logger.error("%s", exc)

    def configure(self, updated: set[str]) -> None:
        if "kanta_guard_workers" in updated and ctx.options.kanta_guard_workers < 0:
            raise exceptions.OptionsError("kanta-guard: kanta_guard_workers must be 0 or more")
        if "kanta_guard_scan_timeout" in updated and ctx.options.kanta_guard_scan_timeout <= 0:
            raise exceptions.OptionsError(
                "kanta-guard: kanta_guard_scan_timeout must be more than 0"
            )
        if self._running and updated & set(_MODIFIERS.values()):
            self._check_order()
        if self.state.policy is not None and not updated & OPTIONS:
            return
        self._apply()

    def _apply(self, reload_registry: bool = False) -> None:
        """Build (or rebuild) the policy, scanner, log and workers from the options.

        Nothing is swapped in until all of it is built; at run time, a policy weaker than the
        active one is refused unless the active one allows it.
        """
        state, options = self.state, ctx.options
        try:
            policy = _configured_policy(options)
            key = load_key(policy.log.hash_key_file)
            hasher = KeyedHasher(key)
            registry, stamp = state.registry, state.registry_stamp
            if policy.registry is None:
                registry, stamp = None, None
            elif registry is None or registry.path != policy.registry or reload_registry:
                stamp = _stamp(policy.registry)
                registry = load_registry(policy.registry)
            # (Built here: its detectors read the trust anchors, which may fail.)
            scanner = Scanner(policy, hasher, registry=registry)
        except (PolicyError, RegistryError) as exc:
            raise exceptions.OptionsError(f"kanta-guard: {mask_text(str(exc))}") from exc
        old = state.policy
        if self._running and old is not None:
            weaker = weakenings(old, policy)
            if weaker and not old.runtime.allow_weakening:
                raise exceptions.OptionsError(
                    "kanta-guard: refused: the policy "
                    f"{mask_text(policy.source)} enforces less than the active one "
                    f"({'; '.join(weaker)}), and the active policy {mask_text(old.source)} does "
                    "not allow that at run time ([runtime] allow_weakening = true)"
                )
        log_path = Path(options.kanta_guard_log or policy.log.path)
        unchanged = (
            old is not None
            and state.log is not None
            and policy.digest == old.digest
            and policy.source == old.source
            and registry is state.registry
            and state.log.path == log_path
            and self._workers_wanted
            == (options.kanta_guard_workers, options.kanta_guard_scan_timeout)
        )
        if unchanged:
            return  # the same configuration again (a rolled-back change re-sets the old value)
        log = state.log
        if log is None or log.path != log_path or (old is not None and old.log != policy.log):
            try:
                log = EventLog(log_path, max_bytes=policy.log.max_bytes, backups=policy.log.backups)
            except PolicyError as exc:
                raise exceptions.OptionsError(f"kanta-guard: {exc}") from exc
        count = options.kanta_guard_workers
        workers = (
            WorkerPool(
                policy,
                key,
                count,
                options.kanta_guard_scan_timeout,
                registry,
                on_restart=state.stats.worker_restarted,
            )
            if count
            else None
        )
        if state.log is not None and state.log is not log:
            state.log.close()
            state.log_error = state.rotation_error = None  # a new log: its health is unknown
        if state.workers is not None:
            state.workers.retire()  # scans in progress finish under the old configuration
        state.policy, state.scanner = policy, scanner
        state.registry, state.registry_stamp = registry, stamp
        state.log, state.workers, state.config_error = log, workers, None
        self._workers_wanted = (count, options.kanta_guard_scan_timeout)
        # A hard backstop: bodies far beyond the scan limit are refused before being buffered.
        backstop = 2 * policy.limits.max_body_bytes
        if getattr(options, "body_size_limit", "unset") is None:
            options.update(body_size_limit=str(backstop))
        if self._running:
            self._announce("change")
            if workers is not None:
                ctx.master.event_loop.create_task(workers.start())

    def _announce(self, change: str) -> None:
        """The active policy, in the log and in mitmproxy's event log (mitmweb shows it)."""
        state = self.state
        policy = state.policy
        assert policy is not None and state.log is not None
        state.write(
            make_event(
                "policy",
                change=change,
                source=policy.source,
                digest=policy.digest,
                rules={rule: str(action) for rule, action in policy.actions.items()},
                log=str(state.log.path),
                registry=str(policy.registry or ""),
                registry_digest=state.registry.digest if state.registry else "",
                identities=len(state.registry) if state.registry else 0,
                mode=str(policy.testing),
            )
        )
        registry = state.registry
        logger.warning(
            "kanta-guard: %s policy %s %s, log %s, %s, testing mode %s",
            "active" if change == "start" else "changed to",
            mask_text(policy.source),
            policy.digest,
            mask_text(str(state.log.path)),
            f"registry {mask_text(str(registry.path))} ({len(registry)} test identities)"
            if registry is not None
            else "no registry of test identities",
            policy.testing,
        )

    async def _watch_registry(self) -> None:
        """Reload the registry when its file changes; a bad version is refused, the last good
        one staying in force (and saying so)."""
        while self._running:
            await asyncio.sleep(REGISTRY_POLL)
            state = self.state
            policy = state.policy
            if policy is None or policy.registry is None:
                continue
            stamp = _stamp(policy.registry)
            if stamp == state.registry_stamp:
                continue
            try:
                self._apply(reload_registry=True)
            except exceptions.OptionsError as exc:
                state.registry_stamp = stamp  # reported once per version
                logger.error(
                    "%s; the registry in force stays (%s test identities)",
                    exc,
                    len(state.registry) if state.registry else 0,
                )
                state.write(make_event("registry", change="refused", reason=str(exc)))
            else:
                state.write(make_event("registry", change="reloaded"))

    def _check_order(self) -> None:
        """Refuse to run where an addon after the guard could change what it judged."""
        after = _addons_after(self)
        changing = sorted(
            name
            for name in after
            if name not in _INERT
            and (name not in _MODIFIERS or getattr(ctx.options, _MODIFIERS[name], None))
        )
        if changing:
            raise exceptions.OptionsError(
                "kanta-guard: addons that can change a request run after the guard here ("
                + ", ".join(changing)
                + "): what they change would go upstream unjudged. Start the guard with "
                "`kanta-guard run` (it judges last), or leave them out."
            )

    async def running(self) -> None:
        if self.state.policy is None:
            try:
                self._apply()
            except exceptions.OptionsError as exc:
                self.state.config_error = str(exc)
        if self.state.policy is None:
            # An error logged during start-up ends mitmproxy (its errorcheck addon), with this
            # message; until then the guard refuses everything.
            logger.error(
                "kanta-guard: not configured, refusing all traffic: %s", self.state.config_error
            )
            return
        try:
            self._check_order()
        except exceptions.OptionsError as exc:
            self.state.config_error = str(exc)
            self.state.policy = None
            logger.error("%s", exc)
            return
        self._running = True
        self.state.starting = True
        try:
            self._announce("start")
        finally:
            self.state.starting = False
        # (A reference kept: the event loop holds only a weak one to its tasks.)
        self._watcher = asyncio.get_running_loop().create_task(self._watch_registry())
        if self.state.workers is not None:
            # Workers start with the proxy, so that the first requests do not wait for them.
            await self.state.workers.start()

    def done(self) -> None:
        state = self.state
        if state.workers is not None:
            state.workers.close()
        if state.log is not None:
            state.log.close()

    # -- hooks ----------------------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Never stream: the body must be read whole before anything reaches the upstream. (Last
        # in the chain, this overrides any addon that asked for streaming.)
        flow.request.stream = False

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """A CONNECT request: its authority and headers are judged before the tunnel opens."""
        if flow.response is not None or flow.error is not None:
            return
        try:
            request = flow_request(flow)
            report = self._ready_or_refused(request)
            if report is None:
                assert self.state.scanner is not None
                report = self.state.scanner.scan(request)
        except Exception as exc:
            logger.exception("kanta-guard: the scan of a CONNECT request failed")
            report = _internal_error(flow, exc)
        self._decide(flow, report)

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.error is not None or not flow.live:
            # Answered already by the proxy itself (nothing goes upstream), failed, or a flow
            # loaded from a file that is not being sent.
            return
        try:
            report = await self._judge(flow)
        except Exception as exc:
            # Never forward what was not scanned: an error here blocks the request (an addon
            # exception would otherwise only be logged, and the flow would go on upstream).
            logger.exception("kanta-guard: the scan failed")
            report = _internal_error(flow, exc)
        self._decide(flow, report)

    def response(self, flow: http.HTTPFlow) -> None:
        """A warned request's response tells the client so (``X-Kanta-Guard: warned;
        rules=…``: a test harness can fail on warnings). A server that switches protocols (101)
        would turn the connection into one the guard never reads: the switch is refused and the
        connection closed."""
        response = flow.response
        if response is None:
            return
        judged = flow.metadata.get(METADATA_KEY)
        if isinstance(judged, dict) and judged.get("verdict") == "warn":
            rules = judged.get("rules")
            listed = ",".join(str(r) for r in rules) if isinstance(rules, list) else ""
            response.headers["X-Kanta-Guard"] = f"warned; rules={mask_text(listed)}"
        if response.status_code != 101:
            return
        report = refused_report(
            "the server switched protocols (101"
            + (
                f", {response.headers.get('upgrade', '')!s}"
                if "upgrade" in response.headers
                else ""
            )
            + "); kanta-guard reads only HTTP, so the connection is closed",
            location="response:status",
        )
        try:
            self._record(flow, report)
            mark(flow, report)
        finally:
            answer = answer_of(flow, report)
            answer.status_code = 502
            answer.headers["connection"] = "close"
            flow.response = answer
            flow.websocket = None

    def error(self, flow: http.HTTPFlow) -> None:
        """A body over mitmproxy's body_size_limit never reached the scan: log it as blocked."""
        if flow.error is None or "body_size_limit" not in flow.error.msg:
            return
        if flow.marked or flow.request is None:
            return
        report = unscannable_report(
            flow_request(flow),
            "too large: body exceeds the proxy's body_size_limit; refused unread",
        )
        mark(flow, report)
        self._record(flow, report)

    # -- deciding -------------------------------------------------------------------------------

    def _ready_or_refused(self, request: Request) -> Report | None:
        """A refusal while the guard cannot judge (no policy, a log it cannot write); else None."""
        state = self.state
        if state.ready:
            return None
        if state.policy is not None and state.log_error is not None and state.probe():
            return None
        return unavailable_report(state.why_not_ready(), protocol_of(request))

    async def _judge(self, flow: http.HTTPFlow) -> Report:
        _frame(flow)
        request = flow_request(flow)
        report = self._ready_or_refused(request)
        if report is not None:
            return report
        state = self.state
        assert state.scanner is not None
        started = time.perf_counter()
        if state.workers is not None and not _small(request):
            report = await state.workers.scan(request)
        else:
            report = state.scanner.scan(request)
        state.stats.scanned(time.perf_counter() - started)
        return with_findings(report, *_refusals(flow))

    def _decide(self, flow: http.HTTPFlow, report: Report) -> None:
        """Act on a verdict. The answer is set before anything else is tried, and no later
        failure (marking, the log, redaction) can undo it."""
        if report.verdict is Verdict.BLOCK:
            flow.response = answer_of(flow, report)
        try:
            mark(flow, report)
        except Exception:
            logger.exception("kanta-guard: could not mark the flow")
        if report.verdict is Verdict.PASS:
            # Counted once per request: warns and blocks from their log record, and a CONNECT
            # that opens a tunnel not at all (the requests inside it are counted).
            if flow.request.method != "CONNECT":
                self.state.stats.passed()
                flow.metadata[COUNTED_PASS] = True
            return
        written = self._record(flow, report)
        if report.verdict is Verdict.WARN:
            policy = self.state.policy
            if not written and (policy is None or policy.log.required):
                # A warned request goes upstream only with its record: without one, it stops.
                report = unavailable_report(self.state.why_not_ready(), report.protocol)
                flow.response = answer_of(flow, report)
                mark(flow, report)
            else:
                return
        try:
            redact_request(flow, self.state.scanner)
        except Exception:  # redact_request withholds on its own errors; this is the last net
            logger.exception("kanta-guard: redaction failed; the request's body is dropped")
            flow.request.content = b""

    def _record(self, flow: http.HTTPFlow, report: Report) -> bool:
        return record_flow(self.state, report, flow)


# -- helpers -----------------------------------------------------------------------------------


def _internal_error(flow: http.HTTPFlow, exc: BaseException) -> Report:
    try:
        request = flow_request(flow)
    except Exception:
        request = Request(method="", target="")
    return unscannable_report(request, f"internal error in the scan: {type(exc).__name__}")


def _frame(flow: http.HTTPFlow) -> None:
    """Give an HTTP/2 or HTTP/3 request with a body its length.

    Such a request may come without ``content-length`` (the stream's end frames it). mitmproxy
    turns it into HTTP/1.1 for an HTTP/1.1 server as it is: without a length, the server reads no
    body, and reads the body as the next request (a second request, never scanned). With the
    length the body is framed for any server; for an HTTP/2 server it is the same length the
    stream carries (RFC 9113 §8.1.1).
    """
    req = flow.request
    if not (req.is_http2 or req.is_http3):
        return
    if "content-length" in req.headers or "transfer-encoding" in req.headers:
        return
    body = req.raw_content or b""
    if body:
        req.headers["content-length"] = str(len(body))


def _refusals(flow: http.HTTPFlow) -> list[Any]:
    """Parts of a request that would take it where the guard does not read."""
    req = flow.request
    found = []
    if "upgrade" in req.headers:
        found.append(
            refusal(
                REFUSED,
                "a protocol upgrade was asked for (Upgrade: "
                f"{req.headers.get('upgrade', '')[:40]}); kanta-guard reads only HTTP, so "
                "WebSocket and other upgrades are refused",
                "header:Upgrade",
            )
        )
    if req.trailers:
        server = flow.server_conn
        h2_through = req.is_http2 and server is not None and server.alpn == b"h2"
        if not h2_through:
            found.append(
                refusal(
                    REFUSED,
                    "the request has trailers, which mitmproxy cannot pass on to an HTTP/1.1 "
                    "server intact; send the fields as headers",
                    "trailers",
                )
            )
    return found


def _small(request: Request) -> bool:
    """Whether the whole request (head and body) is small enough to scan on the proxy's thread.

    The head counts too: an 8 KB header is as much to read as an 8 KB body.
    """
    encoding = (request.header("content-encoding") or "").strip().lower()
    if encoding not in ("", "identity"):
        return False
    size = len(request.body) + len(request.target) + len(request.authority)
    for name, value in request.headers:
        size += len(name) + len(value)
        if size > INLINE_BYTES:
            return False
    for name, value in request.trailers:
        size += len(name) + len(value)
    return size <= INLINE_BYTES


def _addons_after(addon: object) -> list[str]:
    """Names of the addons with request hooks that run after ``addon`` in the chain."""
    from mitmproxy.addonmanager import traverse

    names: list[str] = []
    seen = False
    for item in traverse(ctx.master.addons.chain):
        if item is addon:
            seen = True
            continue
        if seen and any(
            callable(getattr(item, hook, None))
            for hook in ("request", "requestheaders", "http_connect")
        ):
            names.append(str(getattr(item, "name", type(item).__name__.lower())))
    return names


def _configured_policy(options: Any) -> Policy:
    """The policy file's policy, with the registry and testing mode the options set."""
    policy = load_policy(options.kanta_guard_policy)
    if options.kanta_guard_registry:
        policy = policy.with_registry(Path(options.kanta_guard_registry).expanduser())
    mode = options.kanta_guard_mode
    if mode != "policy" or options.kanta_guard_case:
        if mode == "policy":
            mode = "joint" if policy.testing.joint else "independent"
        case = (options.kanta_guard_case or policy.testing.case) if mode == "joint" else ""
        policy = policy.with_testing(TestingMode.parse(mode, case, "kanta_guard_mode"))
    return policy


def _stamp(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of a file, None if it cannot be read: a change of either is a new version."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
