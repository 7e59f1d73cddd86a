"""Shared fixtures: a scanner on the default policy with a fixed hash key, the corpus path, and
per-user folders in tmp: the suite leaves nothing in the checkout or the user's home.

The per-user folders (``XDG_STATE_HOME``, where the guard keeps its CA, log and hash key, and
``XDG_DATA_HOME``, ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME``) point into tmp for the whole
session, in this process and every subprocess it starts; each test then gets a state folder of
its own. At the end of the session the checkout is compared with how it was at the start: a
file or folder the suite left there (a log, a CA, a build folder) fails the session, named.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest
from helpers import identity_policy

from kanta_guard import KeyedHasher, Scanner

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: The shared corpus lies beside the project checkout; people who clone elsewhere do not have it.
CORPUS = ROOT.parent / "shared" / "corpus"

TEST_KEY = b"kanta-guard-test-key-0123456789"

#: The per-user folders pointed into tmp (platformdirs reads them on Linux).
USER_DIRS = ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
#: Ignored entries that may appear in the checkout during a run: bytecode, and pytest's cache.
_EXPECTED_LEFTOVERS = ("__pycache__/", ".pytest_cache/")

# Hypothesis keeps its example database in the working directory (.hypothesis/) unless told
# otherwise: the user's cache folder keeps it across runs, outside the checkout.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY",
    str(platformdirs.user_cache_path("kanta-guard", appauthor=False) / "hypothesis"),
)


_BEFORE = pytest.StashKey[set[str] | None]()


def _checkout_entries() -> set[str] | None:
    """What a run could leave in the checkout (``git status --ignored``): every ignored entry
    (a log, a CA, a build folder), and untracked ones at the top (where a test's working
    directory would put them; deeper ones are source files being written meanwhile). None
    where there is no git checkout to look at."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(
            [git, "status", "--porcelain", "--ignored", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return None
    return {
        line[3:]
        for line in out.splitlines()
        if line[:2] == "!!" or (line[:2] == "??" and "/" not in line[3:].rstrip("/"))
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _checkout_entries()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session when it left files in the checkout (named on the terminal)."""
    before = session.config.stash.get(_BEFORE, None)
    after = _checkout_entries() if before is not None else None
    if before is None or after is None:
        return
    left = sorted(
        entry for entry in after - before if not any(part in entry for part in _EXPECTED_LEFTOVERS)
    )
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test suite left files in the checkout: " + ", ".join(left)
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Per-user folders in tmp for the whole session (subprocesses inherit them)."""
    home = tmp_path_factory.mktemp("user-dirs")
    with pytest.MonkeyPatch.context() as patch:
        for name in USER_DIRS:
            patch.setenv(name, str(home / name.removeprefix("XDG_").lower()))
        yield home


@pytest.fixture(autouse=True)
def _hash_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test hashes with a fixed key and never touches the user's key file; its state
    (the guard's CA, log and key), data and config folders are its own."""
    monkeypatch.setenv("KANTA_GUARD_HASH_KEY", TEST_KEY.decode())
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    """A scanner on the embedded default policy, identity-code rules only (``identity_policy``)."""
    return Scanner(identity_policy(), KeyedHasher(TEST_KEY))


def corpus_dir() -> Path:
    """The shared corpus, or skip the test saying why."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it lies beside the project checkout)")
    return CORPUS
