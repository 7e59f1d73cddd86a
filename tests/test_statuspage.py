"""Tests for kanta_guard.statuspage: the status as one self-contained, escaped HTML page."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import pytest
from helpers import REAL, TEST

from kanta_guard import KeyedHasher, Scanner, default_policy
from kanta_guard.eventlog import EventLog, make_record
from kanta_guard.model import Action, Finding, Protocol, Report, Role, Verdict
from kanta_guard.proxy.state import GuardState
from kanta_guard.statuspage import render


def blocked_record(host: str = "kanta.test", evidence: str = "******-****") -> dict[str, object]:
    report = Report(
        Verdict.BLOCK,
        (
            Finding(
                "hetu.real",
                Action.BLOCK,
                "/ClinicalDocument/recordTarget/patientRole/id/@extension",
                Role.PATIENT,
                evidence,
                "hmac:0123456789abcdef",
                "a real personal identity code",
            ),
        ),
        Protocol.SOAP11,
    )
    return make_record(
        report, flow_id="f", client=None, method="POST", host=host, path="/services/pt"
    )


@pytest.fixture
def state(tmp_path: Path) -> GuardState:
    """A configured state that has passed two requests and blocked one."""
    policy = default_policy()
    state = GuardState(
        policy=policy,
        scanner=Scanner(policy, KeyedHasher(b"k" * 32)),
        log=EventLog(tmp_path / "blocked.jsonl"),
        config_error=None,
    )
    state.stats.passed()
    state.stats.passed()
    state.stats.scanned(0.002)
    state.write(blocked_record())
    return state


def text_of(page: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (whitespace collapsed)."""
    (element,) = lxml.html.fromstring(page).xpath(f'//*[@id="{element_id}"]')
    return " ".join(" ".join(element.itertext()).split())


def test_page_shows_counts_last_block_policy_workers_and_log(state: GuardState) -> None:
    """Counts by verdict, the last block with its masked evidence, rules, the policy, the
    workers and the log are all on the page."""
    page = render(state.status())
    assert text_of(page, "count-pass").startswith("2")
    assert text_of(page, "count-block").startswith("1")
    assert text_of(page, "count-warn").startswith("0")
    assert text_of(page, "ready") == "ready"
    recent = text_of(page, "recent")
    assert "kanta.test/services/pt" in recent and "******-****" in recent
    assert "hetu.real (patient) at /ClinicalDocument" in recent
    assert "hetu.real block 1" in text_of(page, "rules")
    assert "<embedded default>" in lxml.html.fromstring(page).text_content()
    assert default_policy().digest in page
    assert "hetu.real block" in text_of(page, "actions")
    assert "no workers: scans on the proxy thread" in page
    assert str(state.log.path) in page  # type: ignore[union-attr]
    assert "writable" in page and "independent" in page


def test_page_says_why_the_guard_is_not_ready() -> None:
    """An unconfigured guard's page says it refuses everything, and why."""
    page = render(GuardState().status())
    assert text_of(page, "ready") == "not ready: refusing all traffic"
    assert "has not been configured yet" in page
    assert "No valid policy is active" in page


def test_page_is_self_contained() -> None:
    """No script, stylesheet link, image, font or any URL from outside: CSS is inline."""
    page = render(GuardState().status())
    for outside in ("<script", "<link", "<img", "@import", "url(", "src=", "http://", "https://"):
        assert outside not in page
    assert "<style>" in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs == ["status.json", "metrics"]
    assert 'href="' not in render(GuardState().status(), json_href=None, metrics_href=None)


def test_everything_is_escaped(state: GuardState) -> None:
    """Markup in any value (a host, a policy source) is shown as text, never run."""
    state.write(blocked_record(host='<script>alert("x")</script>.test'))
    status = state.status()
    status["reason"] = "<b>bold</b>"
    page = render(status)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert '<img src=x onerror="y">' not in render(
        {"ready": False, "reason": '<img src=x onerror="y">'}
    )


def test_no_raw_code_anywhere_even_if_handed_one(state: GuardState) -> None:
    """A real-range code handed to the page in any value is masked; a 900-series code shows."""
    state.write(blocked_record(evidence=TEST))
    status = state.status()
    status["reason"] = f"about {REAL}"
    status["testing"] = REAL
    status["stats"]["recent_blocks"][0]["host"] = REAL  # type: ignore[index]
    page = render(status)
    assert REAL not in page and REAL.lower() not in page
    assert TEST in page


@pytest.mark.parametrize("broken", [{}, {"stats": "nonsense"}, {"stats": {"requests": [1]}}])
def test_odd_input_still_renders(broken: dict[str, object]) -> None:
    """Missing or ill-typed parts render as empty, never as an exception."""
    page = render(broken)
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
