"""Keyed hashes of sensitive values, so records can be correlated without being readable.

HMAC-SHA256 under a secret key (RFC 2104), truncated to 16 hex digits: the same code gives the same
hash in every record written with the same key, and without the key a 900-series dictionary attack
on the hashes (there are only a few million codes) is not possible.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .errors import PolicyError
from .paths import state_dir

__all__ = ["KEY_ENV", "KeyedHasher", "default_key_file", "load_key"]

#: Environment variable holding the hash key (any string of at least 16 characters).
KEY_ENV = "KANTA_GUARD_HASH_KEY"


class KeyedHasher:
    """Turns a raw value into a short, stable, unreadable token."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise PolicyError("the hash key must be at least 16 bytes long")
        self._key = key

    def __call__(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return "hmac:" + digest[:16]

    def __repr__(self) -> str:  # never show the key
        return "KeyedHasher(<key>)"


def default_key_file() -> Path:
    """``hash.key`` in the per-user state folder, beside the CA's folder
    (``$XDG_STATE_HOME/kanta-guard/hash.key`` on Linux: :func:`kanta_guard.paths.state_dir`)."""
    return state_dir() / "hash.key"


def load_key(key_file: Path | None = None) -> bytes:
    """The hash key: from ``$KANTA_GUARD_HASH_KEY``, else from ``key_file`` (created if absent).

    A key file is created with 32 random bytes and mode 0600 so hashes stay comparable across
    restarts of the guard.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        if len(env) < 16:
            raise PolicyError(f"${KEY_ENV} must be at least 16 characters long")
        return env.encode("utf-8")
    path = key_file or default_key_file()
    try:
        if path.exists():
            key = path.read_bytes().strip()
            if len(key) < 16:
                raise PolicyError(f"hash key file {path} holds fewer than 16 bytes")
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32).encode("ascii")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    except OSError as exc:
        raise PolicyError(f"cannot read or create hash key file {path}: {exc.strerror}") from exc
