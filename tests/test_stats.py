"""Tests for kanta_guard.stats: counters since start, bounded, thread-safe, masked."""

from __future__ import annotations

import json
import threading

import pytest
from helpers import REAL, TEST

from kanta_guard.eventlog import make_event, make_record
from kanta_guard.model import Action, Finding, Protocol, Report, Role, Verdict
from kanta_guard.stats import (
    FIELD_CHARS,
    FINDINGS_PER_BLOCK,
    OTHER,
    SCAN_BUCKETS,
    VERDICTS,
    Histogram,
    Stats,
)


def finding(rule: str = "hetu.real", role: Role = Role.PATIENT, evidence: str = "") -> Finding:
    return Finding(
        rule=rule,
        action=Action.BLOCK if rule == "hetu.real" else Action.WARN,
        location="/ClinicalDocument/recordTarget/patientRole/id/@extension",
        role=role,
        evidence=evidence or "******-****",
        value_hash="hmac:0123456789abcdef",
        explanation="a real personal identity code",
    )


def record(
    verdict: Verdict = Verdict.BLOCK,
    findings: tuple[Finding, ...] | None = None,
    *,
    host: str = "kanta.test",
    path: str = "/services",
    method: str = "POST",
) -> dict[str, object]:
    """A log record as the guard writes it (masked by make_record)."""
    report = Report(verdict, findings if findings is not None else (finding(),), Protocol.SOAP11)
    return make_record(report, flow_id="f1", client="127.0.0.1:1", method=method, host=host,
                       path=path)  # fmt: skip


def test_counts_start_at_zero_for_every_verdict() -> None:
    """A fresh Stats shows all three verdicts at 0, no findings, an empty histogram."""
    snap = Stats().snapshot()
    assert dict(snap.requests) == dict.fromkeys(VERDICTS, 0)
    assert not snap.findings and not snap.hosts and not snap.recent
    assert snap.scan.count == 0 and snap.scan.quantile(0.5) is None
    assert (snap.worker_restarts, snap.log_failures) == (0, 0)


@pytest.mark.parametrize(
    ("feed", "requests"),
    [
        (["pass", "pass"], {"pass": 2, "warn": 0, "block": 0}),
        (["block", "warn", "pass"], {"pass": 1, "warn": 1, "block": 1}),
        (["event", "block"], {"pass": 0, "warn": 0, "block": 1}),  # an event is no request
    ],
)
def test_requests_by_verdict(feed: list[str], requests: dict[str, int]) -> None:
    """Passes are counted by passed(), warns and blocks from their log records; events never."""
    stats = Stats()
    for what in feed:
        if what == "pass":
            stats.passed()
        elif what == "event":
            stats.recorded(make_event("policy", change="start"))
        else:
            stats.recorded(
                record(Verdict(what), (finding("hetu.real" if what == "block" else "hetu.wrong"),))
            )
    assert dict(stats.snapshot().requests) == requests


def test_findings_by_rule_and_role_and_blocks_by_host() -> None:
    """Each finding counts under its rule and (rule, role); only blocks count by host."""
    stats = Stats()
    stats.recorded(record(findings=(finding(), finding(role=Role.GUARDIAN))))
    stats.recorded(record(Verdict.WARN, (finding("hetu.wrong"),), host="warned.test"))
    snap = stats.snapshot()
    assert dict(snap.findings) == {"hetu.real": 2, "hetu.wrong": 1}
    assert dict(snap.roles) == {
        ("hetu.real", "patient"): 1,
        ("hetu.real", "guardian"): 1,
        ("hetu.wrong", "patient"): 1,
    }
    assert dict(snap.hosts) == {"kanta.test": 1}
    assert snap.as_dict()["roles"] == {
        "hetu.real": {"patient": 1, "guardian": 1},
        "hetu.wrong": {"patient": 1},
    }


def test_last_blocks_are_a_bounded_ring_newest_first() -> None:
    """Only the last ``recent`` blocks are kept, newest first; warns are not among them."""
    stats = Stats(recent=3)
    for n in range(5):
        stats.recorded(record(path=f"/p{n}"))
    stats.recorded(record(Verdict.WARN, (finding("hetu.wrong"),), path="/warned"))
    assert [b.path for b in stats.snapshot().recent] == ["/p4", "/p3", "/p2"]


def test_a_block_keeps_masked_evidence_and_never_a_raw_code() -> None:
    """What a block keeps is the record's masked evidence; a code that slipped into a record
    (as it never should) is masked once more; a 900-series test code is shown."""
    raw = record(findings=(finding(evidence=TEST),), path=f"/Patient?identifier={REAL}")
    raw["host"] = f"{REAL}.kanta.test"  # (make_record masks it; put it back to prove the mask)
    stats = Stats()
    stats.recorded(raw)
    snap = stats.snapshot()
    text = json.dumps(snap.as_dict())
    assert REAL not in text
    block = snap.recent[0]
    assert block.findings[0].evidence == TEST
    assert block.host.startswith("******-****")
    assert block.rules == ("hetu.real",) and block.method == "POST"


def test_a_block_is_bounded_in_size() -> None:
    """Findings past FINDINGS_PER_BLOCK are counted, not kept; a long path is cut."""
    many = tuple(finding() for _ in range(FINDINGS_PER_BLOCK + 3))
    stats = Stats()
    stats.recorded(record(findings=many, path="/" + "x" * 10_000))
    block = stats.snapshot().recent[0]
    assert len(block.findings) == FINDINGS_PER_BLOCK and block.omitted == 3
    assert len(block.path) == FIELD_CHARS and block.path.endswith("…")
    assert stats.snapshot().findings["hetu.real"] == FINDINGS_PER_BLOCK + 3


def test_keyed_counters_are_bounded() -> None:
    """Past max_keys distinct hosts (or rules), the rest count under OTHER: memory stays put."""
    stats = Stats(max_keys=10)
    for n in range(1000):
        stats.recorded(record(host=f"h{n}.test", findings=(finding(f"rule.r{n}"),)))
    snap = stats.snapshot()
    assert len(snap.hosts) == 11 and snap.hosts[OTHER] == 990
    assert len(snap.findings) == 11 and snap.findings[OTHER] == 990
    assert len(snap.roles) == 11
    assert sum(snap.hosts.values()) == 1000


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        (0.0, 0),
        (SCAN_BUCKETS[0], 0),  # a bound is inclusive (Prometheus's le)
        (SCAN_BUCKETS[0] * 1.01, 1),
        (0.003, SCAN_BUCKETS.index(0.005)),
        (SCAN_BUCKETS[-1], len(SCAN_BUCKETS) - 1),
        (1e6, len(SCAN_BUCKETS)),  # past every bound: +Inf
    ],
)
def test_scan_histogram_buckets(seconds: float, bucket: int) -> None:
    """A scan's duration lands in the first bucket whose bound is not below it."""
    stats = Stats()
    stats.scanned(seconds)
    scan = stats.snapshot().scan
    assert scan.counts[bucket] == 1 and sum(scan.counts) == 1 == scan.count
    assert scan.sum == seconds


def test_histogram_cumulative_and_quantiles() -> None:
    """Cumulative counts are Prometheus's buckets; quantiles are the bound they fall under."""
    hist = Histogram((0.1, 1.0), (3, 1, 1), 5.0, 5)
    assert hist.cumulative() == (3, 4, 5)
    assert hist.quantile(0.5) == 0.1
    assert hist.quantile(0.8) == 1.0
    assert hist.quantile(0.99) == float("inf")


def test_snapshot_is_json_without_infinity() -> None:
    """The snapshot as a dict is strict JSON (a quantile past the last bound is "+Inf")."""
    stats = Stats()
    stats.scanned(1e6)
    data = stats.snapshot().as_dict()
    json.dumps(data, allow_nan=False)
    assert data["scan_seconds"]["p99"] == "+Inf"  # type: ignore[index]


def test_worker_restarts_and_log_failures() -> None:
    """Restarts and failed log writes are counted."""
    stats = Stats()
    stats.worker_restarted()
    stats.log_failed()
    stats.log_failed()
    snap = stats.snapshot()
    assert (snap.worker_restarts, snap.log_failures) == (1, 2)


def test_started_and_uptime_from_the_clocks() -> None:
    """``started`` is the wall clock at creation (UTC), ``uptime`` the monotonic time since."""
    ticks = iter([100.0, 142.5])
    stats = Stats(clock=lambda: 0.0, monotonic=lambda: next(ticks))
    snap = stats.snapshot()
    assert snap.started == "1970-01-01T00:00:00Z" and snap.uptime == 42.5


def test_counts_are_exact_under_threads() -> None:
    """Eight threads counting at once lose no increment."""
    stats = Stats()

    def work() -> None:
        for _ in range(5000):
            stats.passed()
            stats.scanned(0.001)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = stats.snapshot()
    assert snap.requests["pass"] == 40_000 and snap.scan.count == 40_000


@pytest.mark.parametrize(
    "kwargs", [{"buckets": ()}, {"buckets": (1.0, 0.5)}, {"recent": -1}, {"max_keys": 0}]
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    """Buckets must ascend; recent and max_keys must make sense."""
    with pytest.raises(ValueError):
        Stats(**kwargs)  # type: ignore[arg-type]
