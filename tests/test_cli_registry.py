"""Tests for the registry side of kanta_guard.cli: ``registry check`` and ``scan --registry
--mode --case``, in process.

Every bad-entry case is written twice: in the plain subset of TOML (read line by line) and with
one construct outside it (a multi-line array, so tomllib reads the file): the line the message
names must be the same. Real-range codes are computed (``helpers.REAL``) and must never be
printed unmasked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers import FIXTURES, REAL

from kanta_guard.cli import main

REGISTRY = FIXTURES / "e2e_registry" / "registry.toml"
EXAMPLE_TOML = FIXTURES / "registry.toml"
EXAMPLE_CSV = FIXTURES / "registry.csv"
MASKED = "******-****"

INDEPENDENT = "010181-900C"  # independent pool
JOINT_101 = "020516C903K"  # joint pool, case TC-101
JOINT_202 = "231069-9711"  # joint pool, case TC-202
UNKNOWN = "010594Y9032"  # in no registry here
PEOPLE = {
    INDEPENDENT: ("Maija Liisa", "Testinen"),
    JOINT_101: ("Anna-Liisa", "Yhteinen"),
    JOINT_202: ("Arto Alvar", "Toistapuolinen"),
    UNKNOWN: ("Hannu", "Lisätty"),
}

#: A valid start (shared contacts, one identity) that each bad case extends.
HEAD = """\
[contacts]
emails = ["testi@example.com"]

[[identity]]
code = "010181-900C"
given = "Maija"
family = "Testinen"
pool = "independent"
"""
#: The same start with a construct outside the plain subset: tomllib reads the file.
HEAD_TOMLLIB = """\
[contacts]
emails = [
    "testi@example.com",
]

[[identity]]
code = "010181-900C"
given = "Maija"
family = "Testinen"
pool = "independent"
"""
#: The line the error must name is the one marked ``# <-`` (the mark is cut before writing).
MARK = "  # <-"

#: (id, what follows HEAD, a phrase of the message).
BAD_ENTRIES = [
    (
        "invalid-code",
        '\n[[identity]]\ncode = "010181-900D"  # <-\ngiven = "A"\nfamily = "B"\n'
        'pool = "independent"\n',
        "is not a valid identity code",
    ),
    (
        "real-range-code",
        f'\n[[identity]]\ncode = "{REAL}"  # <-\ngiven = "A"\nfamily = "B"\npool = "independent"\n',
        "is a real person's identity code",
    ),
    (
        "duplicate",
        '\n[[identity]]\ncode = "010181-900C"  # <-\ngiven = "A"\nfamily = "B"\n'
        'pool = "independent"\n',
        # A 900-series test code is shown (not personal data: the tester must find it).
        "duplicate code 010181-900C: registered on line",
    ),
    (
        "joint-without-cases",
        '\n[[identity]]  # <-\ncode = "020516C903K"\ngiven = "A"\nfamily = "B"\npool = "joint"\n',
        "has no test cases",
    ),
    (
        "joint-with-empty-cases",
        '\n[[identity]]\ncode = "020516C903K"\ngiven = "A"\nfamily = "B"\npool = "joint"\n'
        "cases = []  # <-\n",
        "has no test cases",
    ),
    (
        "unknown-key",
        '\n[[identity]]\ncode = "020516C903K"\ngiven = "A"\nfamily = "B"\npool = "joint"\n'
        'cases = ["TC-1"]\nnickname = "Bee"  # <-\n',
        "unknown key 'nickname' in [[identity]]",
    ),
    (
        "unknown-top-level-key",
        '\n[owner]  # <-\nname = "Supplier"\n',
        "unknown key 'owner'",
    ),
]


BAD_IDS = [row[0] for row in BAD_ENTRIES]


def write_bad(folder: Path, head: str, tail: str) -> tuple[Path, int]:
    """The registry ``head + tail`` in ``folder``, and the 1-based line of the ``# <-`` mark."""
    lines = (head + tail).split("\n")
    line = next(number for number, text in enumerate(lines, 1) if text.endswith(MARK))
    path = folder / "bad.toml"
    path.write_text("\n".join(text.removesuffix(MARK) for text in lines), encoding="utf-8")
    return path, line


# --- registry check -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [EXAMPLE_TOML, EXAMPLE_CSV, REGISTRY], ids=lambda p: p.name)
def test_check_valid_registry(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    """A valid registry exits 0 with a one-line summary: the file, how many identities, its
    digest (the SHA-256 of the file's bytes)."""
    assert main(["registry", "check", str(path)]) == 0
    captured = capsys.readouterr()
    count = 3 if path == REGISTRY else 4
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert captured.out == f"{path}: a valid registry of {count} test identities ({digest})\n"
    assert captured.err == ""


@pytest.mark.parametrize("head", [HEAD, HEAD_TOMLLIB], ids=["plain", "tomllib"])
@pytest.mark.parametrize(("tail", "phrase"), [row[1:] for row in BAD_ENTRIES], ids=BAD_IDS)
def test_check_bad_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, head: str, tail: str, phrase: str
) -> None:
    """Each kind of bad entry exits 2 with one message naming the file and the entry's line,
    by either reader; a real-range code is masked, and no traceback is printed."""
    path, line = write_bad(tmp_path, head, tail)
    assert main(["registry", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"kanta-guard: error: {path}, line {line}: "), captured.err
    assert phrase in captured.err
    assert captured.err.count("\n") == 1
    assert REAL not in captured.err and "Traceback" not in captured.err
    if REAL in tail:
        assert MASKED in captured.err


def test_check_duplicate_names_both_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A duplicate code's message names where the code was registered first."""
    tail = '\n[[identity]]\ncode = "010181-900C"  # <-\ngiven = "A"\nfamily = "B"\npool = "joint"\n'
    path, _ = write_bad(tmp_path, HEAD, tail)
    assert main(["registry", "check", str(path)]) == 2
    assert "registered on line 4 and line 10" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "line", "phrase"),
    [
        (f"{REAL},A,B,independent,\n", 3, "is a real person's identity code"),
        ("010181-900C,A,B,independent,\n", 3, "duplicate code"),
        ("020516C903K,A,B,joint,\n", 3, "has no test cases"),
        ("010181-900D,A,B,independent,\n", 3, "is not a valid identity code"),
    ],
    ids=["real-range-code", "duplicate", "joint-without-cases", "invalid-code"],
)
def test_check_bad_csv_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rows: str, line: int, phrase: str
) -> None:
    """A bad CSV row exits 2 naming the file and the row's line, masked."""
    path = tmp_path / "bad.csv"
    text = "code,given,family,pool,cases\n010181-900C,Maija,Testinen,independent,\n" + rows
    path.write_text(text, encoding="utf-8")
    assert main(["registry", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kanta-guard: error: {path}, line {line}: ") and phrase in err
    assert REAL not in err


def test_check_unknown_csv_column(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unknown CSV column is named with line 1 (the header)."""
    path = tmp_path / "bad.csv"
    path.write_text("code,given,family,pool,nickname\n", encoding="utf-8")
    assert main(["registry", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kanta-guard: error: {path}, line 1: unknown column 'nickname'")


def test_check_unreadable_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A missing file, a file of another kind and a file that is not UTF-8 exit 2, named."""
    missing = tmp_path / "missing.toml"
    assert main(["registry", "check", str(missing)]) == 2
    assert f"cannot read registry file {missing}" in capsys.readouterr().err
    other = tmp_path / "registry.json"
    other.write_text("{}", encoding="utf-8")
    assert main(["registry", "check", str(other)]) == 2
    assert "a registry is a .toml or a .csv file" in capsys.readouterr().err
    latin = tmp_path / "latin.toml"
    latin.write_bytes(HEAD.replace("Maija", "M\xe4ija").encode("latin-1"))
    assert main(["registry", "check", str(latin)]) == 2
    assert f"{latin}: not UTF-8" in capsys.readouterr().err


def test_check_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """``registry`` without an action, ``check`` without a file or with extra words: exit 2."""
    for argv in (["registry"], ["registry", "check"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["registry", "check", str(REGISTRY), "--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


# --- scan --registry --mode --case ---------------------------------------------------------------


def patients(folder: Path) -> dict[str, Path]:
    """One FHIR Patient file per code, with the name registered for it."""
    files = {}
    for code, (given, family) in PEOPLE.items():
        path = folder / f"patient-{code}.json"
        document = {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.246.21", "value": code}],
            "name": [{"family": family, "given": given.split()}],
        }
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        files[code] = path
    return files


def scan(
    capsys: pytest.CaptureFixture[str], folder: Path, *args: str
) -> tuple[int, dict[str, tuple[str, list[str]]]]:
    """``kanta-guard scan --json`` of the patient files: (exit code, code -> (verdict, rules))."""
    files = patients(folder)
    status = main(["scan", "--json", *args, *(str(p) for p in files.values())])
    out = json.loads(capsys.readouterr().out)
    by_path = {f["path"]: f for f in out["files"]}
    return status, {
        code: (by_path[str(path)]["verdict"], [f["rule"] for f in by_path[str(path)]["findings"]])
        for code, path in files.items()
    }


#: Per testing mode, each code's expected verdict and registry rule (None: passes).
EXPECTED = {
    "independent": {
        INDEPENDENT: None,
        JOINT_101: "registry.wrong_pool",
        JOINT_202: "registry.wrong_pool",
        UNKNOWN: "registry.unknown_code",
    },
    "joint TC-101": {
        INDEPENDENT: "registry.wrong_pool",
        JOINT_101: None,
        JOINT_202: "registry.wrong_case",
        UNKNOWN: "registry.unknown_code",
    },
    "joint TC-202": {
        INDEPENDENT: "registry.wrong_pool",
        JOINT_101: "registry.wrong_case",
        JOINT_202: None,
        UNKNOWN: "registry.unknown_code",
    },
}


@pytest.mark.parametrize(
    ("args", "mode"),
    [
        ((), "independent"),
        (("--mode", "independent"), "independent"),
        (("--mode", "joint", "--case", "TC-101"), "joint TC-101"),
        (("--testing", "joint", "--case", "TC-202"), "joint TC-202"),
        (("--case", "TC-202", "--mode", "joint"), "joint TC-202"),
    ],
    ids=["policy-default", "independent", "joint-TC-101", "testing-alias-TC-202", "case-first"],
)
def test_scan_follows_registry_and_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], mode: str
) -> None:
    """``scan --registry FILE`` judges each code by its pool and cases under the mode given:
    a code allowed passes, any other is blocked by its rule, and the exit code is 1."""
    status, verdicts = scan(capsys, tmp_path, "--registry", str(REGISTRY), *args)
    assert status == 1
    for code, rule in EXPECTED[mode].items():
        verdict, rules = verdicts[code]
        if rule is None:
            assert (verdict, rules) == ("pass", []), code
        else:
            assert verdict == "block" and rule in rules, (code, verdicts[code])
            assert [r for r in rules if r.startswith("registry.")] == [rule], code


def test_scan_clean_file_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file whose only code is allowed in the mode exits 0."""
    path = patients(tmp_path)[JOINT_101]
    argv = ["scan", "--registry", str(REGISTRY), "--mode", "joint", "--case", "TC-101", str(path)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("PASS   ")


def test_scan_human_output_names_rule_and_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The human output names the registry rule, the location and the pool and cases of the
    code, so a tester knows which code to change."""
    path = patients(tmp_path)[JOINT_202]
    argv = ["scan", "--registry", str(REGISTRY), "--mode", "joint", "--case", "TC-101", str(path)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.startswith("BLOCK  ")
    assert "registry.wrong_case" in out and "/identifier/0/value" in out
    assert "requested for case(s) TC-202, used in case TC-101" in out


def test_scan_mode_from_the_policy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A policy's [registry] and [testing] apply without flags; ``--mode``/``--case`` override
    them, and ``--case`` alone keeps the policy's joint mode."""
    (tmp_path / "registry.toml").write_text(REGISTRY.read_text("utf-8"), encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[registry]\nfile = "registry.toml"\n\n[testing]\nmode = "joint"\ncase = "TC-101"\n',
        encoding="utf-8",
    )
    folder = tmp_path / "files"
    folder.mkdir()
    for args, mode in [
        ((), "joint TC-101"),
        (("--mode", "independent"), "independent"),
        (("--case", "TC-202"), "joint TC-202"),
    ]:
        _, verdicts = scan(capsys, folder, "--policy", str(policy), *args)
        for code, rule in EXPECTED[mode].items():
            assert (rule in verdicts[code][1]) if rule else verdicts[code] == ("pass", []), (
                args,
                code,
                verdicts[code],
            )


def test_scan_without_registry_has_no_registry_rules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without a registry no code is judged by pool or case, whatever the mode: none blocks."""
    status, verdicts = scan(capsys, tmp_path, "--mode", "joint", "--case", "TC-101")
    assert status == 0
    for verdict, rules in verdicts.values():
        assert verdict in ("pass", "warn")
        assert not [r for r in rules if r.startswith("registry.")]


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("--mode", "joint"), "joint testing needs a test case id"),
        (("--testing", "joint"), "joint testing needs a test case id"),
        (("--mode", "independent", "--case", "TC-101"), "a test case is given for independent"),
        (("--case", "TC-101"), "a test case is given for independent"),
    ],
    ids=["joint-without-case", "testing-joint-without-case", "independent-with-case", "case-only"],
)
def test_scan_mode_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], phrase: str
) -> None:
    """``--mode joint`` without ``--case`` (or a case for independent testing) is a usage
    error: exit 2, a message, nothing scanned."""
    path = patients(tmp_path)[INDEPENDENT]
    assert main(["scan", "--registry", str(REGISTRY), *args, str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("kanta-guard: error: ") and phrase in captured.err


def test_scan_unknown_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A mode that is neither independent nor joint is refused by the argument parser."""
    with pytest.raises(SystemExit) as info:
        main(["scan", "--mode", "shared", str(REGISTRY)])
    assert info.value.code == 2
    assert "invalid choice: 'shared'" in capsys.readouterr().err


def test_scan_bad_registry_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``scan --registry`` with a bad registry exits 2 naming its file and line, masked."""
    path, line = write_bad(tmp_path, HEAD, BAD_ENTRIES[1][1])
    target = patients(tmp_path)[INDEPENDENT]
    assert main(["scan", "--registry", str(path), str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"kanta-guard: error: {path}, line {line}: ")
    assert REAL not in captured.err and MASKED in captured.err


# --- run: the registry checked before the proxy starts --------------------------------------------


@pytest.mark.parametrize("flag", ["--registry", "--set"])
def test_run_bad_registry_stops_before_the_proxy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flag: str
) -> None:
    """``run`` with a bad registry (by flag or ``--set kanta_guard_registry``) exits 2 before
    mitmproxy starts, naming the file and line, masked."""
    path, line = write_bad(tmp_path, HEAD, BAD_ENTRIES[1][1])
    given = (
        ["--registry", str(path)]
        if flag == "--registry"
        else ["--set", f"kanta_guard_registry={path}"]
    )
    assert main(["run", "--log", str(tmp_path / "log.jsonl"), *given]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kanta-guard: error: {path}, line {line}: ")
    assert REAL not in err and MASKED in err


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("--testing", "joint"), "joint testing needs a test case id"),
        (("--testing", "independent", "--case", "TC-1"), "a test case is given for independent"),
    ],
)
def test_run_mode_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], phrase: str
) -> None:
    """``run --testing joint`` without ``--case`` exits 2 before the proxy starts."""
    argv = ["run", "--log", str(tmp_path / "log.jsonl"), "--registry", str(REGISTRY), *args]
    assert main(argv) == 2
    assert phrase in capsys.readouterr().err


def test_run_set_mode_policy_is_the_policy_mode(tmp_path: Path) -> None:
    """``--set kanta_guard_mode=policy`` (the option's default: as the policy says) passes the
    start-up check like no mode at all."""
    from kanta_guard.cli.proxy import check_settings as _check_settings

    settings = {"kanta_guard_log": str(tmp_path / "log.jsonl"), "kanta_guard_mode": "policy"}
    _check_settings(settings)  # raises the usage error (exit 2) today
