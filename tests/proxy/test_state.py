"""Tests for kanta_guard.proxy.state: when the guard is ready, how a failing log is handled."""

from __future__ import annotations

from pathlib import Path

from kanta_guard import KeyedHasher, Scanner, default_policy
from kanta_guard.eventlog import EventLog, read_records
from kanta_guard.policy import parse_policy
from kanta_guard.proxy.state import GuardState

KEY = b"kanta-guard-test-key-0123456789"


def state_with(log: Path, policy_text: str = "") -> GuardState:
    """A configured state logging to ``log``."""
    policy = parse_policy(policy_text) if policy_text else default_policy()
    return GuardState(
        policy=policy,
        scanner=Scanner(policy, KeyedHasher(KEY)),
        log=EventLog(log),
        config_error=None,
    )


def test_unconfigured_is_not_ready() -> None:
    """A state without a policy is not ready and says why."""
    state = GuardState()
    assert not state.ready
    assert "not been configured" in state.why_not_ready()
    assert state.status()["ready"] is False


def test_failed_write_makes_it_not_ready_until_a_write_succeeds(tmp_path: Path) -> None:
    """A write failure stops traffic while the log is required; a later write brings it back."""
    state = state_with(Path("/dev/full"))
    assert state.ready
    assert state.write({"n": 1}) is False
    assert not state.ready and "cannot be written" in state.why_not_ready()
    assert state.probe() is False
    state.log = EventLog(tmp_path / "log.jsonl")  # the disk has room again
    assert state.probe() is True and state.ready
    assert read_records(tmp_path / "log.jsonl")[0]["event"] == "log-recovered"


def test_log_not_required_stays_ready(tmp_path: Path) -> None:
    """With log.required = false a failing log is reported, and the guard goes on."""
    state = state_with(Path("/dev/full"), "[log]\nrequired = false\n")
    assert state.write({"n": 1}) is False
    assert state.ready
    assert state.status()["log"]["writable"] is False  # type: ignore[index]


def test_failed_rotation_is_no_write_failure(tmp_path: Path) -> None:
    """A rotation that fails still writes the record: reported, but the guard stays ready."""
    log = tmp_path / "log.jsonl"
    (tmp_path / "log.jsonl.1" / "x").mkdir(parents=True)
    state = state_with(log)
    state.log = EventLog(log, max_bytes=40, backups=1)
    for n in range(3):
        assert state.write({"n": n, "pad": "x" * 30}) is True
    assert state.ready and state.rotation_error
    assert [r["n"] for r in read_records(log)] == [0, 1, 2]


def test_status_shows_policy_source_and_digest(tmp_path: Path) -> None:
    """The status names the active policy and its digest, and where the log is."""
    state = state_with(tmp_path / "log.jsonl")
    status = state.status()
    assert status["policy"]["digest"] == default_policy().digest  # type: ignore[index]
    assert status["policy"]["source"] == "<embedded default>"  # type: ignore[index]
    assert status["log"]["path"] == str(tmp_path / "log.jsonl")  # type: ignore[index]
