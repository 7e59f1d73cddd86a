"""The "kanta-guard" content view: a flow's findings, with their locations, in mitmweb."""

from __future__ import annotations

from typing import Any

from mitmproxy import contentviews

from .flows import METADATA_KEY

__all__ = ["PRIORITY", "KantaGuardView"]

#: The view's ``render_priority`` on a flagged request: above every view mitmproxy ships (its
#: highest is 2, GraphQL's; ties go to the view registered first, which is never this one), so
#: that mitmweb, which asks the proxy for the "auto" view, opens the findings without a choice.
PRIORITY = 100.0


class KantaGuardView(contentviews.Contentview):
    """Lists every finding of a flagged request: rule, role, location, masked evidence, hash;
    for a clean one, what the guard recognised."""

    @property
    def name(self) -> str:
        return "kanta-guard"

    def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
        flow = metadata.flow
        report = flow.metadata.get(METADATA_KEY) if flow is not None else None
        if not report:
            return "kanta-guard: not scanned (no request hook ran for this flow)"
        lines = [f"kanta-guard verdict: {report['verdict']}"]
        findings = report.get("findings") or []
        if not findings:
            lines.append("no findings")
        for finding in findings:
            lines.append("")
            lines.append(f"{finding['action']:<5} {finding['rule']}  ({finding['role']})")
            lines.append(f"      at {finding['location']}")
            if finding.get("evidence"):
                lines.append(f"      evidence {finding['evidence']}  {finding['value_hash']}")
            lines.append(f"      {finding['explanation']}")
        if report.get("findings_omitted"):
            least = "at least " if report.get("findings_omitted_at_least") else ""
            lines += ["", f"and {least}{report['findings_omitted']} more findings, not listed"]
        seen = report.get("recognised")
        if seen:
            # Valid 900-series codes: test codes, not personal data (shown whole).
            codes = ", ".join(seen.get("test_codes") or []) or "none"
            if seen.get("more_test_codes"):
                codes += f" and {seen['more_test_codes']} more"
            lines += [
                "",
                f"recognised: {seen['identity_fields']} identity fields; test codes {codes}",
            ]
        return "\n".join(lines)

    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        """First on a flagged request; on the response of one only when the request has no
        body (mitmweb shows "No content" for an empty body without asking any view: the
        findings of a request flagged for its URL or headers then open on its answer)."""
        flow = metadata.flow
        if flow is None or not _flagged(flow):
            return -1
        request = getattr(flow, "request", None)
        message = metadata.http_message
        if message is None or message is request:
            return PRIORITY
        if message is getattr(flow, "response", None) and request is not None:
            return PRIORITY if not request.raw_content else -1
        return -1


def _flagged(flow: Any) -> bool:
    """True if the guard's report on the flow has findings (it was blocked or warned)."""
    report = flow.metadata.get(METADATA_KEY)
    return bool(report and report.get("findings"))
