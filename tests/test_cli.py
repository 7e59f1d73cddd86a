"""Tests for kanta_guard.cli: ``scan`` on the shared corpus and on fixtures, exit codes, JSON;
``run``: its settings, per-user state, start-up lines, unknown options and unusable logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import corpus_dir
from cryptography import x509
from cryptography.x509.oid import NameOID
from helpers import REAL, cda, identity_policy_file

from kanta_guard.cli import _parser, guard_settings, main
from kanta_guard.cli.proxy import check_settings
from kanta_guard.proxy.launch import startup_lines, unknown_options

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


# --- starting the proxy: per-user state, start-up lines, unknown options, the log -----------------


def _proxy_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a proxy started here: no proxies, per-user folders in tmp."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONUNBUFFERED="1",
    )
    return env


_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Started:
    """How a proxy start went: its exit status (None: it listened and was stopped), output."""

    returncode: int | None
    stdout: str
    stderr: str


def _start(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 30.0) -> _Started:
    """``python -m kanta_guard run …`` in ``cwd``: wait until it listens (then SIGTERM it) or
    exits; never leaves it running."""
    port = _free_port()
    out, err = cwd / ".." / f"{cwd.name}.stdout", cwd / ".." / f"{cwd.name}.stderr"
    command = [sys.executable, "-m", "kanta_guard", *argv, "--listen-port", str(port)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    listened = False
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    listened = True
                    break
            except OSError:
                time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
    return _Started(
        None if listened else process.returncode,
        out.read_text("utf-8", "replace"),
        err.read_text("utf-8", "replace"),
    )


@pytest.mark.e2e
def test_start_in_an_empty_folder_leaves_it_empty(tmp_path: Path) -> None:
    """``run`` on the embedded default policy, started in an empty folder: the CA (named for
    kanta-guard) and the log go to the per-user state folder, start-up names both and the
    policy on stderr with absolute paths, and the folder stays empty."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    started = _start(["run", "--workers", "1"], cwd, _proxy_env(tmp_path))
    assert started.returncode is None, started.stderr
    state = tmp_path / "state" / "kanta-guard"
    ca = state / "ca" / "mitmproxy-ca-cert.pem"
    log = state / "log" / "kanta-guard-blocked.jsonl"
    assert ca.is_file() and log.is_file()
    cert = x509.load_pem_x509_certificate(ca.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kanta-guard"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "kanta-guard"
    lines = started.stderr.splitlines()
    assert f"  log:          {log}" in lines
    assert any(line.startswith(f"  CA:           {ca} ") for line in lines)
    assert "  policy:       embedded default policy" in lines
    assert "  scan workers: 1" in lines
    assert list(cwd.iterdir()) == []


@pytest.mark.e2e
def test_ca_is_kept_across_starts(tmp_path: Path) -> None:
    """A second start keeps the CA the first made (clients trust it once)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = _proxy_env(tmp_path)
    confdir = tmp_path / "conf"
    assert _start(["run", "--confdir", str(confdir)], cwd, env).returncode is None
    first = (confdir / "mitmproxy-ca-cert.pem").read_bytes()
    assert _start(["run", "--set", f"confdir={confdir}"], cwd, env).returncode is None
    assert (confdir / "mitmproxy-ca-cert.pem").read_bytes() == first
    assert not (tmp_path / "state" / "kanta-guard" / "ca").exists()


def test_confdir_given_twice_differently_stops_start_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--confdir A --set confdir=B`` is a usage error (exit 2), before anything starts."""
    code = main(["run", "--confdir", str(tmp_path / "a"), "--set", f"confdir={tmp_path / 'b'}"])
    assert code == 2
    assert "confdir is given twice" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_policy_relative_log_is_beside_the_policy(tmp_path: Path) -> None:
    """``--policy`` with a relative ``log.path``: the log the check opens is beside the policy
    file, not in the working directory."""
    folder = tmp_path / "policies"
    folder.mkdir()
    policy = folder / "p.toml"
    policy.write_text('[log]\npath = "logs/b.jsonl"\n', "utf-8")
    check_settings({"kanta_guard_policy": str(policy)})
    assert (folder / "logs" / "b.jsonl").is_file()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("client_cert=/nonexistent.pem", "client_cert (did you mean client_certs?)"),
        ("ssl_verify_upstream_trusted_cas=/x.pem", "did you mean ssl_verify_upstream_trusted_ca?"),
        ("no_such_option_at_all=1", "unknown option: no_such_option_at_all;"),
    ],
)
def test_unknown_option_stops_start_up(tmp_path: Path, option: str, named: str) -> None:
    """An option name nobody declared (a typo of one that secures the connection) stops
    start-up with exit 2 and one line naming it; the proxy never listens."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    started = _start(["run", "--set", option], cwd, _proxy_env(tmp_path))
    assert started.returncode == 2, started.stderr
    errors = [line for line in started.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and named in errors[0], started.stderr
    assert "Traceback" not in started.stderr + started.stdout


@pytest.mark.e2e
def test_an_unknown_option_in_config_yaml_stops_start_up(tmp_path: Path) -> None:
    """The same typo in the confdir's ``config.yaml`` (where mitmproxy also reads options, and
    would keep an unknown one aside silently) stops start-up too."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    confdir = tmp_path / "ca"
    confdir.mkdir()
    (confdir / "config.yaml").write_text("client_cert: /nonexistent.pem\n", "utf-8")
    started = _start(["run", "--confdir", str(confdir)], cwd, _proxy_env(tmp_path))
    assert started.returncode == 2, started.stderr
    assert "unknown option: client_cert (did you mean client_certs?)" in started.stderr


@pytest.mark.e2e
def test_an_option_a_script_declares_is_known(tmp_path: Path) -> None:
    """``-s script.py`` that declares an option: ``--set`` of it is not unknown."""
    script = tmp_path / "declares.py"
    script.write_text(
        "class Declares:\n"
        "    def load(self, loader):\n"
        "        loader.add_option('kg_test_declared', int, 0, 'declared by a test script')\n"
        "\n"
        "addons = [Declares()]\n",
        "utf-8",
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    argv = ["run", "-s", str(script), "--set", "kg_test_declared=3"]
    started = _start(argv, cwd, _proxy_env(tmp_path))
    assert started.returncode is None, started.stderr


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("{tmp}", "it is a folder, not a file"),
        ("/", "it is a folder, not a file"),
        ("{tmp}/a-file/log.jsonl", "cannot make its folder {tmp}/a-file: a file of that name"),
        ("/proc/nope/x.jsonl", "cannot make its folder /proc/nope"),
    ],
)
def test_unusable_log_path_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str, says: str
) -> None:
    """A log path that cannot be used is one line naming it and why (exit 2), no traceback."""
    (tmp_path / "a-file").write_text("")
    path = where.format(tmp=tmp_path)
    assert main(["run", "--log", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kanta-guard: error: cannot open event log")
    assert says.format(tmp=tmp_path) in err


def test_unknown_options_message() -> None:
    """The unknown-option line lists each name once, sorted, with a close match if any."""
    known = ["client_certs", "confdir"]
    assert unknown_options([], known) is None
    line = unknown_options(["zzz", "client_cert"], known)
    assert line == (
        "kanta-guard: error: unknown options: client_cert (did you mean client_certs?), zzz; "
        "`kanta-guard run --options` lists every option"
    )


def test_startup_lines_mask_what_they_show(tmp_path: Path) -> None:
    """Start-up lines name the paths as given (absolute), masked: a code in a path never shows."""
    lines = startup_lines(
        tool="mitmdump",
        policy=f"/p/{REAL}.toml",
        log=tmp_path / "log.jsonl",
        ca_cert=tmp_path / "ca.pem",
        workers=0,
    )
    text = "\n".join(lines)
    assert REAL not in text and "******-****" in text
    assert f"  log:          {tmp_path / 'log.jsonl'}" in lines
    assert "  scan workers: 0 (scans on the proxy's thread)" in lines


def test_scan_in_an_empty_folder_leaves_it_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scan`` of a dirty and a clean file, run in an empty folder, writes nothing there."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    files = tmp_path / "files"
    files.mkdir()
    (files / "dirty.xml").write_text(cda(patient=REAL), "utf-8")
    (files / "clean.xml").write_text(cda(), "utf-8")
    monkeypatch.chdir(cwd)
    assert main(["scan", str(files / "dirty.xml")]) == 1
    assert main(["scan", str(files / "clean.xml")]) == 0
    capsys.readouterr()
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(
    ("rest", "size"),
    [
        ([], 2048),
        (["--set", "key_size=3072"], 3072),
        (["--set=key_size=4096", "--set", "flow_detail=0"], 4096),
        (["--set", "key_size=lots"], 2048),  # (mitmproxy refuses it by name)
    ],
)
def test_the_ca_takes_mitmproxys_key_size(rest: list[str], size: int) -> None:
    """The CA made before mitmproxy starts has the key size mitmproxy is given."""
    from kanta_guard.cli.proxy import _key_size

    assert _key_size(rest) == size


def test_ensure_ca_makes_a_key_of_that_size(tmp_path: Path) -> None:
    """``ensure_ca`` makes the CA with the key size asked for, once."""
    from kanta_guard.proxy.launch import ensure_ca

    assert ensure_ca(tmp_path, 3072) is True
    cert = x509.load_pem_x509_certificate((tmp_path / "mitmproxy-ca-cert.pem").read_bytes())
    assert cert.public_key().key_size == 3072  # type: ignore[union-attr]
    assert ensure_ca(tmp_path, 2048) is False
