"""The DIMSE guard: DICOM associations to configured archives, each data set judged before it
goes on.

In front of an archive's DICOM port the proxy runs in ``reverse:tcp://host:port`` mode (or
``reverse:tls://``), and the option ``kanta_guard_dicom`` names the ``host:port`` upstreams that
speak DICOM. For those connections only, this addon reads both directions of the raw TCP relay
with :class:`~kanta_guard.dimse.relay.Relay` (every other raw TCP stays refused by the connection
guard):

- in ``tcp_message`` the message's bytes go to the relay and the message is emptied; what the
  relay lets go now is put back in it (whole PDUs); a data set with its command is held until it
  is complete, then judged with ``Scanner.scan_bytes(data, "application/dicom;
  transfer-syntax=<uid>")`` off the event loop (the HTTP guard's worker processes, or a thread
  when there are none; a data set of a few KiB, a C-FIND identifier, is judged at once);
- a data set that passes is released with mitmproxy's ``inject.tcp`` command, as the PDUs the
  client sent; an injected message passes the ``tcp_message`` hook again, and is known by being
  the next release awaited in its direction (until it has passed, later bytes from that side
  wait behind it, so that nothing overtakes a release);
- a blocked one is dropped, and the client gets the request's failure response (0xC000 and an
  Error Comment naming the rules: :mod:`~kanta_guard.dimse.commands`), injected toward it; the
  archive never sees the data set nor its command. What cannot be answered so aborts the
  association both ways;
- a scan that fails or times out blocks; so does a guard that is not ready (a new association is
  then rejected, "temporary congestion", before the archive hears of it);
- each block is written to the blocked-request log (masked findings, :mod:`kanta_guard.eventlog`)
  and shown on the TCP flow in mitmweb (mark and comment, with a count of the data sets blocked).

Memory per association is bounded by the relay's limits (the policy's ``limits.max_body_bytes``
per data set, nothing spooled to disk) and by keeping only the last :data:`KEEP_MESSAGES`
messages on the flow (mitmproxy keeps every message of a TCP flow otherwise).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import ctx, exceptions, tcp
from mitmproxy.proxy.mode_specs import ProxyMode, ReverseMode

from ..dimse.pdu import AssociateRQ
from ..dimse.relay import DataSet, Limits, Output, Refusal, Relay
from ..idcode import mask_text
from ..model import Protocol, Report, Request, Verdict
from ..pipeline import unscannable_report
from ..refusals import refused_report, unavailable_report
from .flows import MARK_BLOCKED, MARK_WARNED, METADATA_KEY, client_address, comment, record
from .state import GuardState

__all__ = [
    "DIMSE_KEY",
    "INLINE_BYTES",
    "KEEP_MESSAGES",
    "OPTION",
    "DimseGuard",
    "dicom_mode",
    "dicom_stack",
    "parse_upstreams",
    "upstreams_of",
]

logger = logging.getLogger("kanta_guard")

#: The option naming the DICOM upstreams (``host:port``, repeatable).
OPTION = "kanta_guard_dicom"
#: ``flow.metadata`` key on every TCP flow this addon relays (the connection guard's backstop
#: leaves such flows to it): the association's counts as plain data.
DIMSE_KEY = "kanta_guard_dimse"
#: Data sets at most this long are judged on the proxy's own thread (a C-FIND identifier, a
#: storage commitment request: tens of microseconds, less than a hand-over).
INLINE_BYTES = 8 * 1024
#: Messages kept on a DICOM flow (mitmweb shows them); older ones are dropped from memory.
KEEP_MESSAGES = 8
#: Bytes a side may send while a release toward the other is still on its way; more aborts.
_BACKLOG_BYTES = 4 * 2**20

_TLS_LAYERS = frozenset(
    {
        "mitmproxy.proxy.layers.tls.ClientTLSLayer",
        "mitmproxy.proxy.layers.tls.ServerTLSLayer",
    }
)
_TCP_LAYER = "mitmproxy.proxy.layers.tcp.TCPLayer"

type Upstream = tuple[str, int]


# -- which connections are DICOM ------------------------------------------------------------------


def parse_upstreams(values: Iterable[str]) -> frozenset[Upstream]:
    """The ``host:port`` values of the option (``[v6]:port`` for IPv6); ValueError names a bad
    one."""
    found: set[Upstream] = set()
    for value in values:
        text = value.strip()
        host, sep, port = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{mask_text(text)!r} is not host:port")
        found.add((host.lower(), int(port)))
    return frozenset(found)


def upstreams_of(options: Any) -> frozenset[Upstream]:
    """The DICOM upstreams the options name (none when the option is not declared)."""
    try:
        return parse_upstreams(getattr(options, OPTION, ()) or ())
    except ValueError:
        return frozenset()  # configure() refuses the value; until then nothing is DICOM


def _dicom(mode: object, upstreams: frozenset[Upstream]) -> bool:
    if not isinstance(mode, ReverseMode) or mode.scheme not in ("tcp", "tls"):
        return False
    host, port = mode.address
    return (host.lower(), port) in upstreams


def dicom_mode(spec: str, upstreams: frozenset[Upstream]) -> bool:
    """Whether a proxy mode spec is ``reverse:tcp://`` or ``reverse:tls://`` to a configured
    DICOM upstream (the connection guard admits those modes)."""
    try:
        return _dicom(ProxyMode.parse(spec), upstreams)
    except ValueError:
        return False


def dicom_stack(top: object, mode: object, upstreams: frozenset[Upstream]) -> bool:
    """Whether a chosen layer stack is one this addon reads: a reverse tcp/tls mode to a
    configured DICOM upstream, TLS layers only, then mitmproxy's TCP layer with a flow (an
    ignored connection has none: its messages would pass no hook)."""
    if not _dicom(mode, upstreams):
        return False
    item: object | None = top
    while item is not None:
        cls = type(item)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name == _TCP_LAYER:
            return getattr(item, "flow", None) is not None
        if name not in _TLS_LAYERS:
            return False
        item = getattr(item, "child_layer", None)
    return False


# -- the addon ------------------------------------------------------------------------------------


#: The User Identity Negotiation sub-item of an A-ASSOCIATE-RQ (PS3.7 D.3.3.7).
_USER_IDENTITY = 0x58


@dataclass(eq=False)
class _Association:
    """One DICOM flow: its relay, the releases on their way, what waits behind them."""

    flow: tcp.TCPFlow
    relay: Relay
    #: Injected messages not yet seen in the hook, by the side they appear to come from
    #: (True: from the client, toward the server).
    inflight: dict[bool, deque[bytes]] = field(
        default_factory=lambda: {True: deque(), False: deque()}
    )
    #: Bytes a side sent while a release in its direction was on its way.
    backlog: dict[bool, list[bytes]] = field(default_factory=lambda: {True: [], False: []})
    backlog_bytes: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    passed: int = 0
    warned: int = 0
    blocked: int = 0
    #: The A-ASSOCIATE-RQ itself was blocked (and recorded as such): its rejection needs no
    #: record of its own.
    request_refused: bool = False

    def counts(self) -> dict[str, int]:
        return {"passed": self.passed, "warned": self.warned, "blocked": self.blocked}


class DimseGuard:
    """Reads DICOM associations to the configured upstreams; judges every data set."""

    def __init__(self, state: GuardState, settings: Mapping[str, Any] | None = None) -> None:
        self.state = state
        self.settings = dict(settings or {})
        self.upstreams: frozenset[Upstream] = frozenset()
        self._associations: dict[str, _Association] = {}

    # -- options --------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        given = self.settings.get(OPTION, [])
        values = [given] if isinstance(given, str) else list(given)
        loader.add_option(
            OPTION,
            Sequence[str],
            values,
            """
            DICOM upstreams (host:port) the guard reads as DIMSE, in reverse:tcp:// or
            reverse:tls:// mode: each data set (C-STORE, C-FIND and C-MOVE identifiers,
            N-ACTION storage commitment) is judged before it goes on; a blocked C-STORE is
            answered with a failure status and never reaches the archive. Raw TCP to any other
            host stays refused.
            """,
        )
        if values:
            # Launched by kanta-guard run/web with the value as the default: read it now (an
            # error logged during start-up ends mitmproxy, as the HTTP guard's do).
            try:
                self.upstreams = parse_upstreams(values)
            except ValueError as exc:
                logger.error("kanta-guard: %s: %s", OPTION, exc)

    def configure(self, updated: set[str]) -> None:
        if OPTION not in updated:
            return
        try:
            self.upstreams = parse_upstreams(ctx.options.kanta_guard_dicom)
        except ValueError as exc:
            raise exceptions.OptionsError(f"kanta-guard: {OPTION}: {exc}") from exc

    def done(self) -> None:
        for association in list(self._associations.values()):
            self._end(association)

    # -- hooks ----------------------------------------------------------------------------------

    def tcp_start(self, f: tcp.TCPFlow) -> None:
        if not _dicom(getattr(f.client_conn, "proxy_mode", None), self.upstreams):
            return
        policy = self.state.policy
        limits = Limits(max_data_set=policy.limits.max_body_bytes) if policy else Limits()
        association = _Association(f, Relay(limits))
        association.relay = Relay(limits, functools.partial(self._admit, association))
        self._associations[f.id] = association
        f.metadata[DIMSE_KEY] = {"passed": 0, "warned": 0, "blocked": 0}

    def tcp_message(self, f: tcp.TCPFlow) -> None:
        association = self._associations.get(f.id)
        if association is None or not f.messages:
            return
        message = f.messages[-1]
        side = message.from_client
        inflight = association.inflight[side]
        try:
            if inflight and message.content == inflight[0]:
                # A release of ours coming round again: it goes on as it is, and what waited
                # behind it is read now.
                inflight.popleft()
                if not inflight and association.backlog[side]:
                    waiting = b"".join(association.backlog[side])
                    association.backlog[side].clear()
                    association.backlog_bytes -= len(waiting)
                    self._apply(association, self._feed(association, side, waiting), message)
                return
            data, message.content = message.content, b""
            if inflight:
                association.backlog[side].append(data)
                association.backlog_bytes += len(data)
                if association.backlog_bytes > _BACKLOG_BYTES:
                    self._apply(association, association.relay.abort("too much data queued"), None)
                return
            self._apply(association, self._feed(association, side, data), message)
        except Exception:
            # A bug here must not relay what was not read: the association ends.
            logger.exception("kanta-guard: the DIMSE relay failed; the association is aborted")
            message.content = b""
            try:
                self._apply(association, association.relay.abort("internal error"), None)
            except Exception:
                logger.exception("kanta-guard: could not abort the DICOM association")
                association.relay.close()  # nothing more is relayed either way
        finally:
            if len(f.messages) > KEEP_MESSAGES:
                del f.messages[: len(f.messages) - KEEP_MESSAGES]

    def tcp_end(self, f: tcp.TCPFlow) -> None:
        association = self._associations.get(f.id)
        if association is not None:
            self._end(association)

    def tcp_error(self, f: tcp.TCPFlow) -> None:
        self.tcp_end(f)

    # -- relaying -------------------------------------------------------------------------------

    @staticmethod
    def _feed(association: _Association, from_client: bool, data: bytes) -> Output:
        relay = association.relay
        return relay.from_client(data) if from_client else relay.from_server(data)

    def _apply(self, association: _Association, out: Output, message: Any) -> None:
        """Send what the relay let go, judge what it holds, record what it refused.

        Bytes for the hook's own direction go into the hook's message while no release is on
        its way in that direction; everything else is injected, in order.
        """
        relay = association.relay
        later: list[DataSet] = []
        for data_set in out.judge:
            if len(data_set.data) <= INLINE_BYTES:
                report = self._scan_inline(data_set)
                decided = relay.decide(
                    data_set.ticket, self._verdict(association, data_set, report)
                )
                out.to_server += decided.to_server
                out.to_client += decided.to_client
                out.refusals += decided.refusals
            else:
                later.append(data_set)
        self._send(association, True, out.to_server, message)
        self._send(association, False, out.to_client, message)
        for refusal in out.refusals:
            self._refused(association, refusal)
        if relay.closed:
            return
        for data_set in later:
            task = asyncio.get_running_loop().create_task(self._judge(association, data_set))
            association.tasks.add(task)
            task.add_done_callback(association.tasks.discard)

    def _send(
        self, association: _Association, from_client: bool, chunks: list[bytes], message: Any
    ) -> None:
        if not chunks:
            return
        data = b"".join(chunks)
        inflight = association.inflight[from_client]
        if message is not None and message.from_client == from_client and not inflight:
            message.content += data
            return
        inflight.append(data)
        ctx.master.commands.call("inject.tcp", association.flow, not from_client, data)

    def _end(self, association: _Association) -> None:
        self._associations.pop(association.flow.id, None)
        association.relay.close()
        for task in list(association.tasks):
            task.cancel()
        association.inflight[True].clear()
        association.inflight[False].clear()
        association.backlog[True].clear()
        association.backlog[False].clear()
        association.backlog_bytes = 0

    # -- judging --------------------------------------------------------------------------------

    def _admit(self, association: _Association, request: AssociateRQ) -> str | None:
        """Why a new association is refused, or None: the guard cannot judge now, or what the
        request itself carries blocks (its AE titles, implementation version and user
        information: a User Identity sub-item holds a user name, a SAML assertion or a JWT,
        PS3.7 D.3.3.7), judged as the data sets are; such a refusal is recorded here."""
        if not self._ready() or self.state.scanner is None:
            return self.state.why_not_ready()
        report = self._judge_request(request)
        if report.verdict is not Verdict.BLOCK:
            return None
        association.blocked += 1
        association.request_refused = True
        self._show(association, report)
        self._record(association, report, None)
        return "the association request carries what the policy does not allow"

    def _judge_request(self, request: AssociateRQ) -> Report:
        """The scan of an A-ASSOCIATE-RQ's texts: the AE titles and implementation version as
        lines of text, each user information sub-item's value on its own (a User Identity's
        primary and secondary fields as payloads of their own: XML, JSON or text)."""
        scanner = self.state.scanner
        assert scanner is not None
        user = request.user
        texts = [request.called_ae, request.calling_ae, user.implementation_version]
        parts = [("\n".join(texts)).encode("utf-8", "surrogateescape")]
        for kind, value in user.other:
            if kind == _USER_IDENTITY and len(value) >= 4:
                first = int.from_bytes(value[2:4])
                parts.append(value[4 : 4 + first])
                rest = value[4 + first :]
                if len(rest) >= 2:
                    parts.append(rest[2 : 2 + int.from_bytes(rest[:2])])
            else:
                parts.append(value)
        try:
            reports = [scanner.scan_bytes(part) for part in parts if part]
        except Exception as exc:
            logger.exception("kanta-guard: the scan of an association request failed")
            return _failed(f"internal error in the scan: {type(exc).__name__}")
        findings = tuple(f for r in reports for f in r.findings)
        blocked = any(r.verdict is Verdict.BLOCK for r in reports)
        return Report(
            Verdict.BLOCK if blocked else Verdict.PASS if not findings else Verdict.WARN,
            findings,
            reports[0].protocol if reports else Protocol.OTHER,
        )

    def _ready(self) -> bool:
        state = self.state
        if state.ready:
            return True
        return state.policy is not None and state.log_error is not None and state.probe()

    def _scan_inline(self, data_set: DataSet) -> Report:
        state = self.state
        if not self._ready() or state.scanner is None:
            return unavailable_report(state.why_not_ready())
        try:
            return state.scanner.scan_bytes(data_set.data, data_set.content_type)
        except Exception as exc:
            logger.exception("kanta-guard: the scan of a data set failed")
            return _failed(f"internal error in the scan: {type(exc).__name__}")

    async def _scan(self, data_set: DataSet) -> Report:
        """The verdict on a data set, off the event loop; a scan that fails or runs past the
        scan timeout blocks."""
        state = self.state
        if not self._ready() or state.scanner is None:
            return unavailable_report(state.why_not_ready())
        timeout = float(getattr(ctx.options, "kanta_guard_scan_timeout", 30.0))
        try:
            if state.workers is not None:
                # The pool scans requests: a body under its content type is what scan_bytes
                # reads (plus an empty request line and that one header, which hold nothing).
                request = Request("", "", (("content-type", data_set.content_type),), data_set.data)
                return await state.workers.scan(request)
            scanner = state.scanner
            return await asyncio.wait_for(
                asyncio.to_thread(scanner.scan_bytes, data_set.data, data_set.content_type),
                timeout,
            )
        except TimeoutError:
            logger.error("kanta-guard: the scan of a data set ran past %s s", timeout)
            return _failed(f"scan did not finish within {timeout:g} s")
        except Exception as exc:
            logger.exception("kanta-guard: the scan of a data set failed")
            return _failed(f"internal error in the scan: {type(exc).__name__}")

    async def _judge(self, association: _Association, data_set: DataSet) -> None:
        try:
            report = await self._scan(data_set)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # pragma: no cover - _scan answers its own failures
            report = _failed(f"internal error in the scan: {type(exc).__name__}")
        if association.flow.id not in self._associations:
            return  # the connection is gone
        blocked = self._verdict(association, data_set, report)
        self._apply(association, association.relay.decide(data_set.ticket, blocked), None)

    def _verdict(
        self, association: _Association, data_set: DataSet, report: Report
    ) -> tuple[str, ...] | None:
        """Record and show a verdict; the rules that block the data set, or None if it passes.

        A warned data set goes on only with its record written, where the policy requires one.
        """
        if report.verdict is Verdict.PASS:
            association.passed += 1
            self._show(association, None)
            return None
        written = self._record(association, report, data_set)
        if report.verdict is Verdict.WARN:
            policy = self.state.policy
            if written or (policy is not None and not policy.log.required):
                association.warned += 1
                self._show(association, report)
                return None
            report = unavailable_report(self.state.why_not_ready())
            self._record(association, report, data_set)
        association.blocked += 1
        self._show(association, report)
        return report.rules or ("blocked",)

    def _refused(self, association: _Association, refusal: Refusal) -> None:
        """Record and show what the relay refused by itself."""
        if refusal.kind == "rejected" and association.request_refused:
            return  # (recorded by _admit, with its findings)
        if refusal.kind == "too-large":
            report = unscannable_report(Request("", ""), refusal.reason, "dimse:data-set")
            association.blocked += 1
        elif refusal.kind == "rejected":
            report = unavailable_report(refusal.reason)
        else:
            report = refused_report(
                f"DICOM association aborted both ways: {refusal.reason}", location="dimse"
            )
        self._show(association, report)
        self._record(association, report, None, refusal)

    def _record(
        self,
        association: _Association,
        report: Report,
        data_set: DataSet | None,
        refusal: Refusal | None = None,
    ) -> bool:
        f = association.flow
        address = f.server_conn.address
        command = data_set.command if data_set is not None else refusal.command if refusal else None
        return record(
            self.state,
            report,
            flow_id=f.id,
            client=client_address(f.client_conn),
            method=command.label if command is not None else "A-ASSOCIATE",
            host=f"{address[0]}:{address[1]}" if address else "",
            path=command.sop_instance_uid if command is not None else "",
        )

    def _show(self, association: _Association, report: Report | None) -> None:
        """The flow's mark, comment and counts in mitmweb: the worst verdict so far wins."""
        f = association.flow
        try:
            f.metadata[DIMSE_KEY] = association.counts()
            if report is None:
                return
            if report.verdict is Verdict.BLOCK or f.marked != MARK_BLOCKED:
                f.metadata[METADATA_KEY] = report.as_dict()
                f.marked = MARK_BLOCKED if report.verdict is Verdict.BLOCK else MARK_WARNED
                line = comment(report)
                if association.blocked > 1 or association.warned > 1:
                    line += (
                        f" [{association.blocked} data sets blocked, "
                        f"{association.warned} warned, {association.passed} passed]"
                    )
                f.comment = line
        except Exception:
            logger.exception("kanta-guard: could not mark a DICOM flow")


def _failed(reason: str) -> Report:
    return unscannable_report(Request("", ""), reason, "dimse:data-set")
