"""Reports for what the guard refuses without a detector: paths it does not read, and itself.

A refusal is a finding like any other (a rule id, a location, an explanation), under one of the
fixed rules ``protocol.refused`` or ``guard.unavailable``, so it reaches the blocked answer, the
log and mitmweb by the same road as a detector's finding. Reasons are masked here: they may name a
host or a header the request sent.
"""

from __future__ import annotations

from .idcode import mask_text
from .model import Action, Finding, Protocol, Report, Role, Verdict
from .rules import REFUSED, UNAVAILABLE, RuleSpec

__all__ = ["refusal", "refused_report", "unavailable_report", "with_findings"]


def refusal(rule: RuleSpec, reason: str, location: str = "request") -> Finding:
    """A blocking finding of ``rule`` (always block: refusals are not the policy's to weaken)."""
    return Finding(
        rule=rule.id,
        action=Action.BLOCK,
        location=mask_text(location),
        role=Role.UNKNOWN,
        evidence="",
        value_hash="",
        explanation=mask_text(reason),
    )


def refused_report(
    reason: str, location: str = "request", protocol: Protocol = Protocol.OTHER
) -> Report:
    """A path the guard does not read (raw TCP, passthrough, an upgrade): ``protocol.refused``."""
    return Report(Verdict.BLOCK, (refusal(REFUSED, reason, location),), protocol)


def unavailable_report(reason: str, protocol: Protocol = Protocol.OTHER) -> Report:
    """The guard cannot judge right now (no policy, no log): ``guard.unavailable``, 503."""
    return Report(Verdict.BLOCK, (refusal(UNAVAILABLE, reason, "guard"),), protocol)


def with_findings(report: Report, *findings: Finding) -> Report:
    """``report`` with blocking ``findings`` added after its own: the verdict becomes block."""
    if not findings:
        return report
    return Report(
        verdict=Verdict.BLOCK,
        findings=report.findings + findings,
        protocol=report.protocol,
        fields_scanned=report.fields_scanned,
        payloads_scanned=report.payloads_scanned,
    )
