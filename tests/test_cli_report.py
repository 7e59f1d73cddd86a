"""Tests of ``kanta-guard report``: the command line end to end, in process and as a process.

The log is the campaign of ``tests/test_report.py``, made by the real pipeline and ``EventLog``
(rotated into several files), with a garbage line. Real-range codes must appear in no output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lxml.html
import pytest
from test_report import RAW, write_campaign

from kanta_guard.cli import main


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The campaign's rotated log, with one garbage line in the current file."""
    path = tmp_path / "blocked.jsonl"
    write_campaign(path)
    with path.open("ab") as file:
        file.write(b"{not json\n")
    return path


def assert_clean(*texts: str) -> None:
    for text in texts:
        for raw in RAW:
            assert raw not in text


def test_text_report(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Tables on stdout, the reading line last (with the unreadable line), exit 0."""
    assert main(["report", str(log)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("kanta-guard report: 8 requests, 7 blocked, 1 warned; ")
    assert lines[-1].startswith("kanta-guard: ")
    assert "8 requests" in lines[-1] and "1 unreadable (first: " in lines[-1]
    assert lines[-1].endswith(
        "blocked.jsonl:" + str(len(log.read_bytes().splitlines())) + ", not JSON)"
    )
    assert max(len(line) for line in lines[:-1]) <= 100
    assert_clean(out)


def test_json_report(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--format json`` prints the summary alone on stdout; the reading line goes to stderr."""
    assert main(["report", "--format", "json", "--top", "0", str(log)]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert (summary["requests"], summary["blocked"], summary["warned"]) == (8, 7, 1)
    assert {row["key"]: row["requests"] for row in summary["rules"]["rows"]} == {
        "hetu.real": 6,
        "hetu.malformed_test": 1,
        "unscannable": 1,
    }
    assert summary["repeated"][0]["requests"] == 5
    assert summary["unreadable"] == 1 and summary["unreadable_lines"][0]["reason"] == "not JSON"
    assert len(summary["files"]) >= 3
    assert err.startswith("kanta-guard: ") and "1 unreadable" in err
    assert_clean(out, err)


def test_html_report_to_a_file_and_to_stdout(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--html FILE`` writes the page beside the text report; ``--format html`` prints it."""
    page_path = tmp_path / "report.html"
    assert main(["report", "--html", str(page_path), str(log)]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("kanta-guard report: ")
    assert out.splitlines()[-1] == f"kanta-guard: HTML report written to {page_path}"
    page = page_path.read_text("utf-8")
    tree = lxml.html.fromstring(page)
    assert tree.xpath("string(//div[@data-count='blocked']/b)") == "7"
    assert len(tree.xpath("//svg")) == 2

    assert main(["report", "--format", "html", str(log)]) == 0
    out, err = capsys.readouterr()
    assert out == page
    assert "1 unreadable" in err
    assert_clean(page, out, err)


def test_no_rotated(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--no-rotated`` reads the file named alone."""
    assert main(["report", "--no-rotated", "--format", "json", str(log)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [Path(f["path"]).name for f in summary["files"]] == ["blocked.jsonl"]


def test_missing_log_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file: exit 2, one line on stderr naming it, nothing on stdout."""
    assert main(["report", str(tmp_path / "nope.jsonl")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err
        == f"kanta-guard: error: cannot read {tmp_path / 'nope.jsonl'}: No such file or directory\n"
    )


def test_a_folder_is_exit_2(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder named as a log: exit 2, one line, even beside a good log."""
    assert main(["report", str(log), str(log.parent)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"kanta-guard: error: cannot read {log.parent}: not a file\n"


def test_unwritable_html_file_is_exit_2(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An HTML path that cannot be written: exit 2, one line."""
    target = log.parent / "no-such-folder" / "report.html"
    assert main(["report", "--html", str(target), str(log)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().count("\n") == 0 and "cannot write" in err


@pytest.mark.parametrize("top", ["-1", "many"])
def test_bad_top_is_a_usage_error(log: Path, top: str) -> None:
    """``--top`` takes a whole number, 0 or more."""
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--top", top, str(log)])
    assert exit_info.value.code == 2


def test_as_a_process(log: Path, tmp_path: Path) -> None:
    """``python -m kanta_guard report`` as a tester runs it: exit 0, the report on stdout."""
    page = tmp_path / "campaign.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kanta_guard",
            "report",
            "--top",
            "3",
            "--html",
            str(page),
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "By rule" in done.stdout and "Repeated values" in done.stdout
    assert page.is_file()
    assert_clean(done.stdout, done.stderr, page.read_text("utf-8"))
