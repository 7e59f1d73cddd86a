"""The policy: each rule's action, the scanning limits and the log settings, from TOML.

One file, read once at start-up. The embedded default (``default_policy.toml``) is the safe one; a
user file overrides only the keys it names. Anything wrong (a syntax error, an unknown section,
key, rule id or action, a weakened ``unscannable``, a limit that is not a positive integer) raises
:class:`PolicyError` naming the file and line: a guard with a policy it misread must not start.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import PolicyError
from .model import Action
from .rules import RULES

__all__ = ["Limits", "LogSettings", "Policy", "default_policy", "load_policy", "parse_policy"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may cost to scan; beyond them the request is unscannable."""

    max_body_bytes: int
    max_decoded_bytes: int
    max_depth: int
    max_parts: int


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Where and how the blocked-request log is written."""

    path: Path
    max_bytes: int
    backups: int
    hash_key_file: Path | None


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy. ``actions`` maps every known rule id to its action."""

    actions: MappingProxyType[str, Action]
    limits: Limits
    log: LogSettings
    source: str

    def action(self, rule_id: str) -> Action:
        return self.actions[rule_id]

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled for the scan workers (kanta_guard.worker); a mappingproxy is not picklable.
        return (_rebuild, (dict(self.actions), self.limits, self.log, self.source))


def _rebuild(actions: dict[str, Action], limits: Limits, log: LogSettings, source: str) -> Policy:
    return Policy(MappingProxyType(actions), limits, log, source)


_DEFAULT_TEXT = resources.files(__package__).joinpath("default_policy.toml").read_text("utf-8")
_SECTIONS = {"rules", "limits", "log"}
_LIMIT_KEYS = {"max_body_bytes", "max_decoded_bytes", "max_depth", "max_parts"}
_LOG_KEYS = {"path", "max_bytes", "backups", "hash_key_file"}


def _line_of(text: str, key: str, section: str | None = None) -> int | None:
    """Best-effort line number of ``key`` (in ``[section]``) for error messages."""
    in_section = section is None
    pattern = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
    header = re.compile(rf"""^\s*\[\s*["']?{re.escape(key)}["']?\s*\]""")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if section is None and header.match(line):
            return number
        if stripped.startswith("["):
            in_section = section is None or stripped.strip("[] ") == section
            continue
        if in_section and pattern.match(line):
            return number
    return None


def _where(source: str, text: str, key: str, section: str | None) -> str:
    line = _line_of(text, key, section)
    return f"{source}, line {line}" if line else source


def _positive_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PolicyError(f"{where}: {name} must be a positive integer, not {value!r}")
    return value


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse a policy file's text, layered over the embedded default."""
    try:
        user = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    base = tomllib.loads(_DEFAULT_TEXT)
    for section, content in user.items():
        if section not in _SECTIONS:
            raise PolicyError(
                f"{_where(source, text, section, None)}: unknown section [{section}] "
                f"(expected one of: {', '.join(sorted(_SECTIONS))})"
            )
        if not isinstance(content, dict):
            raise PolicyError(f"{_where(source, text, section, None)}: {section} must be a table")
        base[section].update(content)

    known = {spec.id: spec for spec in RULES}
    actions: dict[str, Action] = {spec.id: spec.default for spec in RULES}
    for rule_id, value in base["rules"].items():
        where = _where(source, text, rule_id, "rules")
        spec = known.get(rule_id)
        if spec is None:
            raise PolicyError(
                f"{where}: unknown rule id {rule_id!r} (known: {', '.join(sorted(known))})"
            )
        try:
            action = Action(value)
        except ValueError:
            raise PolicyError(
                f"{where}: rule {rule_id!r} has action {value!r}; expected block, warn or off"
            ) from None
        if not spec.adjustable and action is not spec.default:
            raise PolicyError(
                f"{where}: rule {rule_id!r} cannot be set to {value!r}: "
                "what the guard cannot read is never forwarded"
            )
        actions[rule_id] = action

    limits_raw = base["limits"]
    for key in limits_raw:
        if key not in _LIMIT_KEYS:
            raise PolicyError(f"{_where(source, text, key, 'limits')}: unknown key limits.{key}")
    limits = Limits(
        **{
            key: _positive_int(
                limits_raw[key], f"limits.{key}", _where(source, text, key, "limits")
            )
            for key in _LIMIT_KEYS
        }
    )
    if limits.max_decoded_bytes < limits.max_body_bytes:
        raise PolicyError(
            f"{_where(source, text, 'max_decoded_bytes', 'limits')}: limits.max_decoded_bytes "
            "must be at least limits.max_body_bytes"
        )

    log_raw = base["log"]
    for key in log_raw:
        if key not in _LOG_KEYS:
            raise PolicyError(f"{_where(source, text, key, 'log')}: unknown key log.{key}")
    for key in ("path", "hash_key_file"):
        if not isinstance(log_raw[key], str):
            raise PolicyError(f"{_where(source, text, key, 'log')}: log.{key} must be a string")
    if not log_raw["path"]:
        raise PolicyError(f"{_where(source, text, 'path', 'log')}: log.path must not be empty")
    log = LogSettings(
        path=Path(log_raw["path"]).expanduser(),
        max_bytes=_positive_int(
            log_raw["max_bytes"], "log.max_bytes", _where(source, text, "max_bytes", "log")
        ),
        backups=_positive_int(
            log_raw["backups"], "log.backups", _where(source, text, "backups", "log")
        ),
        hash_key_file=Path(log_raw["hash_key_file"]).expanduser()
        if log_raw["hash_key_file"]
        else None,
    )
    return Policy(MappingProxyType(actions), limits, log, source)


def default_policy() -> Policy:
    """The embedded default policy."""
    return parse_policy("", "<embedded default>")


def load_policy(path: str | Path | None) -> Policy:
    """Read a policy file, or the embedded default when ``path`` is None or empty."""
    if not path:
        return default_policy()
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file {path} is not UTF-8 (byte {exc.start})") from exc
    return parse_policy(text, str(path))
