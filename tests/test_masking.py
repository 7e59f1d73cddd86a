"""Tests for kanta_guard.masking: keyed hashes and where their key comes from."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kanta_guard import KeyedHasher, PolicyError, load_key
from kanta_guard.masking import KEY_ENV


def test_hash_is_stable_keyed_and_short() -> None:
    """The same value gives the same hash under one key, another under another key."""
    one, two = KeyedHasher(b"a" * 16), KeyedHasher(b"b" * 16)
    assert one("010181-900C") == one("010181-900C")
    assert one("010181-900C") != two("010181-900C")
    assert one("010181-900C").startswith("hmac:") and len(one("x")) == 21
    assert "aaaa" not in repr(one)


def test_key_file_created_private_and_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the variable, a 0600 key file is created once and read back after a restart."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "state" / "hash.key"
    first = load_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == first


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$KANTA_GUARD_HASH_KEY wins over the file; a short one is a configuration error."""
    monkeypatch.setenv(KEY_ENV, "x" * 20)
    assert load_key(tmp_path / "unused.key") == b"x" * 20
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(PolicyError, match="at least 16"):
        load_key(None)


def test_short_key_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A key file with too little in it stops start-up rather than hashing weakly."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "hash.key"
    path.write_bytes(b"abc")
    with pytest.raises(PolicyError, match="fewer than 16 bytes"):
        load_key(path)


def test_default_key_file_is_beside_the_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash key lives in the per-user state folder, beside the CA's folder (the platform's
    convention, by platformdirs: ``$XDG_STATE_HOME`` on Linux)."""
    from kanta_guard import paths
    from kanta_guard.masking import default_key_file

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_key_file() == tmp_path / "kanta-guard" / "hash.key"
    assert default_key_file().parent == paths.ca_dir().parent
