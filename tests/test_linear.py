"""The scan's cost is linear in its input, and its output bounded, on pathological inputs.

Each generator of bench/adversarial.py (inputs that once made a step quadratic: a look-back
per OID, a scan back per JSON member, a needle per line; or that flood the output) is timed
at n and 8n bytes; a ratio far above 8 is super-linear growth and fails. Timings are the best
of a few runs, and the bound is loose (a loaded machine stretches one run, not the best of
three), so the test fails on growth, not on noise.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from adversarial import GENERATORS, hetu, scanner, size_of, time_scan

from kanta_guard import Request, Verdict
from kanta_guard.answer import blocked_answer
from kanta_guard.eventlog import make_record
from kanta_guard.model import MAX_COUNTED, MAX_FINDINGS

SMALL = 32 * 1024
#: 8n over n may reach this much before the growth counts as super-linear (linear: about 8,
#: less where a fixed cost dominates the small run; quadratic: about 64).
BOUND = 8 * 2.5

SCANNER = scanner()


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_scan_time_grows_linearly(name: str) -> None:
    """Scanning 8n bytes of a pathological input costs about 8 times n bytes, not 64."""
    build = GENERATORS[name]
    small, large = build(SMALL), build(8 * SMALL)
    time_scan(SCANNER, small)  # warm: tables built on first use, caches
    t_small = max(time_scan(SCANNER, small, repeat=3), 1e-4)
    t_large = time_scan(SCANNER, large, repeat=3)
    ratio = (t_large / t_small) * (size_of(small) * 8 / size_of(large))
    assert ratio < BOUND, f"{name}: {t_small * 1e3:.1f} ms -> {t_large * 1e3:.1f} ms (x{ratio:.1f})"


def test_a_flood_of_codes_is_answered_small_and_soon() -> None:
    """3 MB of 262,144 distinct real-range codes: blocked within seconds, with the first
    MAX_FINDINGS findings and a count of the rest (up to MAX_COUNTED, then "at least"), in an
    answer and a log record of a few tens of KB (once: 43 s, a 58 MB answer and a 55 MB
    record)."""
    codes, i = [], 0
    while len(codes) < 262_144:
        day, month, year = 1 + i % 28, 1 + (i // 28) % 12, i // 336 % 100
        codes.append(hetu(f"{day:02d}{month:02d}{year:02d}", "-", 2 + (i // 33_600) % 898))
        i += 1
    assert len(set(codes)) == len(codes)
    body = "\n".join(codes).encode()
    assert len(body) < 3.2e6
    request = Request("POST", "/x", (("Content-Type", "text/plain"),), body, "kanta.test")
    start = time.perf_counter()
    report = SCANNER.scan(request)
    seconds = time.perf_counter() - start
    assert report.verdict is Verdict.BLOCK
    assert len(report.findings) == MAX_FINDINGS
    assert report.omitted == MAX_COUNTED  # counting stops there: the rest is not read
    assert seconds < 2, seconds
    answer = blocked_answer(report)
    assert len(answer.body) < 64 * 1024
    assert f"At least {report.omitted} more".encode() in answer.body
    record = make_record(report, flow_id="f", client=None, method="POST", host="h", path="/x")
    assert len(json.dumps(record)) < 64 * 1024
    assert record["findings_omitted"] == report.omitted


def test_below_the_counting_bound_the_count_is_exact() -> None:
    """Under MAX_COUNTED findings past the cap, every one is counted: the answer names the
    exact number a tester has to fix."""
    codes = [
        hetu(f"{1 + i % 28:02d}{1 + i // 28 % 12:02d}75", "-", 2 + i // 336) for i in range(3000)
    ]
    body = "\n".join(codes).encode()
    report = SCANNER.scan(
        Request("POST", "/x", (("Content-Type", "text/plain"),), body, "kanta.test")
    )
    assert report.verdict is Verdict.BLOCK
    assert len(report.findings) == MAX_FINDINGS
    assert report.omitted == len(set(codes)) - MAX_FINDINGS
    answer = blocked_answer(report)
    assert f" {report.omitted} more findings are not listed".encode() in answer.body
    assert b"At least" not in answer.body
