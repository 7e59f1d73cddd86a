"""The guard's statistics since start: what it judged, found and stopped, and how fast it scanned.

One :class:`Stats` per proxy process, shared by its addons through the guard's state; the status
page and the Prometheus metrics read :meth:`Stats.snapshot`. Pure and thread-safe: one lock, and
the hot path (a request that passes, a scan's duration) is a few dict and list increments under
it.

Bounded whatever the traffic: the verdicts are three, the histogram has fixed buckets, the last
blocks are a ring of ``recent``, and the keyed counters (rules, rule and role, hosts) keep at
most ``max_keys`` keys each, counting the rest under :data:`OTHER`. Nothing here sees a request:
what it keeps of a block comes from its log record, which is masked already
(:func:`kanta_guard.eventlog.make_record`), and is masked once more on the way in.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .idcode import mask_text

__all__ = [
    "MAX_KEYS",
    "OTHER",
    "RECENT",
    "SCAN_BUCKETS",
    "VERDICTS",
    "Blocked",
    "BlockedFinding",
    "Histogram",
    "Snapshot",
    "Stats",
]

#: The verdicts counted (every one present from the start, so a scrape shows all three series).
VERDICTS = ("pass", "warn", "block")
#: Upper bounds (seconds) of the scan-latency buckets: a small GET scans in tens of µs, a large
#: document in a worker in tens of ms, a decompression bomb up to the scan timeout (30 s).
SCAN_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: How many of the last blocks are kept.
RECENT = 20
#: Distinct keys a keyed counter keeps (rule ids are a catalogue of a few dozen; hosts are not).
MAX_KEYS = 256
#: The key the rest is counted under once a counter is full.
OTHER = "(other)"
#: Findings kept of one block, and characters of one string (a path can be 8 KB).
FINDINGS_PER_BLOCK = 5
FIELD_CHARS = 300


@dataclass(frozen=True, slots=True)
class BlockedFinding:
    """One finding of a block as its log record holds it: masked evidence, never the value."""

    rule: str
    role: str
    location: str
    evidence: str


@dataclass(frozen=True, slots=True)
class Blocked:
    """One blocked request (or refused connection): when, what, where, and which rules."""

    time: str
    method: str
    host: str
    path: str
    rules: tuple[str, ...]
    findings: tuple[BlockedFinding, ...]
    #: Findings of the record not kept here (past FINDINGS_PER_BLOCK, or past the record's cap).
    omitted: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "method": self.method,
            "host": self.host,
            "path": self.path,
            "rules": list(self.rules),
            "findings": [
                {"rule": f.rule, "role": f.role, "location": f.location, "evidence": f.evidence}
                for f in self.findings
            ],
            "omitted": self.omitted,
        }


@dataclass(frozen=True, slots=True)
class Histogram:
    """Scan durations: ``counts[i]`` scans took at most ``bounds[i]`` seconds and more than the
    bound before; the last count is the scans past every bound (Prometheus's ``+Inf``)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float
    count: int

    def cumulative(self) -> tuple[int, ...]:
        """Scans at most each bound, then all of them (Prometheus's ``le`` buckets)."""
        total, out = 0, []
        for n in self.counts:
            total += n
            out.append(total)
        return tuple(out)

    def quantile(self, q: float) -> float | None:
        """The bound the ``q`` quantile falls under (an upper estimate), None with no scans;
        ``inf`` when it is past the last bound."""
        if not self.count:
            return None
        rank = q * self.count
        for bound, seen in zip((*self.bounds, float("inf")), self.cumulative(), strict=True):
            if seen >= rank:
                return bound
        return float("inf")  # pragma: no cover - the last cumulative count is the total


@dataclass(frozen=True)
class Snapshot:
    """The statistics at one moment, as plain values (the status page and metrics read this)."""

    started: str
    uptime: float
    requests: Mapping[str, int]
    findings: Mapping[str, int]
    roles: Mapping[tuple[str, str], int]
    hosts: Mapping[str, int]
    scan: Histogram
    worker_restarts: int
    log_failures: int
    recent: tuple[Blocked, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (``roles`` as ``{rule: {role: n}}``; the last blocks newest first)."""
        roles: dict[str, dict[str, int]] = {}
        for (rule, role), n in self.roles.items():
            roles.setdefault(rule, {})[role] = n
        scan = self.scan
        return {
            "started": self.started,
            "uptime_seconds": round(self.uptime, 3),
            "requests": dict(self.requests),
            "findings": dict(self.findings),
            "roles": roles,
            "blocks_by_host": dict(self.hosts),
            "scan_seconds": {
                "count": scan.count,
                "sum": round(scan.sum, 6),
                "buckets": {
                    _bound(b): n for b, n in zip(scan.bounds, scan.cumulative(), strict=False)
                },
                "p50": _json_bound(scan.quantile(0.5)),
                "p99": _json_bound(scan.quantile(0.99)),
            },
            "worker_restarts": self.worker_restarts,
            "log_failures": self.log_failures,
            "recent_blocks": [b.as_dict() for b in self.recent],
        }


@dataclass
class Stats:
    """Counters since start, safe to share between threads; see the module docstring."""

    recent: int = RECENT
    buckets: tuple[float, ...] = SCAN_BUCKETS
    max_keys: int = MAX_KEYS
    #: Wall-clock time (for ``started``) and a monotonic clock (for ``uptime``): tests set them.
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if list(self.buckets) != sorted(set(self.buckets)) or not self.buckets:
            raise ValueError("the scan buckets must be distinct and ascending")
        if self.recent < 0 or self.max_keys < 1:
            raise ValueError("recent must be 0 or more and max_keys at least 1")
        self._started = datetime.fromtimestamp(self.clock(), UTC)
        self._since = self.monotonic()
        self._requests = dict.fromkeys(VERDICTS, 0)
        self._findings: dict[str, int] = {}
        self._roles: dict[tuple[str, str], int] = {}
        self._hosts: dict[str, int] = {}
        self._scan_counts = [0] * (len(self.buckets) + 1)
        self._scan_sum = 0.0
        self._restarts = 0
        self._log_failures = 0
        self._recent: deque[Blocked] = deque(maxlen=self.recent)

    # -- the hot path -----------------------------------------------------------------------------

    def passed(self) -> None:
        """A request judged clean and forwarded."""
        with self._lock:
            self._requests["pass"] += 1

    def pass_retracted(self) -> None:
        """A request counted as passed was then blocked after all (a server switching protocols,
        a lazy connection to a production server): its block is counted from its log record."""
        with self._lock:
            self._requests["pass"] = max(0, self._requests["pass"] - 1)

    def scanned(self, seconds: float) -> None:
        """One scan took ``seconds`` (waiting for a worker included)."""
        slot = bisect.bisect_left(self.buckets, seconds)  # a bound is inclusive: le="0.001"
        with self._lock:
            self._scan_counts[slot] += 1
            self._scan_sum += seconds

    # -- what the log is told ----------------------------------------------------------------------

    def recorded(self, record: Mapping[str, object]) -> None:
        """A blocked or warned request's log record (any other record is ignored): its verdict,
        its findings by rule and role, and for a block its host and a line of the last blocks."""
        verdict = record.get("verdict")
        if verdict not in ("warn", "block"):
            return
        findings = [f for f in _list(record.get("findings")) if isinstance(f, Mapping)]
        pairs = [(_text(f.get("rule")), _text(f.get("role"))) for f in findings]
        blocked = _blocked(record, findings) if verdict == "block" else None
        with self._lock:
            self._requests[str(verdict)] += 1
            for rule, role in pairs:
                _bump(self._findings, rule, self.max_keys)
                _bump(self._roles, (rule, role), self.max_keys, (OTHER, OTHER))
            if blocked is not None:
                _bump(self._hosts, blocked.host, self.max_keys)
                self._recent.append(blocked)

    def worker_restarted(self) -> None:
        """A scan worker failed (died, timed out, answered garbage) and is replaced."""
        with self._lock:
            self._restarts += 1

    def log_failed(self) -> None:
        """A write to the blocked-request log failed."""
        with self._lock:
            self._log_failures += 1

    # -- reading -----------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Everything at this moment, consistent (taken under the lock, copied)."""
        with self._lock:
            counts = tuple(self._scan_counts)
            return Snapshot(
                started=self._started.isoformat(timespec="seconds").replace("+00:00", "Z"),
                uptime=max(0.0, self.monotonic() - self._since),
                requests=dict(self._requests),
                findings=dict(self._findings),
                roles=dict(self._roles),
                hosts=dict(self._hosts),
                scan=Histogram(self.buckets, counts, self._scan_sum, sum(counts)),
                worker_restarts=self._restarts,
                log_failures=self._log_failures,
                recent=tuple(reversed(self._recent)),
            )


# -- helpers -------------------------------------------------------------------------------------


def _bump[K](counter: dict[K, int], key: K, limit: int, other: K | None = None) -> None:
    """Count ``key``; a full counter counts a new key under ``other`` (OTHER by default)."""
    if key not in counter and len(counter) >= limit:
        key = other if other is not None else OTHER  # type: ignore[assignment]
    counter[key] = counter.get(key, 0) + 1


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: object) -> str:
    """A record's string, masked once more and cut to FIELD_CHARS (masked first: a cut code
    could no longer be recognised)."""
    text = mask_text(value if isinstance(value, str) else "" if value is None else str(value))
    return text if len(text) <= FIELD_CHARS else text[: FIELD_CHARS - 1] + "…"


def _blocked(record: Mapping[str, object], findings: Iterable[Mapping[str, object]]) -> Blocked:
    listed = list(findings)
    kept = tuple(
        BlockedFinding(
            _text(f.get("rule")),
            _text(f.get("role")),
            _text(f.get("location")),
            _text(f.get("evidence")),
        )
        for f in listed[:FINDINGS_PER_BLOCK]
    )
    extra = record.get("findings_omitted")
    omitted = max(0, len(listed) - FINDINGS_PER_BLOCK) + (extra if isinstance(extra, int) else 0)
    return Blocked(
        time=_text(record.get("time")),
        method=_text(record.get("method")),
        host=_text(record.get("host")),
        path=_text(record.get("path")),
        rules=tuple(_text(r) for r in _list(record.get("rules"))[:MAX_KEYS]),
        findings=kept,
        omitted=omitted,
    )


def _json_bound(value: float | None) -> float | str | None:
    """A quantile's bound for JSON, which has no infinity: past the last bound is ``"+Inf"``."""
    return "+Inf" if value == float("inf") else value


def _bound(value: float) -> str:
    """A bucket bound as Prometheus prints it (``0.001``, ``1.0``)."""
    return repr(float(value))
