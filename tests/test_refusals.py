"""Tests for kanta_guard.refusals: refusals are findings that always block, masked."""

from __future__ import annotations

from helpers import REAL

from kanta_guard.answer import blocked_answer
from kanta_guard.model import Action, Report, Verdict
from kanta_guard.refusals import refused_report, unavailable_report, with_findings
from kanta_guard.rules import REFUSED


def test_refused_report_blocks_with_403() -> None:
    """A refused path is a protocol.refused block, answered 403."""
    report = refused_report("raw TCP", "connection")
    assert report.verdict is Verdict.BLOCK and report.rules == ("protocol.refused",)
    assert blocked_answer(report).status == 403


def test_unavailable_report_is_503() -> None:
    """The guard unable to judge is guard.unavailable, answered 503."""
    report = unavailable_report("no policy")
    assert report.rules == ("guard.unavailable",)
    assert blocked_answer(report).status == 503


def test_reasons_are_masked() -> None:
    """A reason or location that quotes request text never carries a raw code."""
    report = refused_report(f"host {REAL}.x", f"authority {REAL}")
    assert REAL not in report.findings[0].explanation
    assert REAL not in report.findings[0].location


def test_with_findings_turns_a_pass_into_a_block() -> None:
    """Adding a refusal to a passing report blocks it, keeping the report's own findings."""
    extra = refused_report("upgrade").findings[0]
    report = with_findings(Report(Verdict.PASS), extra)
    assert report.verdict is Verdict.BLOCK and report.findings == (extra,)
    assert with_findings(Report(Verdict.PASS)) == Report(Verdict.PASS)
    assert extra.action is Action.BLOCK and extra.rule == REFUSED.id
