"""SARIF 2.1.0 output of ``kanta-guard scan``, so CI dashboards show findings on the file and line.

Pure: scan reports in, one SARIF log (a JSON-ready dict) out. The format is OASIS SARIF 2.1.0
(https://docs.oasis-open.org/sarif/sarif/v2.1.0/): one run, the tool's rules from
:data:`kanta_guard.rules.RULES`, one result per finding that counts (block → ``error``, warn →
``warning``; ``off`` findings are left out), each on its file (a URI relative to the folder that
was scanned, named by ``uriBaseId``) and, where the finding's location names a line, on that line.
Evidence is what the report holds: masked and keyed-hashed, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from lxml import etree

from .model import Action, Finding, Report
from .rules import RULES, RuleSpec

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "Artifact", "finding_lines", "root_uri", "sarif_log"]

SARIF_VERSION = "2.1.0"
#: The schema OASIS publishes for SARIF 2.1.0 (errata 01), as SARIF §3.13.3 asks ``$schema`` to be.
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

_LEVELS = {Action.BLOCK: "error", Action.WARN: "warning", Action.OFF: "none"}


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file ``scan`` looked at: its path relative to its root, the root, and the outcome.

    ``root`` is the base URI of the folder it was found in (``root_uri``), ``path`` the file's
    path under it (POSIX separators, not yet percent-encoded). ``report`` is None for a file that
    could not be read, ``error`` then says why. ``lines`` maps finding locations to line numbers
    (``finding_lines``). ``request`` names one request of a recording (a HAR or flow file),
    ``#N METHOD URL`` with the URL masked (``Recorded.name``): the artifact is still the file, and
    each result's logical location is named by the request (``#N``), fully qualified by the
    finding's location under it (``#N:/identifier/0/value``).
    """

    path: str
    root: str
    report: Report | None
    error: str = ""
    lines: Mapping[str, int] = field(default_factory=dict)
    request: str = ""


def root_uri(root: Path, cwd: Path) -> str:
    """The base URI of a scanned folder: relative to ``cwd`` (and so to ``%SRCROOT%``, the
    checkout CI runs in) where it lies under it, else an absolute ``file:`` URI; with a slash at
    the end (SARIF §3.14.14: a base URI ends with ``/``)."""
    resolved = root.resolve()
    try:
        relative = resolved.relative_to(cwd.resolve())
    except ValueError:
        return resolved.as_uri().rstrip("/") + "/"
    text = relative.as_posix()
    return "" if text == "." else quote(text) + "/"


_TEXT_LINE = re.compile(r"line ([0-9]+)(?:!.*)?")
#: An XPath as the XML parser writes it: local names, positions where siblings repeat, then an
#: attribute, ``text()`` or a node kind at the end (``parsers/xml.py`` ``_xpath``).
_XPATH = re.compile(
    r"(?:/[A-Za-z_][\w.\-]*(?:\[[0-9]+\])?)+(?:/@[\w.:\-]+|/[a-z\-]+\(\)(?:\[[0-9]+\])?)?"
)
_STEP = re.compile(r"([A-Za-z_][\w.\-]*)(?:\[([0-9]+)\])?")


def finding_lines(data: bytes, report: Report) -> dict[str, int]:
    """The line number of each finding location of a file's report that names one.

    A text field's location is ``line N`` (in every reading: ``line N!how``). An XML field's is
    its XPath in the document, found again in ``data`` (parsed as the guard parses it: no DTD,
    no entities, no network) and given the line its element starts on. A location inside a
    container, a Base64 value or a JSON document has no line of the file: it is left out (its
    result then names the file only).
    """
    lines: dict[str, int] = {}
    xpaths: list[str] = []
    for finding in report.findings:
        if finding.location in lines:
            continue
        text = _TEXT_LINE.fullmatch(finding.location)
        if text:
            lines[finding.location] = int(text.group(1))
        elif _XPATH.fullmatch(finding.location):
            xpaths.append(finding.location)
    if xpaths:
        root = _xml_root(data)
        if root is not None:
            for xpath in xpaths:
                line = _xpath_line(root, xpath)
                if line is not None:
                    lines[xpath] = line
    return lines


def _xml_root(data: bytes) -> etree._Element | None:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None


def _xpath_line(root: etree._Element, xpath: str) -> int | None:
    """The line of the element an XPath of the guard's names, or None where it names none.

    Each step is a local name and a position among the children of that name: one pass over
    each parent's children on the way down, so the cost is the path's, not the document's.
    """
    steps = [s for s in xpath.split("/") if s]
    if not steps:
        return None
    first = _STEP.fullmatch(steps[0])
    if first is None or _local(root.tag) != first.group(1):
        return None
    node = root
    for step in steps[1:]:
        if step.startswith("@") or step.endswith(")") or "()[" in step:
            break  # an attribute or text node: on its element's line
        match = _STEP.fullmatch(step)
        if match is None:
            return None
        name, position = match.group(1), int(match.group(2) or 1)
        found = None
        for child in node:
            if isinstance(child.tag, str) and _local(child.tag) == name:
                position -= 1
                if position == 0:
                    found = child
                    break
        if found is None:
            return None
        node = found
    line = node.sourceline
    return line if isinstance(line, int) and line > 0 else None


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def sarif_log(artifacts: Sequence[Artifact], *, tool_version: str) -> dict[str, object]:
    """The SARIF 2.1.0 log of one ``scan``: one run, every rule, a result per finding that
    counts, a tool notification per file that could not be read."""
    rule_index = {spec.id: index for index, spec in enumerate(RULES)}
    bases: dict[str, str] = {}  # root URI -> its uriBaseId
    for artifact in artifacts:
        bases.setdefault(artifact.root, f"ROOT{len(bases)}")
    results: list[dict[str, object]] = []
    notifications: list[dict[str, object]] = []
    for artifact in artifacts:
        where = {"uri": quote(artifact.path), "uriBaseId": bases[artifact.root]}
        if artifact.report is None:
            what = f"request {artifact.request} of the file" if artifact.request else "the file"
            location: dict[str, object] = {"physicalLocation": {"artifactLocation": where}}
            if artifact.request:
                location["logicalLocations"] = [_request_location(artifact.request)]
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"cannot read {what}: {artifact.error}"},
                    "locations": [location],
                }
            )
            continue
        for finding in _counting(artifact.report.findings):
            results.append(_result(finding, where, artifact, rule_index))
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kanta-guard",
                        "version": tool_version,
                        "rules": [_rule(spec) for spec in RULES],
                    }
                },
                "originalUriBaseIds": {base: _base(root) for root, base in bases.items()},
                "invocations": [
                    {
                        "executionSuccessful": not notifications,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }


def _counting(findings: Sequence[Finding]) -> Iterator[Finding]:
    return (f for f in findings if f.action is not Action.OFF)


def _base(root: str) -> dict[str, str]:
    # SARIF §3.14.14: a relative base URI is itself relative to another (%SRCROOT%: the checkout).
    if root.startswith("file:"):
        return {"uri": root}
    if not root:
        return {"uriBaseId": "%SRCROOT%"}
    return {"uri": root, "uriBaseId": "%SRCROOT%"}


def _rule(spec: RuleSpec) -> dict[str, object]:
    first = spec.summary.split(". ")[0].rstrip(".") + "."
    return {
        "id": spec.id,
        "shortDescription": {"text": first},
        "fullDescription": {"text": spec.summary},
        "defaultConfiguration": {"level": _LEVELS[spec.default]},
        "properties": {"adjustable": spec.adjustable},
    }


def _request_location(request: str) -> dict[str, str]:
    """The logical location of a request of a recording: its number (``#N``)."""
    return {"name": request.split(" ", 1)[0], "fullyQualifiedName": request, "kind": "object"}


def _result(
    finding: Finding,
    where: dict[str, str],
    artifact: Artifact,
    rule_index: Mapping[str, int],
) -> dict[str, object]:
    evidence = f" Evidence: {finding.evidence} {finding.value_hash}." if finding.evidence else ""
    physical: dict[str, object] = {"artifactLocation": where}
    line = artifact.lines.get(finding.location)
    if line is not None:
        physical["region"] = {"startLine": line}
    at = f"{finding.role} at {finding.location}"
    logical = [{"fullyQualifiedName": finding.location}]
    if artifact.request:
        # Named by the request's number; the finding's location under it (SARIF §3.33).
        number = artifact.request.split(" ", 1)[0]
        at += f" in request {artifact.request}"
        logical = [
            {
                "name": number,
                "fullyQualifiedName": f"{number}:{finding.location}",
                "kind": "object",
            }
        ]
    result: dict[str, object] = {
        "ruleId": finding.rule,
        "level": _LEVELS[finding.action],
        "message": {"text": f"{finding.explanation} ({at}).{evidence}"},
        "locations": [{"physicalLocation": physical, "logicalLocations": logical}],
    }
    if finding.rule in rule_index:
        result["ruleIndex"] = rule_index[finding.rule]
    if finding.value_hash:
        result["partialFingerprints"] = {
            "kantaGuardValue/v1": f"{finding.rule}:{finding.value_hash}"
        }
    return result
