"""The trust anchors folder: the DVV/VRK test CA certificates an operator installs.

The current DVV test roots are published only on DVV's own certificate service, so the guard
ships none: the operator downloads them and names the folder in the policy. Every
``.pem``/``.crt``/``.cer`` (PEM, many blocks allowed, or DER under those names), ``.der`` and
``.p7b``/``.p7c`` (PKCS#7 certificate bundles) file in it is read at start-up; self-signed CA
certificates become trust anchors, other CA certificates intermediates for path building
(the message may leave its intermediates out). Other files (a README) and hidden files are
skipped, and so are certificates that are no CA's (a test card or a service certificate dropped
there by habit: they can anchor nothing), listed in :attr:`Anchors.skipped` for the start-up
log. A missing or empty folder, an unreadable file, a file with no certificate or a folder with
no root stops start-up with a :class:`~kanta_guard.errors.PolicyError` that names the folder or
file: fail fast on configuration.

An anchor is trusted for what it is: a production root put here by mistake anchors production
chains, and the judge still calls them production (its pinned and name markers apply to every
verified chain).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PolicyError
from .x509 import Certificate, CertificateError, load_certificate, load_certificates

__all__ = ["ANCHOR_SUFFIXES", "Anchors", "load_anchors"]

#: The file names read from an anchors folder (lower-cased suffixes).
ANCHOR_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der", ".p7b", ".p7c"})


@dataclass(frozen=True, slots=True)
class Anchors:
    """A loaded set of trust anchors: ``roots`` (self-signed CA certificates, trusted as they
    are) and ``intermediates`` (other CA certificates, offered to path building, trusted only
    through a root). ``folder`` is where they were read from, None if built in memory.
    ``skipped`` names the non-CA certificates that were left out (file and SHA-256 prefix).

    ``fingerprint`` names the set (the SHA-256 over its members' digests): the judge's cache
    keys on it, so two judges over the same certificates share nothing by accident.
    """

    roots: tuple[Certificate, ...]
    intermediates: tuple[Certificate, ...] = ()
    folder: Path | None = None
    skipped: tuple[str, ...] = ()
    fingerprint: str = field(init=False, default="")

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        for cert in sorted(self.roots, key=lambda c: c.sha256):
            digest.update(b"root:" + cert.sha256.encode("ascii"))
        for cert in sorted(self.intermediates, key=lambda c: c.sha256):
            digest.update(b"intermediate:" + cert.sha256.encode("ascii"))
        object.__setattr__(self, "fingerprint", digest.hexdigest().upper())

    @classmethod
    def of(cls, certificates: Iterable[Certificate | bytes], folder: Path | None = None) -> Anchors:
        """Anchors from certificates in memory, sorted as :func:`load_anchors` sorts a folder's
        (self-signed CA → root, other CA → intermediate, non-CA skipped, duplicates once).
        Raises :class:`~kanta_guard.errors.PolicyError` when there is no root."""
        certs = [c if isinstance(c, Certificate) else load_certificate(c) for c in certificates]
        return _sorted(((cert, "certificate") for cert in certs), folder)

    def __contains__(self, cert: object) -> bool:
        """True if ``cert`` (a :class:`Certificate`) is one of the roots."""
        return isinstance(cert, Certificate) and any(r.sha256 == cert.sha256 for r in self.roots)


def load_anchors(folder: Path) -> Anchors:
    """Read the trust anchors folder (see the module docstring for what is read).

    Raises :class:`~kanta_guard.errors.PolicyError` naming the folder or file and the problem:
    the folder missing, no certificate file in it, a file unreadable or holding no certificate,
    or no self-signed root among them all.
    """
    folder = Path(folder)
    if not folder.exists():
        raise PolicyError(f"trust anchors folder {folder}: not found")
    if not folder.is_dir():
        raise PolicyError(f"trust anchors folder {folder}: not a folder")
    try:
        files = sorted(
            path
            for path in folder.iterdir()
            if not path.name.startswith(".") and path.suffix.lower() in ANCHOR_SUFFIXES
        )
    except OSError as exc:
        raise PolicyError(f"trust anchors folder {folder}: {exc.strerror}") from None
    if not files:
        suffixes = ", ".join(sorted(ANCHOR_SUFFIXES))
        raise PolicyError(f"trust anchors folder {folder}: no certificate file ({suffixes})")
    found: list[tuple[Certificate, str]] = []
    for path in files:
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"trust anchor {path}: cannot read it: {exc.strerror}") from None
        try:
            certs = load_certificates(data)
        except CertificateError as exc:
            raise PolicyError(f"trust anchor {path}: {exc}") from None
        if not certs:
            raise PolicyError(f"trust anchor {path}: no certificate in it")
        found.extend((cert, str(path)) for cert in certs)
    return _sorted(found, folder)


def _sorted(found: Iterable[tuple[Certificate, str]], folder: Path | None) -> Anchors:
    roots: dict[str, Certificate] = {}
    intermediates: dict[str, Certificate] = {}
    skipped: list[str] = []
    for cert, where in found:
        if not cert.is_ca:
            skipped.append(f"{where}: {cert.sha256[:16]}… (not a CA certificate)")
        elif cert.self_issued and cert.asn1.self_signed in ("yes", "maybe"):
            roots.setdefault(cert.sha256, cert)
        else:
            intermediates.setdefault(cert.sha256, cert)
    if not roots:
        where = f"trust anchors folder {folder}" if folder is not None else "trust anchors"
        raise PolicyError(
            f"{where}: no root (self-signed CA certificate) among them: add the test root "
            "that issued the intermediates"
        )
    return Anchors(tuple(roots.values()), tuple(intermediates.values()), folder, tuple(skipped))
