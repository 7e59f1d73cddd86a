"""Shared fixtures: a scanner on the default policy with a fixed hash key, and the corpus path."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import identity_policy

from kanta_guard import KeyedHasher, Scanner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The shared corpus lies beside the project checkout; people who clone elsewhere do not have it.
CORPUS = ROOT.parent / "shared" / "corpus"

TEST_KEY = b"kanta-guard-test-key-0123456789"


@pytest.fixture(autouse=True)
def _hash_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test hashes with a fixed key and never touches the user's key file."""
    monkeypatch.setenv("KANTA_GUARD_HASH_KEY", TEST_KEY.decode())
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    """A scanner on the embedded default policy, identity-code rules only (``identity_policy``)."""
    return Scanner(identity_policy(), KeyedHasher(TEST_KEY))


def corpus_dir() -> Path:
    """The shared corpus, or skip the test saying why."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lies beside the project checkout)")
    return CORPUS
