"""Where kanta-guard keeps its per-user state: the proxy's CA and the blocked-request log.

Each platform's convention, by platformdirs: on Linux ``$XDG_STATE_HOME/kanta-guard``
(``~/.local/state/kanta-guard``), on macOS ``~/Library/Application Support/kanta-guard``, on
Windows ``%LOCALAPPDATA%\\kanta-guard``. Nothing defaults to the working directory: two guards
started in one folder must not share a log, and an installed guard has no checkout to write in.

- the CA (``mitmproxy-ca.pem`` and the certificate files clients trust) in :func:`ca_dir`;
- the blocked-request log in :func:`log_dir` (``…/kanta-guard/log`` on Linux,
  ``~/Library/Logs/kanta-guard`` on macOS, ``%LOCALAPPDATA%\\kanta-guard\\Logs`` on Windows);
- the hash key beside them (``hash.key``: :func:`kanta_guard.masking.default_key_file`).

A relative ``log.path`` in a policy file is taken from the policy file's folder (the policy and
its log travel together, as its registry and trust anchors do); the embedded default's, and
that of a policy read from text with no folder, from :func:`log_dir`. A path given on the
command line is taken from the working directory, as any command-line path is.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_log_path, user_state_path

__all__ = [
    "APP",
    "CA_BASENAME",
    "LOG_NAME",
    "ca_cert",
    "ca_dir",
    "default_log",
    "log_dir",
    "policy_log_path",
    "state_dir",
]

#: The application name the per-user folders are named after.
APP = "kanta-guard"
#: The file name of the blocked-request log in the per-user log folder.
LOG_NAME = "kanta-guard-blocked.jsonl"
#: The basename of the CA files in the confdir: the one mitmproxy loads (``mitmproxy-ca.pem``).
CA_BASENAME = "mitmproxy"


def state_dir() -> Path:
    """The per-user state folder (``$XDG_STATE_HOME/kanta-guard`` on Linux)."""
    # appauthor=False: no vendor folder level on Windows (``%LOCALAPPDATA%\kanta-guard``).
    return user_state_path(APP, appauthor=False)


def ca_dir() -> Path:
    """The default confdir: where the proxy's CA is generated on first start."""
    return state_dir() / "ca"


def ca_cert(confdir: Path) -> Path:
    """The CA certificate (PEM, no key) in ``confdir``: the file clients add to their trust."""
    return confdir / f"{CA_BASENAME}-ca-cert.pem"


def log_dir() -> Path:
    """The per-user log folder (``$XDG_STATE_HOME/kanta-guard/log`` on Linux)."""
    return user_log_path(APP, appauthor=False)


def default_log() -> Path:
    """The blocked-request log of the embedded default policy."""
    return log_dir() / LOG_NAME


def policy_log_path(text: str, policy_dir: Path | None) -> Path:
    """A policy's ``log.path`` as an absolute path: ``~`` expanded; a relative one taken from
    ``policy_dir`` (the policy file's folder), or from :func:`log_dir` without one."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (policy_dir if policy_dir is not None else log_dir()) / path
    return path.absolute()
