"""Scanning off the proxy's event loop: worker processes, each with its own :class:`Scanner`.

Why processes: mitmproxy runs every connection on one asyncio thread. A scan on that thread holds
it, so one large upload stalls every other tester's traffic, and the scan competes with the
proxy's own work for one core. Python threads would share one interpreter lock (tried: slower).
A worker process scans on another core while the proxy only hands bytes over a pipe.

The wire is the worker's stdin and stdout: frames of a 4-byte big-endian length and a pickle.
Both ends are this module, started by the guard, so the pickles come from the guard itself. The
first frame carries the policy and the hash key (never the command line, which ``ps`` shows).

Fail closed: a worker that dies, answers garbage or runs past the timeout is killed and replaced,
and its request gets an ``unscannable`` report; it is never forwarded unscanned.

Run as ``python -m kanta_guard.worker`` by :class:`WorkerPool` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .masking import KeyedHasher
from .model import Action, Finding, Protocol, Recognised, Report, Request, Role, Verdict
from .pipeline import Scanner, unscannable_report
from .policy import Policy

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["WorkerError", "WorkerPool", "main"]

logger = logging.getLogger("kanta_guard")

_LENGTH = struct.Struct("!I")
_READY = b"ready"
_START_TIMEOUT = 60.0
#: The package's parent directory: the worker imports this very copy of kanta_guard.
_SOURCE_ROOT = str(Path(__file__).resolve().parent.parent)


class WorkerError(Exception):
    """A worker did not answer as it should (died, timed out, sent something unreadable)."""


class _Worker:
    """One worker process and its pipes; one request at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self.expired = False

    @classmethod
    async def start(cls, policy: Policy, key: bytes, registry: Registry | None = None) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kanta_guard.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = cls(process)
        try:
            await worker._send(_dumps((policy, key, registry)))
            if await worker._receive() != _READY:
                raise WorkerError("the scan worker did not start")
        except BaseException:
            worker.kill()
            raise
        return worker

    async def scan(self, request: Request) -> Report:
        await self._send(_dumps(_request_wire(request)))
        data = await self._receive()
        try:
            return _report_from_wire(pickle.loads(data))
        except Exception as exc:  # a truncated, corrupt or unexpected frame
            raise WorkerError("the scan worker sent an unreadable answer") from exc

    async def _send(self, data: bytes) -> None:
        try:
            self._stdin.write(_LENGTH.pack(len(data)) + data)
            await self._stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise WorkerError("the scan worker is gone") from exc

    async def _receive(self) -> bytes:
        try:
            (size,) = _LENGTH.unpack(await self._stdout.readexactly(_LENGTH.size))
            return await self._stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise WorkerError("the scan worker exited") from exc

    def expire(self) -> None:
        """The scan took too long: stop the worker (its pending read then fails)."""
        self.expired = True
        self.kill()

    def kill(self) -> None:
        self._stdin.close()  # (a worker whose stdin closes exits by itself, too)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class WorkerPool:
    """Scans requests in ``size`` worker processes, each under the same policy and hash key.

    Requests queue for the next idle worker. Workers start on first use (or on :meth:`start`);
    a worker that fails is replaced on the next request that needs one (``on_restart`` is told
    each time one is given up: the guard's statistics count them).
    """

    def __init__(
        self,
        policy: Policy,
        key: bytes,
        size: int,
        timeout: float,
        registry: Registry | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.policy, self.size, self.timeout = policy, size, timeout
        self.registry = registry
        self._on_restart = on_restart
        self._key = key
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._closed = False
        for _ in range(size):
            self._idle.put_nowait(None)  # a slot; the worker starts when first taken

    async def start(self) -> None:
        """Start every worker now (so the first requests do not wait for them)."""
        slots = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        results = await asyncio.gather(
            *(self._ensure(slot) for slot in slots), return_exceptions=True
        )
        failed: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                failed = failed or result
                self._idle.put_nowait(None)  # tried again by the next request that needs it
            else:
                self._idle.put_nowait(result)
        if failed is not None:
            raise failed

    async def scan(self, request: Request) -> Report:
        """The report of one request; an ``unscannable`` report if its worker fails."""
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        slot = await self._idle.get()
        worker: _Worker | None = None
        timer: asyncio.TimerHandle | None = None
        try:
            worker = await self._ensure(slot)
            # Past the timeout the worker is killed, which ends its scan with a WorkerError. (A
            # timer: asyncio.wait_for costs the proxy about 30 µs a request more.)
            timer = asyncio.get_running_loop().call_later(self.timeout, worker.expire)
            report = await worker.scan(request)
        except WorkerError as exc:
            expired = worker is not None and worker.expired
            self._discard(worker)
            worker = None
            self._restarted()
            if expired:
                logger.error(
                    "kanta-guard: a scan ran past %s s; its worker was replaced", self.timeout
                )
                return unscannable_report(
                    request,
                    f"scan did not finish within {self.timeout:g} s (the worker was stopped)",
                )
            logger.error("kanta-guard: %s; it will be replaced", exc)
            return unscannable_report(request, f"scan failed: {exc}")
        except BaseException:
            # Cancelled (the client went away, the proxy stops): the worker may be mid-answer.
            self._discard(worker)
            worker = None
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if self._closed:
                self._discard(worker)  # retired while it scanned: its answer still counts
            else:
                self._idle.put_nowait(worker)
        return report

    async def _ensure(self, slot: _Worker | None) -> _Worker:
        if slot is not None and slot.process.returncode is None:
            return slot
        if slot is not None:
            self._restarted()  # it died while idle
        self._discard(slot)
        try:
            worker = await asyncio.wait_for(
                _Worker.start(self.policy, self._key, self.registry), _START_TIMEOUT
            )
        except TimeoutError:
            raise WorkerError(
                f"the scan worker did not start within {_START_TIMEOUT:g} s"
            ) from None
        self._all.add(worker)
        return worker

    def _restarted(self) -> None:
        if self._on_restart is not None:
            self._on_restart()

    def _discard(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
            self._all.discard(worker)

    def retire(self) -> None:
        """Take no new requests; stop each worker once its scan in progress (if any) is
        answered. (A new configuration swaps pools: a request already with a worker is judged
        under the configuration it started with, never a mix.)"""
        self._closed = True
        while not self._idle.empty():
            self._discard(self._idle.get_nowait())

    def close(self) -> None:
        """Stop every worker (also safe when the event loop is no longer running)."""
        self._closed = True
        for worker in list(self._all):
            self._discard(worker)

    async def aclose(self) -> None:
        """Stop every worker and wait until each has exited."""
        workers = list(self._all)
        self.close()
        await asyncio.gather(*(w.process.wait() for w in workers))

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        return [w.process.pid for w in self._all if w.process.returncode is None]


# -- the wire: plain tuples (pickling the dataclasses and enums themselves cost the proxy about
# 70 µs a request, in class lookups and per-field setstate; measured with py-spy) ---------------

type _Headers = tuple[tuple[str, str], ...]
type _RequestWire = tuple[str, str, _Headers, bytes, str, str, _Headers]
type _FindingWire = tuple[str, str, str, str, str, str, str]
type _RecognisedWire = tuple[int, tuple[str, ...], int]
type _ReportWire = tuple[
    str, tuple[_FindingWire, ...], str, int, int, int, bool, _RecognisedWire, str
]


def _dumps(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _request_wire(request: Request) -> _RequestWire:
    # In the order of Request's fields: the worker rebuilds it as Request(*wire).
    return (
        request.method,
        request.target,
        request.headers,
        request.body,
        request.host,
        request.authority,
        request.trailers,
    )


def _report_wire(report: Report) -> _ReportWire:
    findings = tuple(
        (f.rule, f.action.value, f.location, f.role.value, f.evidence, f.value_hash, f.explanation)
        for f in report.findings
    )
    verdict, protocol = report.verdict.value, report.protocol.value
    seen = report.recognised
    return (
        verdict,
        findings,
        protocol,
        report.fields_scanned,
        report.payloads_scanned,
        report.omitted,
        report.omitted_partial,
        (seen.identity_fields, seen.test_codes, seen.more_test_codes),
        report.resource,
    )


def _report_from_wire(wire: _ReportWire) -> Report:
    verdict, findings, protocol, fields, payloads, omitted, partial, seen, resource = wire
    return Report(
        verdict=Verdict(verdict),
        findings=tuple(
            Finding(rule, Action(action), location, Role(role), evidence, value_hash, explanation)
            for rule, action, location, role, evidence, value_hash, explanation in findings
        ),
        protocol=Protocol(protocol),
        fields_scanned=fields,
        payloads_scanned=payloads,
        omitted=omitted,
        omitted_partial=partial,
        recognised=Recognised(*seen),
        resource=resource,
    )


# -- the worker process --------------------------------------------------------------------------


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


def _write_frame(stream: BinaryIO, data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def main() -> int:
    """The worker: read requests from stdin, write reports to stdout, until stdin closes."""
    # Ctrl-C reaches the whole process group; the proxy decides when workers stop (by closing
    # their stdin, or killing them), so a worker does not die with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    # The frames own stdout: anything else printed goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    setup = _read_frame(requests)
    if setup is None:
        return 1
    policy, key, registry = pickle.loads(setup)
    scanner = Scanner(policy, KeyedHasher(key), registry=registry)
    _write_frame(answers, _READY)
    while (frame := _read_frame(requests)) is not None:
        request = Request(*pickle.loads(frame))
        try:
            report = scanner.scan(request)
        except Exception as exc:  # a bug in a parser: refuse the request, keep serving
            report = unscannable_report(
                request, f"internal error in the scan: {type(exc).__name__}"
            )
        _write_frame(answers, _dumps(_report_wire(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
