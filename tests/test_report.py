"""Tests of kanta_guard.report: a campaign's log (rotated, compressed, damaged) summed up and shown.

The log is made the way the proxy makes it: the real pipeline's ``Scanner`` judges each request,
``eventlog.make_record`` turns the report into a record and ``EventLog`` writes and rotates it.
Real-range codes are computed (``helpers.REAL``) and must appear in no output.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from helpers import REAL, REAL_2, TEST, identity_policy

from kanta_guard import KeyedHasher, Request, Scanner
from kanta_guard.eventlog import EventLog, make_event, make_record
from kanta_guard.report import (
    LogReadError,
    Summary,
    log_files,
    reading_line,
    render_html,
    render_text,
    summarise,
)

KEY = b"kanta-guard-report-test-key-0123"
START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
JSON = (("Content-Type", "application/fhir+json"),)
HASH = re.compile(r"hmac:[0-9a-f]{16}")
WRONG_CHECK = TEST[:-1] + "D"  # a 900-series test code with a wrong check character: warned
#: The raw real-range codes in every form a reader would recognise.
RAW = (REAL, REAL_2, REAL.replace("-", ""), REAL_2.lower())


def patient(code: str) -> bytes:
    """A FHIR Patient identified by ``code`` (HETU system)."""
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.246.21", "value": code}],
    }
    return json.dumps(resource).encode()


#: The campaign: (hours after START, host, request). REAL is sent five times (three FHIR bodies,
#: two URLs: one keyed hash), REAL_2 once, a wrong-check test code once (warn), a broken gzip
#: body once (unscannable), over three days and three hosts.
CAMPAIGN = (
    (0, "at.kanta.test", Request("POST", "/fhir/Patient", JSON, patient(REAL))),
    (1, "at.kanta.test", Request("POST", "/fhir/Patient", JSON, patient(REAL))),
    (2, "sandbox.kanta.test", Request("POST", "/fhir/Patient", JSON, patient(WRONG_CHECK))),
    (
        25,
        "soap.kanta.test",
        Request("GET", f"/fhir/Patient?identifier=urn:oid:1.2.246.21|{REAL}"),
    ),
    (26, "at.kanta.test", Request("POST", "/fhir/Patient", JSON, patient(REAL_2))),
    (
        27,
        "at.kanta.test",
        Request("POST", "/fhir/Patient", (*JSON, ("Content-Encoding", "gzip")), b"not gzip"),
    ),
    (49, "soap.kanta.test", Request("GET", f"/fhir/Patient?identifier=urn:oid:1.2.246.21|{REAL}")),
    (50, "at.kanta.test", Request("POST", "/fhir/Patient", JSON, patient(REAL))),
)


def write_campaign(path: Path, *, max_bytes: int = 1200) -> None:
    """The campaign's log at ``path``, rotated by the real ``EventLog`` (``path.1``, ``.2`` …)."""
    scanner = Scanner(identity_policy(), KeyedHasher(KEY))
    with EventLog(path, max_bytes=max_bytes, backups=9) as log:
        log.write(make_event("policy", time=START, change="start", source="<embedded>"))
        for number, (hours, host, request) in enumerate(CAMPAIGN):
            report = scanner.scan(request)
            record = make_record(
                report,
                flow_id=f"flow-{number}",
                client="127.0.0.1:50000",
                method=request.method,
                host=host,
                path=request.target,
                time=START + timedelta(hours=hours),
            )
            log.write(record)


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    """The campaign's log, rotated into several files, with a garbage line at the end."""
    path = tmp_path / "blocked.jsonl"
    write_campaign(path)
    with path.open("ab") as file:
        file.write(b"this is not a record\n")
    return path


def outputs(summary: Summary) -> list[str]:
    """Every output of a summary: text, HTML, JSON."""
    return [render_text(summary), render_html(summary), json.dumps(summary.as_dict())]


def assert_no_raw_code(*texts: str) -> None:
    for text in texts:
        for raw in RAW:
            assert raw not in text


# -- the summary ----------------------------------------------------------------------------------


def test_campaign_is_summed_up(campaign: Path) -> None:
    """A rotated log is read whole, oldest file first, and counted by every dimension."""
    backups = sorted(campaign.parent.glob("blocked.jsonl.*"))
    assert len(backups) >= 2, "the campaign should rotate into several files"
    summary = summarise([campaign])

    assert [Path(f.path).name for f in summary.files] == [
        *(p.name for p in sorted(backups, key=lambda p: -int(p.suffix[1:]))),
        "blocked.jsonl",
    ]
    assert (summary.requests, summary.blocked, summary.warned, summary.passed) == (8, 7, 1, 0)
    assert summary.findings == 8
    assert summary.events == (("policy", 1),)
    assert summary.first == "2026-03-02T08:30:00.000Z"
    assert summary.last == "2026-03-04T10:30:00.000Z"

    rules = {r.key: (r.requests, r.blocked, r.warned, r.findings) for r in summary.rules.rows}
    assert rules == {
        "hetu.real": (6, 6, 0, 6),
        "hetu.malformed_test": (1, 0, 1, 1),
        "unscannable": (1, 1, 0, 1),
    }
    assert summary.rules.rows[0].key == "hetu.real"  # the most requests first
    roles = {r.key: r.requests for r in summary.roles.rows}
    assert roles == {"patient": 5, "url": 2, "unknown": 1}
    hosts = {r.key: (r.requests, r.blocked, r.warned) for r in summary.hosts.rows}
    assert hosts == {
        "at.kanta.test": (5, 5, 0),
        "soap.kanta.test": (2, 2, 0),
        "sandbox.kanta.test": (1, 0, 1),
    }
    days = [(d.key, d.requests, d.blocked, d.warned) for d in summary.days]
    assert days == [("2026-03-02", 3, 2, 1), ("2026-03-03", 3, 3, 0), ("2026-03-04", 2, 2, 0)]
    locations = {(loc.rule, loc.location): loc.findings for loc in summary.locations}
    assert locations == {
        ("hetu.real", "/identifier/0/value"): 4,
        ("hetu.real", "url:query:identifier"): 2,
        ("hetu.malformed_test", "/identifier/0/value"): 1,
        ("unscannable", "body"): 1,
    }

    # REAL, sent five times in two forms, is one keyed hash; REAL_2 (once) is not repeated.
    assert summary.repeated_total == 1
    (repeat,) = summary.repeated
    assert HASH.fullmatch(repeat.value_hash)
    assert (repeat.requests, repeat.findings, repeat.rules) == (5, 5, ("hetu.real",))
    assert repeat.evidence == "******-****"
    assert (repeat.first, repeat.last) == ("2026-03-02T08:30:00.000Z", "2026-03-04T10:30:00.000Z")

    assert summary.unreadable == 1
    (bad,) = summary.unreadable_lines
    assert (Path(bad.path).name, bad.reason) == ("blocked.jsonl", "not JSON")
    assert bad.line == sum(1 for _ in campaign.open("rb"))
    assert_no_raw_code(*outputs(summary))


def test_rotated_backups_can_be_left_out(campaign: Path) -> None:
    """With ``rotated=False`` only the files named are read."""
    summary = summarise([campaign], rotated=False)
    assert [Path(f.path).name for f in summary.files] == ["blocked.jsonl"]
    assert summary.requests < 8


def test_a_file_reached_twice_is_read_once(campaign: Path) -> None:
    """A file named twice, a backup also named, or a link to it: read once."""
    link = campaign.parent / "link.jsonl"
    link.symlink_to(campaign)
    named = [campaign, campaign.with_name("blocked.jsonl.1"), campaign, link]
    assert log_files(named) == log_files([campaign])
    assert summarise(named).requests == 8


def test_a_missing_file_or_a_folder_is_an_error(tmp_path: Path, campaign: Path) -> None:
    """Nothing is summed up from a partial set of files; the message names the file."""
    with pytest.raises(LogReadError, match=r"cannot read .*missing\.jsonl: No such file"):
        summarise([campaign, tmp_path / "missing.jsonl"])
    with pytest.raises(LogReadError, match="not a file"):
        summarise([tmp_path])


def test_an_empty_log(tmp_path: Path) -> None:
    """An empty file is a report of nothing, in every output."""
    path = tmp_path / "empty.jsonl"
    path.touch()
    summary = summarise([path])
    assert (summary.requests, summary.unreadable, summary.first, summary.days) == (0, 0, None, ())
    assert summary.files[0].lines == 0
    text = render_text(summary)
    assert "0 requests; no records" in text
    page = lxml.html.fromstring(render_html(summary))
    assert page.xpath("//svg") == []
    assert reading_line(summary) == "1 file read: 0 lines, 0 requests, 0 events, 0 unreadable"


def test_a_gzip_backup_is_read(campaign: Path) -> None:
    """A backup compressed by an operator (``LOG.2.gz``) is found and read like the others."""
    backup = campaign.with_name("blocked.jsonl.2")
    backup.with_name(backup.name + ".gz").write_bytes(gzip.compress(backup.read_bytes()))
    backup.unlink()
    summary = summarise([campaign])
    assert summary.requests == 8
    assert [f.compressed for f in summary.files].count(True) == 1


def test_a_damaged_gzip_backup_is_counted_not_raised(campaign: Path) -> None:
    """A compressed backup cut short: what could be read counts, the rest is one unreadable
    stretch."""
    backup = campaign.with_name("blocked.jsonl.1")
    data = gzip.compress(backup.read_bytes())
    backup.unlink()
    campaign.with_name("blocked.jsonl.1.gz").write_bytes(data[: len(data) // 2])
    summary = summarise([campaign])
    assert summary.requests < 8
    reasons = [u.reason for u in summary.unreadable_lines]
    assert "compressed data damaged; the rest of it unread" in reasons


GOOD = {
    "time": "2026-03-02T08:30:00.000Z",
    "verdict": "block",
    "host": "at.kanta.test",
    "rules": ["hetu.real"],
    "findings": [
        {
            "rule": "hetu.real",
            "role": "patient",
            "location": "/x",
            "evidence": "******-****",
            "value_hash": "hmac:0123456789abcdef",
        }
    ],
}


def _line(**changes: object) -> bytes:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not None}).encode() + b"\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"garbage\n", "not JSON"),
        (b'{"time": "2026-03-02T08:30:00Z", "verdict": \n', "not JSON"),  # cut short
        (b'{"host": "\xff"}\n', "not UTF-8"),
        (b"[" * 100_000 + b"\n", "not JSON"),  # nesting deeper than json.loads recurses
        (b"[1, 2]\n", "not a JSON object"),
        (_line(time=None), "not a record: no time in ISO 8601"),
        (_line(time="yesterday"), "not a record: no time in ISO 8601"),
        (_line(verdict="maybe"), "not a record: no verdict (block, warn, pass) and no event"),
        (_line(host=7), "not a record: host is not a string"),
        (_line(rules="hetu.real"), "not a record: rules is not a list of names"),
        (_line(findings={}), "not a record: findings is not a list"),
        (_line(findings=[{"role": "x"}]), "not a record: a finding is not an object"),
        (_line(findings=[{"rule": "r", "location": 3}]), "not a record: a finding is not an"),
        (_line(findings_omitted=-1), "not a record: findings_omitted is not a count"),
        (
            json.dumps({"time": GOOD["time"], "event": 5}).encode() + b"\n",
            "not a record: event is not a name",
        ),
    ],
)
def test_unreadable_lines_are_counted_with_their_line(
    tmp_path: Path, line: bytes, reason: str
) -> None:
    """A line that is not a record is counted and named (file, line, why); the others count."""
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line() + b"\n" + line + _line())
    summary = summarise([path])
    assert summary.requests == 2
    assert summary.unreadable == 1
    (bad,) = summary.unreadable_lines
    assert bad.line == 3  # the blank line 2 is skipped, not unreadable
    assert bad.reason.startswith(reason)
    assert summary.files[0].lines == 3


def test_a_line_too_long_is_skipped_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line past MAX_LINE_BYTES is unreadable and skipped without being kept whole."""
    monkeypatch.setattr("kanta_guard.report.MAX_LINE_BYTES", 1000)
    path = tmp_path / "log.jsonl"
    path.write_bytes(_line() + b'{"x": "' + b"a" * 10_000 + b'"}\n' + _line())
    summary = summarise([path])
    assert (summary.requests, summary.unreadable) == (2, 1)
    assert summary.unreadable_lines[0].line == 2
    assert summary.unreadable_lines[0].reason == "longer than 1000 bytes"


def test_only_the_first_unreadable_lines_are_listed(tmp_path: Path) -> None:
    """All unreadable lines are counted; the first 20 are listed."""
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"x\n" * 50 + _line())
    summary = summarise([path])
    assert summary.unreadable == 50
    assert [u.line for u in summary.unreadable_lines] == list(range(1, 21))
    assert "and 30 more unreadable lines" in render_text(summary)


def test_raw_codes_in_a_hand_edited_log_are_masked(tmp_path: Path) -> None:
    """A log not written by the guard (raw codes in every field, in escaped forms, a value
    hash that is no keyed hash) shows none of them."""
    finding = {
        "rule": f"rule-{REAL}",
        "role": REAL_2,
        "location": f"/Patient/{REAL.replace('-', '%2D')}",
        "evidence": REAL,
        "value_hash": REAL,
    }
    record = {**GOOD, "host": f"{REAL_2}.kanta.test", "rules": [REAL], "findings": [finding]}
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n", "utf-8")
    summary = summarise([path])
    assert summary.requests == 2
    assert summary.repeated == ()  # the value hash was not a keyed hash: dropped
    assert_no_raw_code(*outputs(summary))
    assert REAL.replace("-", "%2D") not in render_text(summary)


def test_test_codes_stay_readable(tmp_path: Path) -> None:
    """A wrong-check test code sent again is shown as it is (the tester needs to see it to fix
    it); a real code beside it is masked."""
    scanner = Scanner(identity_policy(), KeyedHasher(KEY))
    path = tmp_path / "blocked.jsonl"
    with EventLog(path) as log:
        for number, code in enumerate((WRONG_CHECK, WRONG_CHECK, REAL, REAL)):
            request = Request("POST", "/fhir/Patient", JSON, patient(code))
            log.write(
                make_record(
                    scanner.scan(request),
                    flow_id=str(number),
                    client=None,
                    method="POST",
                    host="at.kanta.test",
                    path="/fhir/Patient",
                )
            )
    summary = summarise([path])
    assert {r.evidence for r in summary.repeated} == {WRONG_CHECK, "******-****"}
    assert WRONG_CHECK in render_text(summary) and WRONG_CHECK in render_html(summary)
    assert_no_raw_code(*outputs(summary))


# -- text -----------------------------------------------------------------------------------------


def test_text_fits_100_columns_and_shows_no_control_characters(tmp_path: Path) -> None:
    """Long locations and hosts are cut in the middle; escape sequences and bidi overrides in
    log strings are shown as ``\\uXXXX``."""
    long_location = "/ClinicalDocument" + "/component/structuredBody" * 10 + "/id/@extension"
    finding = {**GOOD["findings"][0], "location": long_location}  # type: ignore[index]
    path = tmp_path / "log.jsonl"
    path.write_text(
        json.dumps({**GOOD, "host": "h" * 150 + ".kanta.test", "findings": [finding]})
        + "\n"
        + json.dumps({**GOOD, "host": "\x1b[31mred\u202eevil"})
        + "\n",
        "utf-8",
    )
    text = render_text(summarise([path]))
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" in text and long_location[-14:] in text  # the end of a location survives
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\u001b[31mred\\u202eevil" in text


def test_top_limits_each_table(campaign: Path) -> None:
    """``top`` keeps that many rows, says how many there were; 0 keeps all."""
    one = summarise([campaign], top=1)
    assert [r.key for r in one.rules.rows] == ["hetu.real"] and one.rules.total == 3
    assert len(one.hosts.rows) == 1 and one.hosts.total == 3
    assert len(one.locations) == 1 and one.locations_total == 4
    text = render_text(one)
    assert "By rule (top 1 of 3)" in text
    assert "… and 2 more hosts" in text
    assert "By day (UTC), the last 1 of 3" in text
    every = summarise([campaign], top=0)
    assert len(every.rules.rows) == 3 and len(every.locations) == 4
    assert "(top " not in render_text(every)
    with pytest.raises(ValueError):
        summarise([campaign], top=-1)


def test_text_report_reads_as_tables(campaign: Path) -> None:
    """The text report: a headline, a table per dimension, the files and unreadable lines."""
    text = render_text(summarise([campaign]))
    lines = text.splitlines()
    assert lines[0] == (
        "kanta-guard report: 8 requests, 7 blocked, 1 warned; "
        "2026-03-02 08:30 to 2026-03-04 10:30 UTC"
    )
    for title in ("By rule", "By role", "By host", "By day (UTC)", "Top locations"):
        assert title in lines
    assert re.search(r"^  hetu\.real +6 +6 +0 +6$", text, re.MULTILINE)
    assert re.search(r"^  hmac:[0-9a-f]{16}  \*{6}-\*{4}  hetu\.real +5 +5 ", text, re.MULTILINE)
    assert "Unreadable lines: 1" in lines


# -- HTML -----------------------------------------------------------------------------------------


def test_html_is_one_self_contained_page_holding_the_counts(campaign: Path) -> None:
    """The page parses, holds the counts and the charts, and loads nothing from anywhere."""
    page = render_html(summarise([campaign]))
    tree = lxml.html.fromstring(page)
    cards = {
        card.get("data-count"): card.findtext("b") for card in tree.xpath("//div[@data-count]")
    }
    assert cards["requests"] == "8" and cards["blocked"] == "7" and cards["warned"] == "1"
    assert cards["repeated values"] == "1" and cards["unreadable lines"] == "1"
    rule_rows = {
        row.xpath("string(td[1])"): [td.text_content() for td in row.xpath("td")[1:]]
        for row in tree.xpath("//section[@id='rules']//tbody/tr")
    }
    assert rule_rows["hetu.real"] == ["6", "6", "0", "6"]
    day_bars = tree.xpath("//section[@id='days']//svg//rect")
    assert len(day_bars) == 4  # three days; the first holds blocked and warned
    assert sorted(r.findtext("title") for r in day_bars)[0] == "2026-03-02: 1 warned"
    assert len(tree.xpath("//section[@id='rules']//svg//rect")) == 3
    assert tree.xpath("//script") == [] and tree.xpath("//link") == []
    assert tree.xpath("//*[@src]") == []
    assert not re.search(r"(?:href|src)\s*=\s*['\"]?(?:https?:)?//", page)
    assert "url(" not in page


def test_html_escapes_what_it_shows(tmp_path: Path) -> None:
    """Markup in a log string is text on the page, not markup."""
    path = tmp_path / "log.jsonl"
    host = '<script>alert("x")</script><img src=x>'
    path.write_text(json.dumps({**GOOD, "host": host}) + "\n", "utf-8")
    page = render_html(summarise([path]))
    tree = lxml.html.fromstring(page)
    assert tree.xpath("//script") == [] and tree.xpath("//img") == []
    assert host in tree.xpath("string(//section[@id='hosts']//tbody/tr/td[1])")


def test_day_chart_shows_days_without_requests(tmp_path: Path) -> None:
    """Days between the first and the last without a request are gaps on the time axis."""
    path = tmp_path / "log.jsonl"
    path.write_text(
        json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "time": "2026-03-12T10:00:00.000Z"}) + "\n",
        "utf-8",
    )
    tree = lxml.html.fromstring(render_html(summarise([path])))
    labels = tree.xpath("//section[@id='days']//svg/text/text()")
    assert "2026-03-02 to 2026-03-12" in labels
    assert len(tree.xpath("//section[@id='days']//svg//rect")) == 2


# -- cost -----------------------------------------------------------------------------------------


def _big_log(path: Path, records: int) -> None:
    """``records`` records, every one with a distinct keyed hash and location, and one shared."""
    with path.open("w", encoding="utf-8") as file:
        for n in range(records):
            findings = [
                {**GOOD["findings"][0], "location": f"/entry/{n}"},  # type: ignore[index]
                {**GOOD["findings"][0], "value_hash": f"hmac:{n:016x}"},  # type: ignore[index]
            ]
            day = START + timedelta(minutes=n)
            file.write(json.dumps({**GOOD, "time": day.isoformat(), "findings": findings}) + "\n")


def _timed(path: Path) -> float:
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        summarise([path])
        best = min(best, time.perf_counter() - began)
    return best


def test_time_grows_linearly(tmp_path: Path) -> None:
    """Eight times the records (all distinct values) cost about eight times the time, not 64."""
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    _big_log(small, 2_000)
    _big_log(large, 16_000)
    summarise([small])  # warm: the masking tables are built on first use
    ratio = _timed(large) / max(_timed(small), 1e-4)
    assert ratio < 8 * 2.5, f"x{ratio:.1f}"


def test_memory_is_bounded_by_the_counters_not_the_file(tmp_path: Path) -> None:
    """Reading 20,000 records that repeat the same few keys keeps a small peak: lines are not
    kept."""
    path = tmp_path / "log.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for _ in range(20_000):
            file.write(json.dumps(GOOD) + "\n")
    size = os.path.getsize(path)
    tracemalloc.start()
    try:
        summary = summarise([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.requests == 20_000
    assert size > 4_000_000
    assert peak < 1_000_000, f"peak {peak} bytes for a {size}-byte log"
