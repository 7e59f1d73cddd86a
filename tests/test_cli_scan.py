"""Tests for ``kanta-guard scan`` in CI: folders walked (hidden skipped, globs), the summary, the
exit status, ``--format``, ``--version`` and ``python -m kanta_guard``."""

from __future__ import annotations

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
