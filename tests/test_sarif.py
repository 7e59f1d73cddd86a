"""Tests for kanta_guard.sarif: the SARIF 2.1.0 log of a scan (structure, levels, rules, files,
lines, masked evidence) and ``kanta-guard scan --format sarif``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import REAL, cda, identity_policy_file

from kanta_guard.cli import main, version
from kanta_guard.model import Action, Finding, Report, Role, Verdict
from kanta_guard.rules import RULES
from kanta_guard.sarif import (
    SARIF_SCHEMA,
    SARIF_VERSION,
    Artifact,
    finding_lines,
    root_uri,
    sarif_log,
)

_LEVELS = {"none", "note", "warning", "error"}

#: OASIS's SARIF 2.1.0 schema (see its SOURCE.md).
SCHEMA_FILE = Path(__file__).parent / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"


def check_sarif(log: Any) -> None:
    """The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) this log uses, by hand:
    required properties, their types and enumerations. (``jsonschema`` is not installed in the
    venv; ``test_against_the_schema`` runs the real schema where it is.)"""
    assert log["version"] == "2.1.0" and isinstance(log["$schema"], str)
    assert set(log) <= {"$schema", "version", "runs"}
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert isinstance(driver["name"], str) and driver["name"]
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids))
    for rule in driver["rules"]:
        assert isinstance(rule["shortDescription"]["text"], str)
        assert isinstance(rule["fullDescription"]["text"], str)
        assert rule["defaultConfiguration"]["level"] in _LEVELS
    bases = run.get("originalUriBaseIds", {})
    for base in bases.values():
        # SARIF §3.14.14: absolute, or relative to another base id.
        if "uri" in base:
            assert base["uri"] == "" or base["uri"].endswith("/")
            assert base["uri"].startswith("file:") or base.get("uriBaseId")
    for invocation in run["invocations"]:
        assert isinstance(invocation["executionSuccessful"], bool)
        for note in invocation["toolExecutionNotifications"]:
            assert isinstance(note["message"]["text"], str) and note["level"] in _LEVELS
    for result in run["results"]:
        assert isinstance(result["message"]["text"], str)
        assert result["level"] in _LEVELS
        if "ruleIndex" in result:
            assert ids[result["ruleIndex"]] == result["ruleId"]
        for location in result["locations"]:
            physical = location["physicalLocation"]
            artifact = physical["artifactLocation"]
            assert isinstance(artifact["uri"], str) and artifact["uri"]
            assert not artifact["uri"].startswith(("/", "file:"))
            assert artifact["uriBaseId"] in bases
            if "region" in physical:
                assert isinstance(physical["region"]["startLine"], int)
                assert physical["region"]["startLine"] >= 1
            for logical in location.get("logicalLocations", []):
                assert isinstance(logical["fullyQualifiedName"], str)


def finding(rule: str, action: Action, location: str, evidence: str = "******-****") -> Finding:
    """A finding as the pipeline gives it: masked evidence and a keyed hash."""
    return Finding(rule, action, location, Role.PATIENT, evidence, "hmac:0123456789abcdef", "why")


def test_log_structure_levels_and_rules() -> None:
    """One run naming every rule; a result per finding that counts, block as error and warn as
    warning, its rule index pointing at its rule; off findings are left out."""
    report = Report(
        Verdict.BLOCK,
        (
            finding("hetu.real", Action.BLOCK, "line 3"),
            finding("hetu.malformed_test", Action.WARN, "line 4"),
            finding("cert.expired", Action.OFF, "line 5"),
        ),
    )
    log: Any = sarif_log(
        [Artifact("a.txt", "fx/", report, lines={"line 3": 3})], tool_version="1.2"
    )
    check_sarif(log)
    assert log["$schema"] == SARIF_SCHEMA and log["version"] == SARIF_VERSION
    run: Any = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "kanta-guard"
    assert run["tool"]["driver"]["version"] == "1.2"
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [s.id for s in RULES]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("hetu.real", "error"),
        ("hetu.malformed_test", "warning"),
    ]
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {"startLine": 3}
    assert "region" not in results[1]["locations"][0]["physicalLocation"]
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]


def test_files_relative_to_their_roots() -> None:
    """Each file is named relative to the folder it was found in, percent-encoded, with a base
    id per folder resolved in originalUriBaseIds."""
    clean = Report(Verdict.BLOCK, (finding("hetu.real", Action.BLOCK, "line 1"),))
    log: Any = sarif_log(
        [
            Artifact("sub/a b.txt", "fixtures/", clean),
            Artifact("c.txt", "file:///elsewhere/", clean),
            Artifact("d.txt", "", clean),
        ],
        tool_version="1",
    )
    check_sarif(log)
    run: Any = log["runs"][0]
    where = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert where == [
        {"uri": "sub/a%20b.txt", "uriBaseId": "ROOT0"},
        {"uri": "c.txt", "uriBaseId": "ROOT1"},
        {"uri": "d.txt", "uriBaseId": "ROOT2"},
    ]
    assert run["originalUriBaseIds"] == {
        "ROOT0": {"uri": "fixtures/", "uriBaseId": "%SRCROOT%"},
        "ROOT1": {"uri": "file:///elsewhere/"},
        "ROOT2": {"uriBaseId": "%SRCROOT%"},
    }


def test_unreadable_file_is_a_notification() -> None:
    """A file that could not be read is a tool notification (error) on that file, and the
    invocation did not succeed."""
    log: Any = sarif_log([Artifact("gone.xml", "", None, "No such file")], tool_version="1")
    check_sarif(log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    note = invocation["toolExecutionNotifications"][0]
    assert note["level"] == "error" and "No such file" in note["message"]["text"]


def test_root_uri(tmp_path: Path) -> None:
    """A folder under the working directory is a relative base URI; the working directory
    itself is empty; one outside it is an absolute file URI; each ends with a slash."""
    (tmp_path / "fx" / "sub").mkdir(parents=True)
    assert root_uri(tmp_path / "fx" / "sub", tmp_path) == "fx/sub/"
    assert root_uri(tmp_path, tmp_path) == ""
    outside = root_uri(tmp_path, tmp_path / "fx")
    assert outside.startswith("file:///") and outside.endswith("/")


@pytest.mark.parametrize(
    ("location", "line"),
    [
        ("line 7", 7),
        ("line 7!utf-16-le", 7),  # another reading of the same line
        ("/a/b[2]", 3),
        ("/a/b[2]/@x", 3),
        ("/a/b[2]/c/text()", 4),
        ("/a/b", 2),  # no position: the first of that name
        ("/a/b[3]", None),  # no such element
        ("/z/b", None),  # another root
        ("zip:x.txt:line 2", None),  # a line of something inside the file, not of the file
        ("/entry/0/resource", None),  # a JSON pointer names no line of the file here
    ],
)
def test_finding_lines(location: str, line: int | None) -> None:
    """Text locations give their line, XPaths the line their element starts on; anything else
    none."""
    data = b'<a xmlns="urn:x">\n<b x="1"/>\n<b x="2">\n<c>t</c></b>\n</a>\n'
    report = Report(Verdict.BLOCK, (finding("hetu.real", Action.BLOCK, location),))
    assert finding_lines(data, report).get(location) == line


def test_finding_lines_on_bytes_that_are_not_xml() -> None:
    """An XPath over bytes that do not parse maps to no line; a DTD's external entity is not
    loaded (the element is still found, on its line)."""
    report = Report(Verdict.BLOCK, (finding("hetu.real", Action.BLOCK, "/a/b"),))
    assert finding_lines(b"<a><b>", report) == {}
    bomb = b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a><b>&e;</b></a>'
    assert finding_lines(bomb, report) == {"/a/b": 1}


@pytest.fixture
def scan_sarif(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run ``kanta-guard scan --format sarif`` from ``tmp_path`` over a folder ``fx`` of a
    dirty CDA, a dirty text file and a clean CDA (identity-code rules only): the exit code,
    stdout and stderr."""
    fx = tmp_path / "fx"
    (fx / "sub").mkdir(parents=True)
    (fx / "a.xml").write_text(cda(patient=REAL), "utf-8")
    (fx / "sub" / "b.txt").write_text(f"potilas\n\nhetu {REAL}\n", "utf-8")
    (fx / "clean.xml").write_text(cda(), "utf-8")
    policy = identity_policy_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = main(["scan", "--format", "sarif", "--policy", str(policy), "fx"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_scan_format_sarif(scan_sarif: tuple[int, str, str]) -> None:
    """``scan --format sarif`` writes a valid log: findings on their file (relative to the
    scanned folder) and line, masked evidence only, the summary on stderr, exit 1."""
    code, out, err = scan_sarif
    assert code == 1
    log = json.loads(out)
    check_sarif(log)
    assert REAL not in out + err
    run = log["runs"][0]
    assert run["tool"]["driver"]["version"] == version()
    assert run["originalUriBaseIds"] == {"ROOT0": {"uri": "fx/", "uriBaseId": "%SRCROOT%"}}
    placed = {
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"),
        )
        for r in run["results"]
    }
    xml_line = 1 + cda(patient=REAL).split("\n").index(
        next(x for x in cda(patient=REAL).split("\n") if REAL in x)
    )
    assert placed == {("hetu.real", "a.xml", xml_line), ("hetu.real", "sub/b.txt", 3)}
    for result in run["results"]:
        assert "******-****" in result["message"]["text"]
        assert "hmac:" in result["message"]["text"]
    assert err.strip().endswith("1 passed, 0 warned, 2 blocked, 0 unreadable")


def test_against_the_schema(scan_sarif: tuple[int, str, str]) -> None:
    """The log validates against the SARIF 2.1.0 schema (OASIS's, vendored in the fixtures: no
    network in tests), formats included (uri, uri-reference)."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [
        f"{list(e.path)}: {e.message}" for e in validator.iter_errors(json.loads(scan_sarif[1]))
    ]
    assert errors == []


def test_the_schema_check_can_fail() -> None:
    """The schema check finds a broken log (a result without its message, a bad level)."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    broken = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "fatal"}]}],
    }
    assert list(jsonschema.Draft4Validator(schema).iter_errors(broken))
