"""The "kanta-guard" content view: a flow's findings, with their locations, in mitmweb."""

from __future__ import annotations

from mitmproxy import contentviews

from .flows import METADATA_KEY

__all__ = ["KantaGuardView"]


class KantaGuardView(contentviews.Contentview):
    """Lists every finding of a flagged request: rule, role, location, masked evidence, hash."""

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
        return "\n".join(lines)

    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        flow = metadata.flow
        if flow is None or METADATA_KEY not in flow.metadata:
            return -1
        if metadata.http_message is not None and metadata.http_message is not getattr(
            flow, "request", None
        ):
            return -1
        report = flow.metadata[METADATA_KEY]
        # On a flagged request, show the findings first; on a clean one, leave the usual view.
        return 2 if report.get("findings") else -1
