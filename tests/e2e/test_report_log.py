"""End to end: the real proxy blocks a campaign's requests into a rotating log, then
``kanta-guard report`` sums that log up (text, JSON, HTML) and Chromium shows the page.

The proxy runs with a small ``[log] max_bytes``, so the log rotates (``LOG.1``, ``LOG.2`` …)
while the requests go through; the report must count every request from every file. Real-range
codes are computed (``helpers.REAL``) and must appear in no output and in no log file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from helpers import REAL, REAL_2, TEST, identity_policy_text

from kanta_guard.report import summarise

from .browser import artifacts, browser_page
from .conftest import GuardProxy, Upstream, clean_env, marker, requests_session

pytestmark = pytest.mark.e2e

RAW = (REAL, REAL_2, REAL.replace("-", ""))
WRONG_CHECK = TEST[:-1] + "D"  # a test code with a wrong check character: warned, forwarded
#: What the campaign sends and the log must hold: blocked and warned requests.
BLOCKED, WARNED = 8, 2


def patient(code: str) -> str:
    return json.dumps(
        {"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.246.21", "value": code}]}
    )


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Path]:
    """The proxy with a log rotating every ~2 kB, and a campaign sent through it; yields the log.

    REAL goes five times in a FHIR body (one keyed hash, five requests), REAL_2 twice in a URL,
    a wrong-check test code twice (warned), one request to a host outside ``[upstream] hosts``,
    and two clean requests (not logged).
    """
    workdir = tmp_path_factory.mktemp("report-proxy")
    policy = workdir / "policy.toml"
    policy.write_text(identity_policy_text() + "\n[log]\nmax_bytes = 2000\nbackups = 50\n")
    log = workdir / "blocked.jsonl"
    guard = GuardProxy(workdir, log, ["--policy", str(policy), "--workers", "0"])
    guard.start()
    headers = {"Content-Type": "application/fhir+json"}
    try:
        with requests_session(guard) as session:
            sent = [
                *(
                    session.post(upstream.url(marker("real")), data=patient(REAL), headers=headers)
                    for _ in range(5)
                ),
                *(
                    session.get(upstream.url(f"{marker('url')}?identifier={REAL_2}"))
                    for _ in range(2)
                ),
                *(
                    session.post(
                        upstream.url(marker("warn")), data=patient(WRONG_CHECK), headers=headers
                    )
                    for _ in range(2)
                ),
                session.get("http://elsewhere.kanta.test/fhir/Patient"),
                *(
                    session.post(upstream.url(marker("clean")), data=patient(TEST), headers=headers)
                    for _ in range(2)
                ),
            ]
        assert [r.status_code for r in sent].count(200) == WARNED + 2  # warned and clean pass
        deadline = time.monotonic() + 10
        while summarise([log]).requests < BLOCKED + WARNED and time.monotonic() < deadline:
            time.sleep(0.1)
        yield log
    finally:
        guard.stop()


def report(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m kanta_guard report ARGS`` as a tester runs it."""
    return subprocess.run(
        [sys.executable, "-m", "kanta_guard", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )


def assert_clean(*texts: str) -> None:
    for text in texts:
        for raw in RAW:
            assert raw not in text


def test_the_log_rotated_and_every_file_is_counted(campaign: Path) -> None:
    """The proxy's log rotated; the JSON report counts every logged request from every file."""
    backups = sorted(campaign.parent.glob("blocked.jsonl.*"))
    assert len(backups) >= 2
    done = report("--format", "json", "--top", "0", str(campaign))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert len(summary["files"]) == len(backups) + 1
    assert (summary["requests"], summary["blocked"], summary["warned"]) == (
        BLOCKED + WARNED,
        BLOCKED,
        WARNED,
    )
    assert summary["unreadable"] == 0
    assert dict(summary["events"])["policy"] == 1
    rules = {row["key"]: row["requests"] for row in summary["rules"]["rows"]}
    assert rules == {"hetu.real": 7, "hetu.malformed_test": 2, "upstream.not-allowed": 1}
    hosts = {row["key"]: row["requests"] for row in summary["hosts"]["rows"]}
    assert hosts == {"127.0.0.1": 9, "elsewhere.kanta.test": 1}
    # REAL five times, REAL_2 twice (masked), the wrong-check test code twice (shown).
    repeated = sorted((row["requests"], row["evidence"]) for row in summary["repeated"])
    assert repeated == [(2, "******-****"), (2, WRONG_CHECK), (5, "******-****")]
    logged = "".join(p.read_text("utf-8") for p in [*backups, campaign])
    assert_clean(done.stdout, done.stderr, logged)


def test_text_report_of_the_proxy_log(campaign: Path) -> None:
    """The terminal report: the headline counts, a row per rule, within 100 columns."""
    done = report(str(campaign))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"kanta-guard report: {BLOCKED + WARNED} requests, {BLOCKED} blocked"
    )
    assert any(line.split()[:2] == ["hetu.real", "7"] for line in lines)
    assert max(len(line) for line in lines[:-1]) <= 100
    assert lines[-1].endswith(", 0 unreadable")
    assert_clean(done.stdout, done.stderr)


@pytest.fixture
def page() -> Iterator[Any]:
    yield from browser_page()


def test_html_report_in_chromium(
    campaign: Path, page: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The HTML page parses, holds the counts, and renders in Chromium with its two charts."""
    html_path = campaign.parent / "report.html"
    done = report("--html", str(html_path), str(campaign))
    assert done.returncode == 0, done.stderr
    text = html_path.read_text("utf-8")
    tree = lxml.html.fromstring(text)
    assert tree.xpath("string(//div[@data-count='requests']/b)") == str(BLOCKED + WARNED)
    assert tree.xpath("string(//div[@data-count='blocked']/b)") == str(BLOCKED)
    assert_clean(text)

    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(html_path.as_uri())
    assert page.title() == "kanta-guard report"
    assert page.locator("svg").count() == 2
    assert page.locator("#rules svg rect").count() == 3
    body = page.inner_text("body")
    assert "hetu.real" in body and "upstream.not-allowed" in body
    assert_clean(body)
    page.screenshot(path=artifacts(tmp_path_factory) / "report.png", full_page=True)
