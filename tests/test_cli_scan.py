"""Tests for ``kanta-guard scan`` in CI: folders walked (hidden skipped, globs), the summary, the
exit status, ``--format``, ``--version`` and ``python -m kanta_guard``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
from helpers import REAL, TEST, cda, identity_policy_file

from kanta_guard import cli
from kanta_guard.cli import main

#: A 900-series code with a wrong check character: a warning (hetu.malformed_test), not a block.
BAD_TEST = TEST[:-1] + ("D" if TEST[-1] != "D" else "E")


@pytest.fixture
def policy(tmp_path: Path) -> list[str]:
    """``--policy`` on the identity-code rules only (kept out of the scanned folders)."""
    folder = tmp_path / "policy"
    folder.mkdir()
    return ["--policy", str(identity_policy_file(folder))]


def tree(root: Path, files: dict[str, str]) -> Path:
    """Files (path under ``root``: text) written under ``root``; returns ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return root


def scanned(
    capsys: pytest.CaptureFixture[str], policy: list[str], *args: str
) -> tuple[int, list[str], dict[str, object]]:
    """Run ``scan --format json``: the exit code, the paths scanned (relative to the first
    path argument when under it, else the name) and the summary."""
    code = main(["scan", "--format", "json", *policy, *args])
    out = json.loads(capsys.readouterr().out)
    base = Path(args[-1])
    paths = []
    for entry in out["files"]:
        path = Path(entry["path"])
        under = path.is_relative_to(base) and path != base
        paths.append(path.relative_to(base).as_posix() if under else path.name)
    return code, sorted(paths), out["summary"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the installed package's version and exits 0."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kanta-guard {metadata.version('kanta-guard')}"


def test_version_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without package metadata (run from a source tree) the version is the package's own, or
    "unknown"; it never fails."""

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr("importlib.metadata.version", missing)
    monkeypatch.setattr(sys.modules["kanta_guard"], "__version__", "9.9", raising=False)
    assert cli.version() == "9.9"
    monkeypatch.delattr(sys.modules["kanta_guard"], "__version__")
    assert cli.version() == "unknown"


def test_python_dash_m(tmp_path: Path) -> None:
    """``python -m kanta_guard`` is the same command line: --version, and a scan's exit code."""
    done = subprocess.run(
        [sys.executable, "-m", "kanta_guard", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("kanta-guard ")
    dirty = tmp_path / "dirty.xml"
    dirty.write_text(cda(patient=REAL), "utf-8")
    env = {**os.environ, "KANTA_GUARD_HASH_KEY": "kanta-guard-test-key-0123456789"}
    done = subprocess.run(
        [sys.executable, "-m", "kanta_guard", "scan", str(dirty)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert "BLOCK" in done.stdout and REAL not in done.stdout + done.stderr


def test_hidden_files_and_folders_are_skipped(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """In a folder, .git and other hidden folders and files are not read unless --hidden."""
    root = tree(
        tmp_path / "repo",
        {
            "doc.xml": cda(),
            ".git/objects/ab/cdef": f"hetu={REAL}",
            ".cache/doc.xml": cda(patient=REAL),
            "sub/.hidden.xml": cda(patient=REAL),
            "sub/ok.txt": "nothing here",
        },
    )
    code, paths, summary = scanned(capsys, policy, str(root))
    assert (code, paths) == (0, ["doc.xml", "sub/ok.txt"])
    assert summary == {"files": 2, "passed": 2, "warned": 0, "blocked": 0, "unreadable": 0}
    code, paths, _ = scanned(capsys, policy, "--hidden", str(root))
    assert code == 1
    hidden = [".cache/doc.xml", ".git/objects/ab/cdef", "sub/.hidden.xml"]
    assert paths == sorted([*hidden, "doc.xml", "sub/ok.txt"])


def test_a_hidden_path_named_on_the_command_line_is_scanned(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """A file or folder named on the command line is scanned even when hidden or excluded: the
    rules apply to what a folder holds."""
    root = tree(tmp_path / ".fixtures", {"a.xml": cda(patient=REAL)})
    code, paths, _ = scanned(capsys, policy, str(root))
    assert (code, paths) == (1, ["a.xml"])
    code, paths, _ = scanned(capsys, policy, "--exclude", "*.xml", str(root / "a.xml"))
    assert (code, paths) == (1, ["a.xml"])


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), ["a.xml", "sub/b.json", "sub/deep/c.xml", "vendor/d.xml"]),
        (("--include", "*.xml"), ["a.xml", "sub/deep/c.xml", "vendor/d.xml"]),
        (("--include", "**/*.xml"), ["a.xml", "sub/deep/c.xml", "vendor/d.xml"]),
        (("--include", "sub/*"), ["sub/b.json", "sub/deep/c.xml"]),
        (("--include", "*.json", "--include", "a.*"), ["a.xml", "sub/b.json"]),
        (("--exclude", "vendor"), ["a.xml", "sub/b.json", "sub/deep/c.xml"]),
        (("--exclude", "vendor/"), ["a.xml", "sub/b.json", "sub/deep/c.xml"]),
        (("--exclude", "sub/deep"), ["a.xml", "sub/b.json", "vendor/d.xml"]),
        (("--exclude", "*.xml", "--exclude", "sub/*"), []),
        (("--include", "*.xml", "--exclude", "vendor/*"), ["a.xml", "sub/deep/c.xml"]),
        (("--exclude", "./vendor/*"), ["a.xml", "sub/b.json", "sub/deep/c.xml"]),
    ],
)
def test_include_and_exclude(
    capsys: pytest.CaptureFixture[str],
    policy: list[str],
    tmp_path: Path,
    flags: tuple[str, ...],
    expected: list[str],
) -> None:
    """Globs match the path under the folder or the name; exclude wins; an excluded folder is
    not entered; nothing left is an error (exit 2)."""
    root = tree(
        tmp_path / "fx",
        {
            "a.xml": cda(),
            "sub/b.json": '{"resourceType": "Patient"}',
            "sub/deep/c.xml": cda(),
            "vendor/d.xml": cda(),
        },
    )
    if not expected:
        assert main(["scan", *policy, *flags, str(root)]) == 2
        assert "no file to scan" in capsys.readouterr().err
        return
    code, paths, _ = scanned(capsys, policy, *flags, str(root))
    assert (code, paths) == (0, expected)


def test_summary_line_and_counts(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """The last line of the text output counts the files and how each ended; the JSON output
    holds the same counts, and its summary line goes to stderr (stdout stays JSON)."""
    root = tree(
        tmp_path / "fx",
        {"a.xml": cda(), "b.xml": cda(patient=BAD_TEST), "c.xml": cda(patient=REAL)},
    )
    assert main(["scan", *policy, str(root)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "kanta-guard: 3 files scanned: 1 passed, 1 warned, 1 blocked, 0 unreadable"
    assert [line.split()[0] for line in out if line.startswith(("PASS", "WARN", "BLOCK"))] == [
        "PASS",
        "WARN",
        "BLOCK",
    ]
    assert main(["scan", "--json", *policy, str(root / "a.xml")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"] == {
        "files": 1,
        "passed": 1,
        "warned": 0,
        "blocked": 0,
        "unreadable": 0,
    }
    assert captured.err.strip() == (
        "kanta-guard: 1 file scanned: 1 passed, 0 warned, 0 blocked, 0 unreadable"
    )


def test_json_is_format_json(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """--json is --format json: the same output."""
    path = tree(tmp_path / "fx", {"a.xml": cda(patient=REAL)}) / "a.xml"
    assert main(["scan", "--json", *policy, str(path)]) == 1
    first = capsys.readouterr().out
    assert main(["scan", "--format", "json", *policy, str(path)]) == 1
    assert capsys.readouterr().out == first
    assert REAL not in first


def test_empty_input_is_an_error(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """An empty folder, or one holding only hidden files, exits 2 saying so; nothing on stdout
    (not even an empty JSON or SARIF document a CI step would take for a clean run)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for output in ("text", "json", "sarif"):
        assert main(["scan", "--format", output, *policy, str(empty)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert f"no file to scan in {empty}" in captured.err
    tree(empty, {".git/HEAD": "ref: refs/heads/main", ".env": "x"})
    assert main(["scan", *policy, str(empty)]) == 2
    assert "2 skipped: hidden" in capsys.readouterr().err


def test_io_error_and_block_together_exit_2(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """A file that cannot be read wins over a block (exit 2: the scan is incomplete), and the
    block is still reported and counted."""
    dirty = tree(tmp_path / "fx", {"a.xml": cda(patient=REAL)}) / "a.xml"
    missing = tmp_path / "fx" / "missing.xml"
    assert main(["scan", *policy, str(dirty), str(missing)]) == 2
    captured = capsys.readouterr()
    assert "BLOCK  " in captured.out and f"ERROR  {missing}" in captured.err
    assert captured.out.splitlines()[-1].endswith("0 passed, 0 warned, 1 blocked, 1 unreadable")


def test_a_folder_that_cannot_be_listed_is_unreadable(
    capsys: pytest.CaptureFixture[str],
    policy: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A folder the walk cannot list is counted unreadable (exit 2), named in the output."""
    root = tree(tmp_path / "fx", {"a.xml": cda(), "locked/b.xml": cda()})
    walk = os.walk

    def failing(
        top: str | os.PathLike[str], onerror: Callable[[OSError], object] | None = None
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        for folder, dirs, files in walk(top):
            if folder.endswith("locked"):
                assert onerror is not None
                onerror(PermissionError(13, "Permission denied", folder))
                continue
            yield folder, dirs, files

    monkeypatch.setattr("os.walk", failing)
    code = main(["scan", "--format", "json", *policy, str(root)])
    out = json.loads(capsys.readouterr().out)
    assert code == 2
    assert out["summary"]["unreadable"] == 1 and out["summary"]["passed"] == 1
    assert {"path": str(root / "locked"), "error": "Permission denied"} in out["files"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_special_files_in_a_folder_are_not_read(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """A FIFO under a folder is passed over (reading it would wait for ever)."""
    root = tree(tmp_path / "fx", {"a.xml": cda()})
    os.mkfifo(root / "pipe")
    code, paths, _ = scanned(capsys, policy, str(root))
    assert (code, paths) == (0, ["a.xml"])


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    """scan --help lists the exit statuses and which wins when an I/O error and a block meet."""
    with pytest.raises(SystemExit) as info:
        main(["scan", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for text in ("0  every file passed", "1  a file would be blocked", "2 wins over 1"):
        assert text in out
    for flag in ("--format", "--include", "--exclude", "--hidden", "--json"):
        assert flag in out


@pytest.mark.parametrize("output", ["text", "json", "sarif"])
def test_no_raw_code_in_any_format(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path, output: str
) -> None:
    """Whatever the format, the output holds masked evidence only, never the code."""
    root = tree(
        tmp_path / "fx",
        {"a.xml": cda(patient=REAL), "b.txt": f"potilas\nhetu {REAL}\n"},
    )
    assert main(["scan", "--format", output, *policy, str(root)]) == 1
    captured = capsys.readouterr()
    assert REAL not in captured.out + captured.err
    assert "******-****" in captured.out


# --- recorded traffic: HAR and mitmproxy flow files -------------------------------------------

SARIF_SCHEMA_FILE = Path(__file__).parent / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"


def har_file(path: Path, *requests: tuple[str, str, dict[str, str], str | None]) -> Path:
    """A HAR file of ``(method, url, headers, body)`` requests, written at ``path``."""
    entries = []
    for method, url, headers, body in requests:
        request: dict[str, object] = {
            "method": method,
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in headers.items()],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(body.encode()) if body is not None else 0,
        }
        if body is not None:
            request["postData"] = {"mimeType": headers.get("Content-Type", ""), "text": body}
        entries.append({"request": request, "response": {}})
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}), "utf-8")
    return path


def patient_json(code: str) -> str:
    """A FHIR Patient with one HETU identifier."""
    identifier = [{"system": "urn:oid:1.2.246.21", "value": code}]
    return json.dumps({"resourceType": "Patient", "identifier": identifier})


def flows_file(path: Path, *requests: tuple[str, dict[str, str], bytes]) -> Path:
    """A flow file (mitmproxy's FlowWriter, as ``mitmdump -w``) of ``(path, headers, body)``."""
    from mitmproxy import io as mitmio
    from mitmproxy.test import tflow

    with path.open("wb") as out:
        writer = mitmio.FlowWriter(out)
        for target, headers, body in requests:
            flow = tflow.tflow(resp=True)
            flow.request.method = "POST" if body else "GET"
            flow.request.path = target
            flow.request.headers.update(headers)
            flow.request.raw_content = body
            writer.add(flow)
    return path


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    """A folder with one HAR (a clean GET, a real code in the query, one in a FHIR body) and one
    flow file (a clean GET, a real code in a header)."""
    root = tmp_path / "campaign"
    root.mkdir()
    har_file(
        root / "browser.har",
        ("GET", f"https://fhir.test.invalid/Patient?identifier={TEST}", {}, None),
        ("GET", f"https://fhir.test.invalid/Patient?identifier={REAL}", {}, None),
        (
            "POST",
            "https://fhir.test.invalid/Patient",
            {"Content-Type": "application/fhir+json"},
            patient_json(REAL),
        ),
    )
    flows_file(
        root / "proxy.flows",
        ("/metadata", {}, b""),
        ("/Patient", {"X-Patient": REAL}, b""),
    )
    return root


def test_recordings_one_result_per_request(
    capsys: pytest.CaptureFixture[str], policy: list[str], campaign: Path
) -> None:
    """A HAR and a flow file give one result per request, named FILE#N METHOD URL with the
    URL masked; the summary counts files, recordings and requests."""
    assert main(["scan", *policy, str(campaign)]) == 1
    out = capsys.readouterr().out
    har = campaign / "browser.har"
    flows = campaign / "proxy.flows"
    heads = [line for line in out.splitlines() if line.startswith(("PASS", "BLOCK"))]
    assert heads == [
        f"PASS   {har}#1 GET https://fhir.test.invalid/Patient?identifier=…",
        f"BLOCK  {har}#2 GET https://fhir.test.invalid/Patient?identifier=…",
        f"BLOCK  {har}#3 POST https://fhir.test.invalid/Patient",
        f"PASS   {flows}#1 GET http://address:22/metadata",
        f"BLOCK  {flows}#2 GET http://address:22/Patient",
    ]
    assert "url:query:identifier" in out and "header:X-Patient" in out
    assert out.splitlines()[-1] == (
        "kanta-guard: 2 files (2 recordings, 5 requests) scanned: "
        "2 passed, 0 warned, 3 blocked, 0 unreadable"
    )
    assert REAL not in out


def test_recordings_in_json(
    capsys: pytest.CaptureFixture[str], policy: list[str], campaign: Path
) -> None:
    """The json output has an object per request (its file, number, method and masked URL)."""
    assert main(["scan", "--format", "json", *policy, str(campaign)]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["summary"] == {
        "files": 2,
        "recordings": 2,
        "requests": 5,
        "passed": 2,
        "warned": 0,
        "blocked": 3,
        "unreadable": 0,
    }
    second = out["files"][1]
    assert second["file"] == str(campaign / "browser.har") and second["request"] == 2
    assert second["method"] == "GET" and second["verdict"] == "block"
    assert second["url"] == "https://fhir.test.invalid/Patient?identifier=…"
    assert second["findings"][0]["location"] == "url:query:identifier"
    assert REAL not in captured.out + captured.err


def test_recordings_in_sarif(
    capsys: pytest.CaptureFixture[str], policy: list[str], campaign: Path
) -> None:
    """In SARIF the artifact is the recording and each result's logical location names the
    request (#N); the log validates against the SARIF 2.1.0 schema."""
    assert main(["scan", "--format", "sarif", *policy, str(campaign)]) == 1
    captured = capsys.readouterr()
    log = json.loads(captured.out)
    results = log["runs"][0]["results"]
    where = [
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["logicalLocations"][0]["name"],
            r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        )
        for r in results
    ]
    assert where == [
        ("browser.har", "#2", "#2:url:query:identifier"),
        ("browser.har", "#3", "#3:/identifier/0/value"),
        ("proxy.flows", "#2", "#2:header:X-Patient"),
    ]
    assert "in request #3 POST https://fhir.test.invalid/Patient" in results[1]["message"]["text"]
    assert REAL not in captured.out
    import jsonschema

    schema = json.loads(SARIF_SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)


def test_a_corrupt_flow_file_exits_2(
    capsys: pytest.CaptureFixture[str], policy: list[str], campaign: Path
) -> None:
    """A flow file cut short: the flows before the cut are still judged (and the block
    reported), the file is one unreadable result, and the exit status is 2; in SARIF it is a
    tool notification and the log still validates."""
    flows = campaign / "proxy.flows"
    data = flows.read_bytes()
    flows.write_bytes(data[: len(data) - 30])
    (campaign / "browser.har").unlink()
    assert main(["scan", *policy, str(flows)]) == 2
    captured = capsys.readouterr()
    assert f"ERROR  {flows}: not a readable flow file after flow 1" in captured.err
    assert captured.out.splitlines()[-1].endswith("1 passed, 0 warned, 0 blocked, 1 unreadable")
    garbage = campaign / "garbage.mitm"
    garbage.write_bytes(b"this is not a flow file")
    assert main(["scan", "--format", "sarif", *policy, str(garbage)]) == 2
    log = json.loads(capsys.readouterr().out)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert (
        "not a readable flow file" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    )
    import jsonschema

    schema = json.loads(SARIF_SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)


def test_what_a_har_lost_is_unreadable(
    capsys: pytest.CaptureFixture[str], policy: list[str], tmp_path: Path
) -> None:
    """A HAR request whose body was omitted is an unreadable result (exit 2), named by its
    request; a HAR with no entries is no request to scan (exit 2); a .har that is no HAR is
    an unreadable file."""
    path = tmp_path / "lost.har"
    path.write_text(
        json.dumps(
            {
                "log": {
                    "entries": [
                        {
                            "request": {
                                "method": "POST",
                                "url": "https://a.invalid/x",
                                "headers": [],
                                "bodySize": 500,
                            }
                        }
                    ]
                }
            }
        ),
        "utf-8",
    )
    assert main(["scan", *policy, str(path)]) == 2
    err = capsys.readouterr().err
    assert f"ERROR  {path}#1 POST https://a.invalid/x: the HAR omits the body" in err
    assert main(["scan", "--format", "sarif", *policy, str(path)]) == 2
    log = json.loads(capsys.readouterr().out)
    (notification,) = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notification["message"]["text"].startswith("cannot read request #1 POST")
    assert notification["locations"][0]["logicalLocations"][0]["name"] == "#1"
    import jsonschema

    schema = json.loads(SARIF_SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)
    har_file(path)
    assert main(["scan", *policy, str(path)]) == 2
    assert "no request to scan in the recordings of" in capsys.readouterr().err
    path.write_text("{not json", "utf-8")
    assert main(["scan", "--format", "json", *policy, str(path)]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["files"][0]["error"].startswith("not a HAR file: JSON parse error")


def test_flow_files_are_sniffed(
    capsys: pytest.CaptureFixture[str], policy: list[str], campaign: Path
) -> None:
    """A flow file under another name is recognised by its first bytes; --content-type (every
    file is a body of that type) turns the sniffing off."""
    sniffed = campaign / "recording.dump"
    (campaign / "proxy.flows").rename(sniffed)
    (campaign / "browser.har").unlink()
    assert main(["scan", "--format", "json", *policy, str(campaign)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["requests"] == 2
    assert [entry["path"] for entry in out["files"]] == [
        f"{sniffed}#1 GET http://address:22/metadata",
        f"{sniffed}#2 GET http://address:22/Patient",
    ]
    code, paths, summary = scanned(capsys, policy, "--content-type", "text/plain", str(campaign))
    assert (code, paths) == (1, ["recording.dump"]) and "requests" not in summary
    # A text that only starts like a flow file (digits, a colon, "}" where the length ends) and
    # does not read as one is scanned as the text it is: its code still blocks.
    sniffed.unlink()
    lookalike = campaign / "notes.log"
    lookalike.write_text("12:abcdefghijkl} meeting notes\n" + f"hetu {REAL}\n", "utf-8")
    code, paths, summary = scanned(capsys, policy, str(campaign))
    assert (code, paths) == (1, ["notes.log"]) and "requests" not in summary


# --- the progress line ------------------------------------------------------------------------


def run_on_a_pty(args: list[str], env: dict[str, str]) -> tuple[int, str, bytes]:
    """``kanta-guard`` in a child whose stderr is a pseudo-terminal and stdout a pipe: its exit
    status, stdout and everything written to the terminal."""
    import pty
    import select

    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "kanta_guard", *args],
        stdout=subprocess.PIPE,
        stderr=child_fd,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(child_fd)
    terminal = b""
    assert process.stdout is not None
    out = b""
    while True:
        ready, _, _ = select.select([main_fd, process.stdout], [], [], 30)
        assert ready, "the scan did not finish in 30 s"
        if process.stdout in ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
        if main_fd in ready:
            with contextlib.suppress(OSError):  # (the child closed the terminal)
                terminal += os.read(main_fd, 65536)
    code = process.wait(30)
    while True:
        ready, _, _ = select.select([main_fd], [], [], 0.2)
        if not ready:
            break
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(main_fd)
    return code, out.decode(), terminal


def test_progress_line_on_a_terminal(policy: list[str], tmp_path: Path) -> None:
    """On a terminal, a long run draws a one-line progress indicator on stderr (carriage
    return, counts, the rest of the line erased) and erases it at the end; stdout (json here)
    holds none of it."""
    root = tree(
        tmp_path / "many",
        {f"doc{n:03d}.txt": f"line {n}\n" for n in range(60)} | {"z.txt": f"hetu {REAL}\n"},
    )
    env = {**os.environ, "KANTA_GUARD_HASH_KEY": "kanta-guard-test-key-0123456789"}
    env["TERM"] = "xterm"
    code, out, terminal = run_on_a_pty(["scan", "--format", "json", *policy, str(root)], env)
    assert code == 1, terminal
    assert json.loads(out)["summary"]["files"] == 61 and "\r" not in out
    text = terminal.decode()
    assert "\rkanta-guard: " in text and " files scanned, " in text and "\x1b[K" in text
    # Erased before the summary line, which stands alone on the terminal.
    before, _, summary = text.rpartition("\r\x1b[K")
    assert "files scanned, " in before
    assert (
        summary.strip()
        == "kanta-guard: 61 files scanned: 60 passed, 0 warned, 1 blocked, 0 unreadable"
    )
    assert REAL not in text
    # --no-progress: none of it.
    code, out, terminal = run_on_a_pty(
        ["scan", "--no-progress", "--format", "json", *policy, str(root)], env
    )
    assert code == 1 and "\r" not in terminal.decode().replace("\r\n", "\n")


def test_no_progress_line_when_stderr_is_not_a_terminal(policy: list[str], tmp_path: Path) -> None:
    """In a CI log (stderr a pipe) nothing but the summary line reaches stderr."""
    root = tree(tmp_path / "many", {f"doc{n:03d}.txt": "x\n" for n in range(60)})
    env = {**os.environ, "KANTA_GUARD_HASH_KEY": "kanta-guard-test-key-0123456789"}
    done = subprocess.run(
        [sys.executable, "-m", "kanta_guard", "scan", "--format", "json", *policy, str(root)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0
    assert (
        done.stderr
        == "kanta-guard: 60 files scanned: 60 passed, 0 warned, 0 blocked, 0 unreadable\n"
    )
