"""Tests for kanta_guard.cli: ``scan`` on the shared corpus and on fixtures, exit codes, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import corpus_dir
from helpers import REAL, cda, identity_policy_file

from kanta_guard.cli import _parser, guard_settings, main

#: The verdicts the corpus README lists for each file (identity-code and certificate rules).
CORPUS_VERDICTS = {
    "kanta-cda/LM_varaus.xml": "block",
    "kanta-cda/apteekissa_tallennettu_laakemaarays_puhelin.xml": "block",
    "kanta-cda/LT1_testiasiakirja_toimitus.xml": "pass",
    "kanta-cda/Esim_OSVA_Omakannasta.xml": "pass",
    "kanta-cda/LM_testiasiakirja_mitatointiin.xml": "pass",
    "kanta-cda/Esko_1_Diatsepaami_LM.xml": "pass",
    "kanta-cda/Acute_5_ENfamil_hetuton.xml": "pass",
    "fhir/appointment.json": "block",
    "fhir/patientesim1.json": "warn",
    "fhir/kanta-phr-example-patient.json": "pass",
    "fhir/Observation-BodyWeight-min.json": "pass",
}


#: The identity-code policy file of the running test (``_identity_rules``).
_IDENTITY: list[str] = [""]


@pytest.fixture(autouse=True)
def _identity_rules(tmp_path: Path) -> None:
    """These tests are about identity codes: ``scan_json`` runs on the identity-code rules
    only, unless a test asks for the embedded default policy."""
    _IDENTITY[0] = str(identity_policy_file(tmp_path))


def scan_json(
    capsys: pytest.CaptureFixture[str], *args: str, policy: str | None = "identity"
) -> tuple[int, dict[str, object]]:
    """Run ``kanta-guard scan --json`` and return its exit code and parsed output (on the
    identity-code rules only; ``policy=None``: the embedded default)."""
    extra = ["--policy", _IDENTITY[0]] if policy == "identity" else []
    code = main(["scan", "--json", *extra, *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("name", "verdict"), sorted(CORPUS_VERDICTS.items()))
def test_corpus_verdicts(capsys: pytest.CaptureFixture[str], name: str, verdict: str) -> None:
    """Each corpus file gets the verdict its README lists, and the exit code that goes with it."""
    path = corpus_dir() / name
    code, out = scan_json(capsys, str(path))
    files = out["files"]
    assert isinstance(files, list)
    assert files[0]["verdict"] == verdict
    assert code == (1 if verdict == "block" else 0)


@pytest.mark.parametrize(("name", "verdict"), sorted(CORPUS_VERDICTS.items()))
def test_corpus_under_the_default_policy(
    capsys: pytest.CaptureFixture[str], name: str, verdict: str
) -> None:
    """Under the embedded default (no registry) no corpus file that passes is blocked: the
    name, phone and address rules only warn, and say how to configure a registry."""
    code, out = scan_json(capsys, str(corpus_dir() / name), policy=None)
    files = out["files"]
    assert isinstance(files, list)
    if verdict == "block":
        assert files[0]["verdict"] == "block"
    else:
        assert files[0]["verdict"] in ("pass", "warn"), files[0]["findings"]
        assert code == 0


def test_corpus_whole_directory(capsys: pytest.CaptureFixture[str]) -> None:
    """Scanning the corpus directory covers every file, blocks (exit 1) and never prints a code."""
    code, out = scan_json(capsys, str(corpus_dir()))
    files = out["files"]
    assert isinstance(files, list)
    assert code == 1
    seen = {Path(f["path"]).relative_to(corpus_dir()).as_posix() for f in files}
    assert set(CORPUS_VERDICTS) <= seen
    dumped = json.dumps(out)
    for raw in ("050775-0251", "160345-0277", "010101-123N"):
        assert raw not in dumped


def test_findings_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--json gives per file the verdict and findings with rule, location and masked evidence."""
    path = tmp_path / "doc.xml"
    path.write_text(cda(patient=REAL), "utf-8")
    code, out = scan_json(capsys, str(path))
    assert code == 1
    files = out["files"]
    assert isinstance(files, list)
    finding = files[0]["findings"][0]
    assert finding["rule"] == "hetu.real"
    assert finding["location"] == "/ClinicalDocument/recordTarget/patientRole/id/@extension"
    assert finding["evidence"] == "******-****"
    assert finding["value_hash"].startswith("hmac:")


def test_human_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Without --json each file gets a verdict line and one line per finding, masked."""
    clean, dirty = tmp_path / "clean.xml", tmp_path / "dirty.xml"
    clean.write_text(cda(), "utf-8")
    dirty.write_text(cda(guardian=REAL), "utf-8")
    policy = ["--policy", _IDENTITY[0]]
    assert main(["scan", *policy, str(clean)]) == 0
    assert main(["scan", *policy, str(clean), str(dirty)]) == 1
    out = capsys.readouterr().out
    assert "PASS   " in out and "BLOCK  " in out and "hetu.real" in out
    assert REAL not in out


def test_io_error_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file that cannot be read is reported and the exit code is 2."""
    code, out = scan_json(capsys, str(tmp_path / "missing.xml"))
    assert code == 2
    files = out["files"]
    assert isinstance(files, list) and "error" in files[0]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """No paths, an unknown option or a bad policy exit with 2 and a message."""
    with pytest.raises(SystemExit) as info:
        main(["scan"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["scan", "--bogus", "x"])
    assert info.value.code == 2
    bad = tmp_path / "p.toml"
    bad.write_text("[limits]\nmax_depth = -1\n", "utf-8")
    with pytest.raises(SystemExit) as info:
        main(["scan", "--policy", str(bad), str(bad)])
    assert info.value.code == 2
    assert "p.toml, line 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["run", "--workers", "-1"])
    assert info.value.code == 2
    assert "--workers: must be 0 or more" in capsys.readouterr().err


def test_content_type_and_encoding_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--content-type and --content-encoding apply to saved bodies."""
    import gzip

    path = tmp_path / "body.bin"
    path.write_bytes(gzip.compress(f"hetu={REAL}".encode()))
    code, out = scan_json(
        capsys,
        "--content-type",
        "application/x-www-form-urlencoded",
        "--content-encoding",
        "gzip",
        str(path),
    )
    files = out["files"]
    assert isinstance(files, list)
    assert code == 1 and files[0]["findings"][0]["location"] == "form:hetu"


def settings(*argv: str) -> tuple[dict[str, str], list[str]]:
    """The guard's settings and mitmproxy's arguments from a ``run`` command line."""
    args, extra = _parser().parse_known_args(["run", *argv])
    return guard_settings(args, extra)


def test_set_option_is_the_same_as_its_flag(tmp_path: Path) -> None:
    """--set kanta_guard_policy=FILE gives the guard that policy, like --policy FILE."""
    policy = str(tmp_path / "p.toml")
    assert settings("--set", f"kanta_guard_policy={policy}")[0] == {"kanta_guard_policy": policy}
    assert settings(f"--set=kanta_guard_log={policy}")[0] == {"kanta_guard_log": policy}
    assert settings("--policy", policy)[0] == {"kanta_guard_policy": policy}


def test_other_set_options_go_to_mitmproxy() -> None:
    """Options that are not the guard's stay in mitmproxy's arguments, in order."""
    found, rest = settings("--set", "flow_detail=3", "--set", "kanta_guard_workers=1", "-v")
    assert found == {"kanta_guard_workers": "1"}
    assert rest == ["--set", "flow_detail=3", "-v"]


def test_same_value_twice_is_one_value(tmp_path: Path) -> None:
    """The same option by flag and by --set, with the same value, is accepted once."""
    policy = tmp_path / "p.toml"
    found, _ = settings("--policy", str(policy), "--set", f"kanta_guard_policy={policy}")
    assert found == {"kanta_guard_policy": str(policy)}
    assert settings("--workers", "1", "--set", "kanta_guard_workers=1")[0] == {
        "kanta_guard_workers": "1"
    }


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--policy", "A.toml", "--set", "kanta_guard_policy=B.toml"), "--policy"),
        (("--log", "A.jsonl", "--set", "kanta_guard_log=B.jsonl"), "--log"),
        (("--workers", "1", "--set", "kanta_guard_workers=2"), "--workers"),
        (("--set", "kanta_guard_log=A", "--set", "kanta_guard_log=B"), "--set kanta_guard_log=A"),
    ],
)
def test_conflicting_values_stop_start_up(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], named: str
) -> None:
    """The same option twice with different values exits 2 naming both ways it was given."""
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert named in err and "--set kanta_guard_" in err and "given twice" in err


def test_unwritable_log_directory_stops_start_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A log that cannot be opened (its directory is a file) stops start-up with exit 2."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", "--log", str(blocker / "log.jsonl")]) == 2
    assert "cannot open event log" in capsys.readouterr().err


def test_a_missing_trust_anchors_folder_stops_start_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A policy naming a trust-anchors folder that is not there exits 2 naming the folder,
    before mitmproxy starts (and an empty one likewise)."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[certificates]\nanchors = "anchors"\n', "utf-8")
    assert main(["run", "--policy", str(policy), "--log", str(tmp_path / "l.jsonl")]) == 2
    assert "anchors" in capsys.readouterr().err
    (tmp_path / "anchors").mkdir()
    assert main(["run", "--policy", str(policy), "--log", str(tmp_path / "l.jsonl")]) == 2
    assert "anchors" in capsys.readouterr().err
