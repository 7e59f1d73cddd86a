"""The policy: each rule's action, the scanning limits and the log settings, from TOML.

One file, read once at start-up. The embedded default (``default_policy.toml``) is the safe one; a
user file overrides only the keys it names. Anything wrong (a syntax error, an unknown section,
key, rule id or action, a weakened ``unscannable``, a limit that is not a positive integer) raises
:class:`PolicyError` naming the file and line: a guard with a policy it misread must not start.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .destinations import DEFAULT_HOSTS, Destinations, parse_entry
from .dicom.settings import DicomSettings
from .errors import PolicyError
from .idcode import mask_text
from .model import Action
from .paths import policy_log_path
from .rules import REGISTRY_STRICT, RULES

__all__ = [
    "CertificateSettings",
    "ContactSettings",
    "Limits",
    "LogSettings",
    "Policy",
    "RuntimeSettings",
    "TestingMode",
    "default_policy",
    "load_policy",
    "parse_policy",
    "weakenings",
]


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
    #: True: while the log cannot be written, the guard refuses all traffic (the record of what
    #: was stopped is part of the promise). False: it goes on blocking, without a record.
    required: bool = True


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """Who may change the running guard: whether a weaker policy may replace this one live."""

    allow_weakening: bool = False


@dataclass(frozen=True, slots=True)
class TestingMode:
    """Which pool of Kela-issued test codes is in use: independent testing, or joint testing of
    one test case (a joint code may be used only in the cases it was requested for)."""

    joint: bool = False
    case: str = ""

    def __str__(self) -> str:
        return f"joint ({self.case})" if self.joint else "independent"

    @staticmethod
    def parse(mode: str, case: str = "", where: str = "testing mode") -> TestingMode:
        """``independent``, or ``joint`` with a test case id; PolicyError for anything else."""
        mode = mode.strip().lower()
        case = case.strip()
        if mode == "independent":
            if case:
                raise PolicyError(f"{where}: a test case is given for independent testing")
            return TestingMode()
        if mode == "joint":
            if not case:
                raise PolicyError(f"{where}: joint testing needs a test case id")
            return TestingMode(True, case)
        raise PolicyError(f"{where}: mode {mode!r} is neither independent nor joint")


@dataclass(frozen=True, slots=True)
class ContactSettings:
    """Test contact details the policy allows for persons (besides the registry's and the
    domains reserved for testing): e-mail addresses and domains, phone numbers (compared in
    E.164), street addresses, and patterns (regular expressions, full match, case-insensitive)
    for test addresses."""

    emails: tuple[str, ...] = ()
    email_domains: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    address_patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CertificateSettings:
    """How certificates are judged: the folder of trust anchors (the DVV/VRK test CA
    certificates, PEM or DER), or None for the rules shipped as data (names, policy OIDs, pinned
    production CAs). With anchors, a certificate is a test one only if its chain verifies to one."""

    anchors: Path | None = None


#: The ``[dicom]`` settings of a policy that sets none (the strict ones).
DEFAULT_DICOM = DicomSettings()
#: The embedded default's allowed upstream hosts (``[upstream] hosts``).
DEFAULT_DESTINATIONS = Destinations.parse(DEFAULT_HOSTS)


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy. ``actions`` maps every known rule id to its action.

    ``digest`` is SHA-256 over the policy's effective content (every action, limit and log
    setting, not its file's bytes): the same effective policy has the same digest wherever it was
    read from, and any change to what it enforces changes it.
    """

    actions: MappingProxyType[str, Action]
    limits: Limits
    log: LogSettings
    source: str
    runtime: RuntimeSettings = RuntimeSettings()
    #: The registry of test identities (``[registry] file``), None without one.
    registry: Path | None = None
    testing: TestingMode = TestingMode()
    contacts: ContactSettings = ContactSettings()
    #: Rule ids whose action the policy file sets itself (the others follow the registry).
    explicit: frozenset[str] = frozenset()
    #: The allowed upstream hosts (``[upstream] hosts``): any other is ``upstream.not-allowed``.
    upstream: Destinations = DEFAULT_DESTINATIONS
    certificates: CertificateSettings = CertificateSettings()
    #: Imaging: safe private attributes, accepted dummies, profile options, OCR (``[dicom]``).
    dicom: DicomSettings = DEFAULT_DICOM

    def action(self, rule_id: str) -> Action:
        return self.actions[rule_id]

    def with_registry(self, registry: Path | None) -> Policy:
        """This policy with another registry file (or none): the registry-strict rules the
        file does not set block with a registry, and take their defaults without one."""
        actions = _registry_actions(dict(self.actions), registry, self.explicit)
        return replace(self, registry=registry, actions=MappingProxyType(actions))

    def with_testing(self, testing: TestingMode) -> Policy:
        return replace(self, testing=testing)

    @property
    def digest(self) -> str:
        content = {
            "rules": dict(sorted((k, str(v)) for k, v in self.actions.items())),
            "limits": asdict(self.limits),
            "log": {k: str(v) for k, v in asdict(self.log).items()},
            "runtime": asdict(self.runtime),
            "registry": str(self.registry or ""),
            "testing": str(self.testing),
            "contacts": asdict(self.contacts),
            "upstream": list(self.upstream.texts),
            "certificates": {"anchors": str(self.certificates.anchors or "")},
            "dicom": _dicom_content(self.dicom),
        }
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled for the scan workers (kanta_guard.worker); a mappingproxy is not picklable.
        return (
            _rebuild,
            (
                dict(self.actions),
                self.limits,
                self.log,
                self.source,
                self.runtime,
                self.registry,
                self.testing,
                self.contacts,
                self.explicit,
                self.upstream,
                self.certificates,
                self.dicom,
            ),
        )


def _rebuild(
    actions: dict[str, Action],
    limits: Limits,
    log: LogSettings,
    source: str,
    runtime: RuntimeSettings,
    registry: Path | None = None,
    testing: TestingMode = TestingMode(),
    contacts: ContactSettings = ContactSettings(),
    explicit: frozenset[str] = frozenset(),
    upstream: Destinations = DEFAULT_DESTINATIONS,
    certificates: CertificateSettings = CertificateSettings(),
    dicom: DicomSettings = DEFAULT_DICOM,
) -> Policy:
    return Policy(
        MappingProxyType(actions),
        limits,
        log,
        source,
        runtime,
        registry,
        testing,
        contacts,
        explicit,
        upstream,
        certificates,
        dicom,
    )


def _registry_actions(
    actions: dict[str, Action], registry: Path | None, explicit: frozenset[str]
) -> dict[str, Action]:
    """Without a registry the name, phone and address rules take their defaults (warn: the guard
    cannot know who is allowed); with one, those the policy does not set itself block."""
    defaults = {spec.id: spec.default for spec in RULES}
    for rule_id in REGISTRY_STRICT - explicit:
        actions[rule_id] = Action.BLOCK if registry is not None else defaults[rule_id]
    return actions


_RANK = {Action.OFF: 0, Action.WARN: 1, Action.BLOCK: 2}


def weakenings(old: Policy, new: Policy) -> list[str]:
    """What ``new`` enforces less strictly than ``old``, one phrase each (empty: none).

    A rule whose action drops (block to warn or off, warn to off) and a limit that grows are
    weakenings; so is a log that is no longer required, a policy that newly allows weakening,
    one without the registry of test identities the old one had, an allowed upstream host the
    old list did not allow (an entry no old entry covers), and any change of the trust anchors
    (which certificates pass as test ones then depends on files the policy does not pin: a
    folder removed falls back to the name rules, another folder may hold other CAs).
    """
    found = [
        f"rule {rule_id!r} {old.action(rule_id)} -> {new.action(rule_id)}"
        for rule_id in old.actions
        if _RANK[new.actions.get(rule_id, Action.BLOCK)] < _RANK[old.action(rule_id)]
    ]
    for key, value in asdict(new.limits).items():
        if value > getattr(old.limits, key):
            found.append(f"limits.{key} {getattr(old.limits, key)} -> {value}")
    if old.log.required and not new.log.required:
        found.append("log.required true -> false")
    if new.runtime.allow_weakening and not old.runtime.allow_weakening:
        found.append("runtime.allow_weakening false -> true")
    if old.registry is not None and new.registry is None:
        found.append("registry of test identities -> none (its pool and case rules go)")
    for entry in old.upstream.not_covered(new.upstream):
        found.append(f"upstream.hosts newly allows {entry}")
    found.extend(_dicom_weakenings(old.dicom, new.dicom))
    if old.certificates.anchors != new.certificates.anchors:
        found.append(
            f"certificates.anchors {old.certificates.anchors or 'none'} -> "
            f"{new.certificates.anchors or 'none'}"
        )
    return found


_DEFAULT_TEXT = resources.files(__package__).joinpath("default_policy.toml").read_text("utf-8")
_SECTIONS = {
    "rules",
    "limits",
    "log",
    "runtime",
    "registry",
    "testing",
    "contacts",
    "upstream",
    "certificates",
    "dicom",
}
_REGISTRY_KEYS = {"file"}
_TESTING_KEYS = {"mode", "case"}
_CONTACT_KEYS = {"emails", "email_domains", "phones", "addresses", "address_patterns"}
_LIMIT_KEYS = {"max_body_bytes", "max_decoded_bytes", "max_depth", "max_parts"}
_LOG_KEYS = {"path", "max_bytes", "backups", "hash_key_file", "required"}
_RUNTIME_KEYS = {"allow_weakening"}
_UPSTREAM_KEYS = {"hosts"}
_CERTIFICATE_KEYS = {"anchors"}


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


def _section(
    base: dict[str, Any],
    name: str,
    keys: set[str],
    kind: type,
    phrase: str,
    source: str,
    text: str,
) -> dict[str, Any]:
    """A section of the policy whose every key is known and of one type (PolicyError naming
    the line otherwise)."""
    raw: dict[str, Any] = base[name]
    for key, value in raw.items():
        where = _where(source, text, key, name)
        if key not in keys:
            raise PolicyError(f"{where}: unknown key {name}.{key}")
        if not isinstance(value, kind):
            shown = f", not {value!r}" if kind is bool else ""
            raise PolicyError(f"{where}: {name}.{key} must be {phrase}{shown}")
    return raw


def _entry_where(source: str, text: str, section: str, key: str, entry: str) -> str:
    """The line of one entry of a list (``key = [...]`` in ``[section]``), or the key's line."""
    start = _line_of(text, key, section)
    if start is None:
        return source
    quoted = (json.dumps(entry), f"'{entry}'")
    lines = text.splitlines()
    for number in range(start, len(lines) + 1):
        line = lines[number - 1]
        if number > start and line.lstrip().startswith("["):
            break  # the next section
        if any(q in line for q in quoted):
            return f"{source}, line {number}"
    return f"{source}, line {start}"


def _relative(path_text: str, source_dir: Path | None) -> Path:
    """A path from the policy: ``~`` expanded, a relative one taken from the policy's folder."""
    path = Path(path_text).expanduser()
    if not path.is_absolute() and source_dir is not None:
        path = source_dir / path
    return path


def _positive_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PolicyError(f"{where}: {name} must be a positive integer, not {value!r}")
    return value


def parse_policy(text: str, source: str = "<policy>", source_dir: Path | None = None) -> Policy:
    """Parse a policy file's text, layered over the embedded default. A relative registry path
    is taken from ``source_dir`` (the policy file's folder), else the working directory; a
    relative log path from ``source_dir``, else the per-user log folder
    (:func:`kanta_guard.paths.policy_log_path`): ``log.path`` is always absolute."""
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
    for key in ("required",):
        if not isinstance(log_raw[key], bool):
            raise PolicyError(
                f"{_where(source, text, key, 'log')}: log.{key} must be true or false, "
                f"not {log_raw[key]!r}"
            )
    # A relative path the policy file sets is beside the file; the embedded default's (and one
    # in text read with no folder) is in the per-user log folder, never the working directory.
    log_set_here = isinstance(user.get("log"), dict) and "path" in user["log"]
    log = LogSettings(
        path=policy_log_path(log_raw["path"], source_dir if log_set_here else None),
        max_bytes=_positive_int(
            log_raw["max_bytes"], "log.max_bytes", _where(source, text, "max_bytes", "log")
        ),
        backups=_positive_int(
            log_raw["backups"], "log.backups", _where(source, text, "backups", "log")
        ),
        hash_key_file=Path(log_raw["hash_key_file"]).expanduser()
        if log_raw["hash_key_file"]
        else None,
        required=log_raw["required"],
    )

    runtime_raw = _section(base, "runtime", _RUNTIME_KEYS, bool, "true or false", source, text)
    runtime = RuntimeSettings(allow_weakening=runtime_raw["allow_weakening"])

    registry_raw = _section(
        base, "registry", _REGISTRY_KEYS, str, "a string (a file path)", source, text
    )
    # Beside the policy file that names it.
    registry = _relative(registry_raw["file"], source_dir) if registry_raw["file"] else None

    testing_raw = _section(base, "testing", _TESTING_KEYS, str, "a string", source, text)
    testing = TestingMode.parse(
        testing_raw["mode"], testing_raw["case"], _where(source, text, "mode", "testing")
    )

    contacts_raw = base["contacts"]
    for key, value in contacts_raw.items():
        where = _where(source, text, key, "contacts")
        if key not in _CONTACT_KEYS:
            raise PolicyError(f"{where}: unknown key contacts.{key}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"{where}: contacts.{key} must be a list of strings")
    for pattern in contacts_raw["address_patterns"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            where = _where(source, text, "address_patterns", "contacts")
            raise PolicyError(f"{where}: contacts.address_patterns: {exc}") from None
    contacts = ContactSettings(**{key: tuple(contacts_raw[key]) for key in _CONTACT_KEYS})

    upstream = _upstream(base, source, text)
    certificates_raw = _section(
        base, "certificates", _CERTIFICATE_KEYS, str, "a string (a folder)", source, text
    )
    anchors = certificates_raw["anchors"]
    certificates = CertificateSettings(_relative(anchors, source_dir) if anchors else None)
    dicom_raw = base["dicom"]
    if not isinstance(dicom_raw, dict):
        raise PolicyError(f"{_where(source, text, 'dicom', None)}: dicom must be a table")
    dicom = DicomSettings.parse(dicom_raw, lambda key: _where(source, text, key, "dicom"))

    explicit = frozenset(user.get("rules", {}))
    actions = _registry_actions(actions, registry, explicit)
    return _rebuild(
        actions,
        limits,
        log,
        source,
        runtime,
        registry,
        testing,
        contacts,
        explicit,
        upstream,
        certificates,
        dicom,
    )


def _upstream(base: dict[str, Any], source: str, text: str) -> Destinations:
    """``[upstream] hosts``: every entry a host name, ``*.domain``, IP address or CIDR range
    (PolicyError naming the entry's line otherwise). A policy's list replaces the default's."""
    raw = base["upstream"]
    for key in raw:
        if key not in _UPSTREAM_KEYS:
            where = _where(source, text, key, "upstream")
            raise PolicyError(f"{where}: unknown key upstream.{key}")
    hosts = raw["hosts"]
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        where = _where(source, text, "hosts", "upstream")
        raise PolicyError(f"{where}: upstream.hosts must be a list of strings")
    entries = []
    for host in hosts:
        try:
            entries.append(parse_entry(host))
        except ValueError as exc:
            where = _entry_where(source, text, "upstream", "hosts", host)
            raise PolicyError(
                f"{where}: upstream.hosts entry {mask_text(repr(host))}: {mask_text(str(exc))}"
            ) from None
    return Destinations(entries)


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
    return parse_policy(text, str(path), path.parent)


def _dicom_content(settings: DicomSettings) -> dict[str, object]:
    """The ``[dicom]`` settings as plain data, for the digest."""
    return {
        "safe_private": sorted(str(entry) for entry in settings.safe_private),
        "dummies": sorted(settings.dummies),
        "options": sorted(str(option) for option in settings.options),
        "keep": sorted(settings.keep),
        "ocr": str(settings.ocr),
        "ocr_budget_s": settings.ocr_budget_s,
        "ocr_max_frames": settings.ocr_max_frames,
        "incomplete_blocks": settings.incomplete_blocks,
        "max_elements": settings.max_elements,
        "max_sequence_depth": settings.max_sequence_depth,
    }


def _dicom_weakenings(old: DicomSettings, new: DicomSettings) -> list[str]:
    """What a new ``[dicom]`` section lets through that the old one did not: more safe private
    attributes, dummies, profile options or kept attributes; less OCR; incomplete OCR no
    longer blocking; larger bounds."""
    found = [
        f"dicom.{name} adds {len(added)} entries"
        for name, added in (
            ("safe_private", new.safe_private - old.safe_private),
            ("dummies", new.dummies - old.dummies),
            ("options", new.options - old.options),
            ("keep", new.keep - old.keep),
        )
        if added
    ]
    ocr_rank = {"off": 0, "on": 1, "all": 2}
    if ocr_rank[str(new.ocr)] < ocr_rank[str(old.ocr)]:
        found.append(f"dicom.ocr {old.ocr} -> {new.ocr}")
    if old.incomplete_blocks and not new.incomplete_blocks:
        found.append("dicom.incomplete_blocks true -> false")
    for name in ("ocr_max_frames", "max_elements", "max_sequence_depth"):
        if getattr(new, name) > getattr(old, name):
            found.append(f"dicom.{name} {getattr(old, name)} -> {getattr(new, name)}")
    return found
