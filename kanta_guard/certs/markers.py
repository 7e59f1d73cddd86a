"""The default certificate rules (test and production markers), loaded from data.

Without trust anchors these decide: a DN ``O=… TEST`` or a test CA name, a policy OID under
``1.2.246.517.99.`` mark a test certificate; ``O=… CA`` production names, policies under
``1.2.246.517.1.`` and the pinned production roots and intermediates (by SHA-256, and as the
issuer of a certificate) mark production. With anchors the production markers still apply:
a chain that verifies to an anchor but shows them is production (an anchor folder holding a
production CA by mistake must not turn production traffic into test traffic).

The rules are data, ``kanta_guard/data/certs/rules.toml`` (see the ``SOURCE.md`` beside it),
so a new CA generation is a line there, not code. Markers are strings safe to show: CA names,
organisation names of CAs, policy OIDs, a SHA-256 prefix; never a card holder's name.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from ..errors import PolicyError
from .x509 import Certificate, CertificateError, load_certificate

__all__ = ["CertRules", "PinnedCA", "card_marker", "is_test_card"]

# A CA generation suffix: " - G2", " - G3 RSA", " - G5E".
_GENERATION = re.compile(r"\s+-\s+g\d+[a-z]*(?:\s+[a-z]+)?$")


def _fold(text: str) -> str:
    """Case-folded, diacritics off, whitespace collapsed: how DN values are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(plain.split())


def _base_name(text: str) -> str:
    """A CA name folded, without its generation suffix."""
    return _GENERATION.sub("", _fold(text))


@dataclass(frozen=True, slots=True)
class PinnedCA:
    """A production CA pinned by the SHA-256 of its DER; ``subject_key`` (its subject DN in
    RFC 5280 comparison form) when the certificate itself ships with the rules."""

    name: str
    sha256: str
    subject_key: str | None = None


@dataclass(frozen=True, slots=True)
class CertRules:
    """The markers, as data. Names are stored folded (see :func:`_fold`), CA names without
    their generation suffix. Build with :meth:`default` or :meth:`from_toml`."""

    test_organizations: frozenset[str]
    test_ca_names: frozenset[str]
    test_policy_prefixes: tuple[str, ...]
    production_organizations: frozenset[str]
    production_ca_names: frozenset[str]
    production_policy_prefixes: tuple[str, ...]
    pinned: tuple[PinnedCA, ...]
    card_name_markers: frozenset[str]
    card_surname_suffixes: frozenset[str]
    card_serial_prefixes: tuple[str, ...]
    #: Digest algorithms refused in the signatures of a chain (asn1crypto names: md5, sha1 ...).
    weak_hash_algorithms: frozenset[str]

    @staticmethod
    def default() -> CertRules:
        """The embedded rules, ``kanta_guard/data/certs/rules.toml`` (read once per process)."""
        return _default()

    @classmethod
    def from_toml(cls, text: str, folder: Traversable | None = None) -> CertRules:
        """Rules from TOML text in the layout of the embedded ``rules.toml``; ``folder`` holds
        the files pinned by ``file``. Raises :class:`~kanta_guard.errors.PolicyError` naming
        the key or file at fault."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"certificate rules: {exc}") from None
        test = _table(data, "test")
        production = _table(data, "production")
        card = _table(data, "card")
        validation = _table(data, "validation")
        return cls(
            test_organizations=frozenset(map(_fold, _strings(test, "test.organizations"))),
            test_ca_names=frozenset(map(_base_name, _strings(test, "test.ca_names"))),
            test_policy_prefixes=_strings(test, "test.policy_prefixes"),
            production_organizations=frozenset(
                map(_fold, _strings(production, "production.organizations"))
            ),
            production_ca_names=frozenset(
                map(_base_name, _strings(production, "production.ca_names"))
            ),
            production_policy_prefixes=_strings(production, "production.policy_prefixes"),
            pinned=tuple(_pinned(production.get("pinned", []), folder)),
            card_name_markers=frozenset(map(_fold, _strings(card, "card.name_markers"))),
            card_surname_suffixes=frozenset(map(_fold, _strings(card, "card.surname_suffixes"))),
            card_serial_prefixes=_strings(card, "card.serial_prefixes"),
            weak_hash_algorithms=frozenset(_strings(validation, "validation.weak_hash_algorithms")),
        )

    # -- markers ---------------------------------------------------------------------------

    def test_markers(self, cert: Certificate) -> tuple[str, ...]:
        """What marks ``cert`` as issued in a test hierarchy: its issuer's test organisation
        or CA name, a test policy; for a CA certificate its own subject's too (a CA names
        itself). A non-CA subject's own DN is no marker: anyone can write "TEST" there."""
        found = [f"issuer {m}" for m in self._names(cert.issuer_attrs, test=True)]
        if cert.is_ca:
            found.extend(f"subject {m}" for m in self._names(cert.subject_attrs, test=True))
        found.extend(f"policy {p}" for p in _prefixed(cert.policies, self.test_policy_prefixes))
        return tuple(found)

    def production_markers(self, cert: Certificate) -> tuple[str, ...]:
        """What marks ``cert`` as production: a pinned production CA (the certificate itself,
        or its issuer by DN), a production organisation or CA name in its issuer or subject DN,
        a production policy."""
        found: list[str] = []
        for pin in self.pinned:
            if cert.sha256 == pin.sha256:
                found.append(f"pinned production CA {pin.name!r} (SHA-256 {pin.sha256[:8]}…)")
            elif pin.subject_key is not None and cert.issuer_key == pin.subject_key:
                found.append(f"issuer is the pinned production CA {pin.name!r}")
        found.extend(f"issuer {m}" for m in self._names(cert.issuer_attrs, test=False))
        found.extend(f"subject {m}" for m in self._names(cert.subject_attrs, test=False))
        found.extend(
            f"policy {p}" for p in _prefixed(cert.policies, self.production_policy_prefixes)
        )
        return tuple(found)

    def pinned_as(self, cert: Certificate) -> PinnedCA | None:
        """The pin ``cert`` is, if it is one of the pinned production CAs."""
        return next((pin for pin in self.pinned if pin.sha256 == cert.sha256), None)

    def _names(self, attrs: Iterable[tuple[str, str]], *, test: bool) -> list[str]:
        organizations = self.test_organizations if test else self.production_organizations
        ca_names = self.test_ca_names if test else self.production_ca_names
        found: list[str] = []
        for key, value in attrs:
            if key == "O" and _fold(value) in organizations:
                found.append(f"O={value}")
            elif key == "CN" and _base_name(value) in ca_names:
                found.append(f"CN={value}")
        return found

    def card_marker(self, cert: Certificate) -> str | None:
        """The test-card marker in ``cert``'s subject, or None: a ``SPECIMEN`` name part (in the
        surname, given name or CN), a surname whose last word is ``Tes``, a serial number
        starting ``999``. Says nothing of the issuer (see :func:`is_test_card`)."""
        surnames = cert.subject_values("SN")
        names = (*surnames, *cert.subject_values("GN"), *cert.subject_values("CN"))
        for value in names:
            if any(_fold(part) in self.card_name_markers for part in re.split(r"[\s\-]+", value)):
                return "a SPECIMEN test name"
        # Without a surname attribute, the CN's words stand for it ("Hukka Tes Hanna").
        for value in surnames or cert.subject_values("CN"):
            words = [_fold(word) for word in value.split()]
            last = words[-1:] if surnames else words
            if any(word in self.card_surname_suffixes for word in last):
                return "a ' Tes' test surname"
        for value in cert.subject_values("serialNumber"):
            if value.startswith(self.card_serial_prefixes):
                return "a 999 test serial number"
        return None


def card_marker(cert: Certificate, rules: CertRules | None = None) -> str | None:
    """The test-card marker of ``cert`` under ``rules`` (default: :meth:`CertRules.default`),
    or None; see :meth:`CertRules.card_marker`. (Not named ``test_…``: pytest would
    collect it from every test module that imports it.)"""
    return (rules or CertRules.default()).card_marker(cert)


def is_test_card(cert: Certificate, rules: CertRules | None = None) -> bool:
    """True if the card carries a DVV test-card marker (``SPECIMEN-`` or ``… Tes`` surname,
    ``999…`` serial number).

    This is the card half of "a test card": the issuer half is the judge's
    (:class:`~kanta_guard.certs.CertJudge`), which for a certificate of role CARD already
    requires both. A detector of professional signatures asks the judge, and may ask this
    to say which half failed.
    """
    return card_marker(cert, rules) is not None


@cache
def _default() -> CertRules:
    folder = resources.files("kanta_guard") / "data" / "certs"
    return CertRules.from_toml((folder / "rules.toml").read_text("utf-8"), folder)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PolicyError(f"certificate rules: [{key}] must be a table")
    return value


def _strings(table: Mapping[str, Any], dotted: str) -> tuple[str, ...]:
    value = table.get(dotted.rsplit(".", 1)[1], [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyError(f"certificate rules: {dotted} must be a list of strings")
    return tuple(value)


def _prefixed(policies: Iterable[str], prefixes: tuple[str, ...]) -> list[str]:
    return [policy for policy in policies if policy.startswith(prefixes)]


def _pinned(entries: object, folder: Traversable | None) -> Iterable[PinnedCA]:
    if not isinstance(entries, list):
        raise PolicyError("certificate rules: production.pinned must be an array of tables")
    for index, entry in enumerate(entries, 1):
        where = f"certificate rules: production.pinned[{index}]"
        if not isinstance(entry, dict):
            raise PolicyError(f"{where} must be a table")
        name, digest, file = entry.get("name"), entry.get("sha256"), entry.get("file")
        if not isinstance(name, str) or not isinstance(digest, str):
            raise PolicyError(f"{where} needs a name and a sha256")
        digest = digest.replace(":", "").upper()
        if re.fullmatch(r"[0-9A-F]{64}", digest) is None:
            raise PolicyError(f"{where}: sha256 must be 64 hex digits")
        subject_key = None
        if file is not None:
            if not isinstance(file, str) or folder is None:
                raise PolicyError(f"{where}: file needs a folder to read it from")
            subject_key = _pinned_subject(folder / file, digest, where)
        yield PinnedCA(name, digest, subject_key)


def _pinned_subject(path: Traversable, digest: str, where: str) -> str:
    try:
        der = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{where}: cannot read {path.name}: {exc.strerror}") from None
    if hashlib.sha256(der).hexdigest().upper() != digest:
        raise PolicyError(f"{where}: {path.name} does not have the pinned SHA-256")
    try:
        return load_certificate(der).subject_key
    except CertificateError as exc:
        raise PolicyError(f"{where}: {path.name}: {exc}") from None
