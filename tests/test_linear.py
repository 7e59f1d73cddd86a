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
from kanta_guard.contacts import _matched
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


def _phones(count: int, start: int = 0) -> str:
    """Distinct Finnish mobile numbers in running text (each a phone.personal warning under the
    embedded default policy)."""
    return " ".join(f"puh 040 {i:07d}" for i in range(start, start + count))


def test_a_flood_of_warnings_stops_at_the_cap_and_says_the_count_is_a_lower_bound() -> None:
    """Past the cap, a rule whose findings can no longer change the verdict is not looked for
    any more: 60,000 distinct phone numbers (once 2 s a megabyte, a match each) cost about what
    the first hundred do, and the count of the rest is reported as a lower bound."""
    body = _phones(60_000).encode()
    request = Request("POST", "/x", (("Content-Type", "text/plain"),), body, "kanta.test")
    report = SCANNER.scan(request)
    assert report.verdict is Verdict.WARN
    assert len(report.findings) == MAX_FINDINGS
    assert {f.rule for f in report.findings} == {"phone.personal"}
    assert report.omitted_partial and report.omitted >= 1
    record = make_record(report, flow_id="f", client=None, method="POST", host="h", path="/x")
    assert record["findings_omitted_at_least"] is True
    assert len(json.dumps(record)) < 64 * 1024
    # The rest is not matched: libphonenumber's matcher was asked about a few hundred regions
    # (the screen's and the first hundred findings'), not 60,000.
    _matched.cache_clear()
    SCANNER.scan(request)
    assert _matched.cache_info().misses < 1_000


@pytest.mark.parametrize(
    ("after", "rule"),
    [
        ("potilas 131052-308T", "hetu.real"),
        ("maija.virtanen@gmail.com", "email.personal"),
    ],
)
def test_past_the_cap_a_rule_that_blocks_is_still_looked_for(after: str, rule: str) -> None:
    """Leaving out the rules that cannot change the verdict leaves in those that can: a real
    identity code or a personal e-mail address after a flood of phone warnings still blocks,
    in the same field and in a later one (listed if its detector reads the field before the
    phones fill the cap, else counted and ranked)."""
    for glue in (" ", "\n"):
        body = (_phones(5_000) + glue + after).encode()
        report = SCANNER.scan(
            Request("POST", "/x", (("Content-Type", "text/plain"),), body, "kanta.test")
        )
        assert report.verdict is Verdict.BLOCK, (glue, report.rules)
        assert len(report.findings) == MAX_FINDINGS
        assert len(blocked_answer(report).body) < 64 * 1024


def test_below_the_cap_nothing_is_left_out() -> None:
    """Under the cap every finding is listed and the count is exact: no rule is left out."""
    body = (_phones(50) + " maija.virtanen@gmail.com").encode()
    report = SCANNER.scan(
        Request("POST", "/x", (("Content-Type", "text/plain"),), body, "kanta.test")
    )
    assert report.verdict is Verdict.BLOCK
    assert len(report.findings) == 51 and not report.omitted and not report.omitted_partial


@pytest.mark.parametrize(
    ("body", "content_type", "extra_headers"),
    [
        ('{"a": "PHONES", "b": "131052-308T"}', "application/json", ()),
        ('{"a": "PHONES", "b": "liisa@gmail.com"}', "application/json", ()),
        (
            '<r><p>PHONES</p><id root="1.2.246.21" extension="131052-308T"/></r>',
            "application/xml",
            (),
        ),
        ("<r><p>PHONES</p><t>liisa@gm\u00adail.com</t></r>", "application/xml", ()),
        ("PHONES\n\uff11\uff13\uff11\uff10\uff15\uff12-\uff13\uff10\uff18\uff34", "text/plain", ()),
        ("potilas 131052-308T", "text/plain", (("X-Note", "PHONES"),)),
    ],
    ids=[
        "json-code",
        "json-email",
        "xml-attribute-code",
        "xml-shy-email",
        "fullwidth-code",
        "header",
    ],
)
def test_a_flood_of_warnings_hides_no_block_elsewhere(
    body: str, content_type: str, extra_headers: tuple[tuple[str, str], ...]
) -> None:
    """A flood of phone warnings in one place (a JSON member, an element, a header), and a
    real code or personal e-mail in another, the way a careless system sends both: blocks."""
    phones = _phones(3_000)
    extra = ((k, v.replace("PHONES", phones)) for k, v in extra_headers)
    headers = (("Content-Type", content_type + "; charset=utf-8"), *extra)
    request = Request("POST", "/x", headers, body.replace("PHONES", phones).encode(), "x")
    assert SCANNER.scan(request).verdict is Verdict.BLOCK
