"""Tests for kanta_guard.paths: per-user folders and where a policy's log goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanta_guard import paths
from kanta_guard.policy import default_policy, load_policy, parse_policy


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$XDG_STATE_HOME`` pointed at a fresh folder of this test."""
    home = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


def test_folders_follow_xdg_state_home(state_home: Path) -> None:
    """The state, CA and log folders are under ``$XDG_STATE_HOME/kanta-guard``."""
    assert paths.state_dir() == state_home / "kanta-guard"
    assert paths.ca_dir() == state_home / "kanta-guard" / "ca"
    assert paths.log_dir() == state_home / "kanta-guard" / "log"
    assert paths.default_log() == state_home / "kanta-guard" / "log" / paths.LOG_NAME


def test_folders_without_xdg_are_in_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``$XDG_STATE_HOME`` the state is in ``~/.local/state/kanta-guard`` (Linux)."""
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.state_dir() == tmp_path / ".local" / "state" / "kanta-guard"


def test_ca_cert_is_the_pem_mitmproxy_writes() -> None:
    """The file clients trust is ``mitmproxy-ca-cert.pem`` in the confdir."""
    assert paths.ca_cert(Path("/x")) == Path("/x/mitmproxy-ca-cert.pem")


@pytest.mark.parametrize(
    ("text", "folder", "expected"),
    [
        # A relative path is beside the policy file that names it.
        ("blocked.jsonl", "/etc/kg", "/etc/kg/blocked.jsonl"),
        ("logs/blocked.jsonl", "/etc/kg", "/etc/kg/logs/blocked.jsonl"),
        # An absolute one is kept.
        ("/var/log/kg.jsonl", "/etc/kg", "/var/log/kg.jsonl"),
        ("/var/log/kg.jsonl", None, "/var/log/kg.jsonl"),
        # No folder (the embedded default): the per-user log folder.
        ("blocked.jsonl", None, "{log}/blocked.jsonl"),
    ],
)
def test_policy_log_path(state_home: Path, text: str, folder: str | None, expected: str) -> None:
    """A policy's log path is absolute: from the policy's folder, or the per-user log folder."""
    got = paths.policy_log_path(text, Path(folder) if folder else None)
    assert got == Path(expected.format(log=paths.log_dir()))
    assert got.is_absolute()


def test_policy_log_path_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``~`` in a log path is the user's home."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.policy_log_path("~/kg.jsonl", Path("/etc")) == tmp_path / "kg.jsonl"


def test_relative_folder_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy read by a relative name logs beside it, as an absolute path (not the cwd's
    relative path, which would change meaning if the process changed directory)."""
    monkeypatch.chdir(tmp_path)
    assert paths.policy_log_path("b.jsonl", Path(".")) == tmp_path / "b.jsonl"


def test_embedded_default_logs_in_the_state_folder(state_home: Path) -> None:
    """The embedded default policy's log is the per-user one, never the working directory's."""
    assert default_policy().log.path == paths.default_log()
    assert parse_policy("").log.path == paths.default_log()


def test_policy_file_logs_beside_itself(state_home: Path, tmp_path: Path) -> None:
    """A policy file's relative log.path is taken from its folder; one that sets no log path
    keeps the per-user default (not a path beside the file)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    with_log = folder / "with-log.toml"
    with_log.write_text('[log]\npath = "runs/blocked.jsonl"\n', encoding="utf-8")
    without = folder / "without.toml"
    without.write_text('[rules]\n"hetu.malformed_test" = "warn"\n', encoding="utf-8")
    assert load_policy(with_log).log.path == folder / "runs" / "blocked.jsonl"
    assert load_policy(without).log.path == paths.default_log()


def test_policy_text_without_folder_logs_in_the_state_folder(state_home: Path) -> None:
    """Policy text with no file (an API caller's) puts a relative log in the per-user folder."""
    policy = parse_policy('[log]\npath = "mine.jsonl"\n')
    assert policy.log.path == paths.log_dir() / "mine.jsonl"
