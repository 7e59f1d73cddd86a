"""Tests for kanta_guard.proxy.flows: the Comment column's line and the marks, from reports."""

from __future__ import annotations

import pytest
from helpers import REAL, TEST
from mitmproxy.test import tflow

from kanta_guard.model import Action, Finding, Recognised, Report, Role, Verdict
from kanta_guard.proxy.flows import MARK_BLOCKED, MARK_WARNED, METADATA_KEY, comment, mark


def finding(
    rule: str = "hetu.real",
    action: Action = Action.BLOCK,
    location: str = "/ClinicalDocument/recordTarget/patientRole/id/@extension",
    role: Role = Role.PATIENT,
) -> Finding:
    """A finding as the pipeline builds one (masked evidence, a keyed hash)."""
    return Finding(rule, action, location, role, "******-****", "hmac:0123456789abcdef", "why")


PATIENT = "/ClinicalDocument/recordTarget/patientRole/id/@extension"

COMMENTS: list[tuple[str, Report, str]] = [
    (
        "blocked: rule and role first, the location last",
        Report(Verdict.BLOCK, (finding(),)),
        f"hetu.real (patient) · block · at {PATIENT}",
    ),
    (
        "other findings counted after the verdict",
        Report(Verdict.BLOCK, (finding(), finding("name.unregistered", Action.WARN))),
        f"hetu.real (patient) · block · +1 more · at {PATIENT}",
    ),
    (
        "findings past the cap counted too",
        Report(Verdict.BLOCK, (finding(),), omitted=250),
        f"hetu.real (patient) · block · +250 more · at {PATIENT}",
    ),
    (
        "warned",
        Report(Verdict.WARN, (finding("hetu.malformed_test", Action.WARN),)),
        f"hetu.malformed_test (patient) · warn · at {PATIENT}",
    ),
    (
        "an unknown role and no location are left out, not printed as noise",
        Report(Verdict.BLOCK, (finding("guard.unavailable", location="", role=Role.UNKNOWN),)),
        "guard.unavailable · block",
    ),
    (
        "off findings do not count",
        Report(Verdict.BLOCK, (finding("name.narrative", Action.OFF), finding())),
        f"hetu.real (patient) · block · at {PATIENT}",
    ),
    (
        "passed, nothing recognised: it still says the guard looked",
        Report(Verdict.PASS),
        "pass · no identity codes",
    ),
    (
        "passed, one field, one code (singular)",
        Report(Verdict.PASS, recognised=Recognised(1, (TEST,))),
        f"pass · 1 identity field · test code {TEST}",
    ),
    (
        "passed, codes in text only",
        Report(Verdict.PASS, recognised=Recognised(0, (TEST, "231069-9711"))),
        f"pass · test codes {TEST}, 231069-9711",
    ),
    (
        "passed, three codes shown, the rest counted (kept and past the report's cap)",
        Report(
            Verdict.PASS,
            recognised=Recognised(
                5, (TEST, "231069-9711", "020516C903K", "030875-999Y", "010594Y9032"), 7
            ),
        ),
        f"pass · 5 identity fields · test codes {TEST}, 231069-9711, 020516C903K +9 more",
    ),
]


@pytest.mark.parametrize(("case", "report", "expected"), COMMENTS, ids=[c[0] for c in COMMENTS])
def test_comment(case: str, report: Report, expected: str) -> None:
    """The comment line says why first, on one line."""
    assert comment(report) == expected
    assert "\n" not in comment(report)


def test_comment_masks_a_real_code_in_the_location() -> None:
    """A location quoting a real code (a JSON key, a URL segment) is masked in the comment."""
    report = Report(Verdict.BLOCK, (finding(location=f"url:/Patient/{REAL}", role=Role.URL),))
    line = comment(report)
    assert REAL not in line
    assert line.startswith("hetu.real (url) · block · at url:/Patient/******-****")


@pytest.mark.parametrize(
    ("verdict", "marked"),
    [(Verdict.BLOCK, MARK_BLOCKED), (Verdict.WARN, MARK_WARNED), (Verdict.PASS, "")],
)
def test_mark(verdict: Verdict, marked: str) -> None:
    """Every judged flow gets its report and a comment; only flagged ones get a mark."""
    f = tflow.tflow()
    findings = (finding(action=Action.WARN),) if verdict is Verdict.WARN else (finding(),)
    report = Report(
        verdict, findings if verdict is not Verdict.PASS else (), recognised=Recognised(2, (TEST,))
    )
    mark(f, report)
    assert f.marked == marked
    assert f.comment == comment(report) != ""
    assert f.metadata[METADATA_KEY] == report.as_dict()


def test_a_pass_then_blocked_is_counted_once() -> None:
    """A request counted as passed and then blocked after all (the server switched protocols,
    a lazy connection met a production server) is counted as a block only: its record counts
    it, and the pass is taken back (once, however often it is recorded)."""
    from kanta_guard.proxy.flows import COUNTED_PASS, record_flow
    from kanta_guard.proxy.state import GuardState

    state = GuardState()
    flow = tflow.tflow()
    state.stats.passed()
    flow.metadata[COUNTED_PASS] = True
    blocked = Report(Verdict.BLOCK, (finding("protocol.refused"),))
    record_flow(state, blocked, flow)
    record_flow(state, blocked, flow)
    counts = state.stats.snapshot().as_dict()["requests"]
    assert counts["pass"] == 0 and counts["block"] == 2, counts
    other = tflow.tflow()  # (a flow never counted as passed takes nothing back)
    state.stats.passed()
    record_flow(state, blocked, other)
    assert state.stats.snapshot().as_dict()["requests"]["pass"] == 1
