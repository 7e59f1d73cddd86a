"""The certificate judge: test, production or unknown; path validation and a cache of verdicts.

What decides (issue 9):

* **With trust anchors** a certificate is TEST only if its chain verifies to one of them:
  signatures, names, basic constraints, path length and the issuers' key usage as RFC 5280 §6.1
  says, by pyhanko-certvalidator (the validator pyHanko signs PDFs with, over asn1crypto), with
  the intermediates from the message and from the anchors folder. A certificate that merely
  *names* a test CA but does not verify is UNKNOWN: that is what a forgery looks like.
* **Without anchors** the default rules (:class:`~kanta_guard.certs.markers.CertRules`) decide
  from the DNs, the policy OIDs and the pinned production CAs of the leaf and of the
  intermediates that name-chain to it (signatures not checked: there is nothing to check them
  against).
* **Either way** production markers win: a chain that shows one (a pinned production root or
  intermediate, an ``O=… CA`` production name, a policy under ``1.2.246.517.1.``) is
  PRODUCTION, even when it also names a test CA or verifies to an anchor (the markers disagree:
  not a test certificate). A card (role CARD) is TEST only if it also carries a test-card
  marker (``SPECIMEN-``, ``… Tes``, a ``999…`` serial number).

Time: a chain is validated at a moment inside the validity of all its certificates (at ``at``
if they are all valid then, else at the nearest moment that lies within each window), so an
expired test certificate still verifies; ``Judgement.expired`` reports it separately (Kela's
own test documents carry long-expired test certificates: expiry is a warning, not a block).

No network, ever: no OCSP, no CRL, no AIA fetching. **Revocation is not checked**; for telling
test from production it does not matter, and a guard must not wait on DVV's servers.

The same certificate arrives in every signed document of a test run, so verdicts are cached
by (leaf SHA-256, intermediates' SHA-256s, anchors fingerprint, UTC date): a warm judgement is
a digest and a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from hashlib import sha256
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import DisallowedAlgorithmError, PathBuildingError
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy
from pyhanko_certvalidator.validate import async_validate_path

from .anchors import Anchors
from .markers import CertRules
from .x509 import Certificate, CertificateError, CertRole, certificate_der, load_certificate

__all__ = ["CacheInfo", "CertJudge", "CertKind", "Judgement"]

# Bounds that keep one judgement's cost a constant whatever a message sends: candidate paths
# tried, and certificates followed when chaining by name.
_MAX_PATHS = 16
_MAX_CHAIN = 12


class CertKind(StrEnum):
    """The verdict on a certificate."""

    TEST = "test"  #: a test certificate: it may be used towards the test environment
    PRODUCTION = "production"  #: a production certificate: blocks (``cert.production``)
    UNKNOWN = "unknown"  #: not shown to be a test certificate: blocks (``cert.unknown``)


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one certificate (with its chain), every field safe to show or log.

    ``reason`` is one sentence (masked subject, CA names, policy OIDs, a SHA-256 prefix; for
    UNKNOWN it says how to add an anchor). ``subject`` is the leaf's masked subject, ``issuer``
    its issuer DN (masked if a person's). ``expired``: the leaf, or a certificate of its
    verified chain, is outside its validity at the judged moment (reported, not blocking).
    ``verified``: the chain verified to a configured trust anchor.
    """

    kind: CertKind
    reason: str
    subject: str
    issuer: str
    sha256: str
    role: CertRole
    expired: bool
    verified: bool

    @property
    def is_test(self) -> bool:
        """True for a TEST verdict (the only one that passes)."""
        return self.kind is CertKind.TEST


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """How the judge's cache has done: ``hits`` and ``misses`` since it was made, ``size``
    judgements held now, at most ``max_size``."""

    hits: int
    misses: int
    size: int
    max_size: int


@dataclass(frozen=True, slots=True)
class _Verification:
    verified: bool
    path: tuple[Certificate, ...]  # leaf first, the anchor last (when verified)
    why: str  # why not, a phrase safe to show ("" when verified)


_Key = tuple[str, tuple[str, ...], str, date]


class CertJudge:
    """Judges certificates: with ``anchors`` by path validation (and production markers), else
    by the default ``rules``. Thread-safe; picklable (the cache is not carried over).

    ``judge`` and ``judge_chain`` raise :class:`~kanta_guard.certs.CertificateError` for a
    certificate they cannot read (the caller's ``unscannable``): what cannot be read is never
    judged TEST.
    """

    def __init__(
        self,
        anchors: Anchors | None = None,
        rules: CertRules | None = None,
        cache_size: int = 4096,
    ) -> None:
        self._anchors = anchors
        self._rules = rules if rules is not None else CertRules.default()
        self._cache_size = max(0, cache_size)
        self._cache: OrderedDict[_Key, tuple[Judgement, datetime, datetime]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._anchor_id = anchors.fingerprint if anchors is not None else "-"
        self._root_digests = (
            frozenset(cert.sha256 for cert in anchors.roots) if anchors else frozenset()
        )
        self._algorithms = DisallowWeakAlgorithmsPolicy(  # type: ignore[no-untyped-call]
            weak_hash_algos=self._rules.weak_hash_algorithms
        )

    def __reduce__(self) -> tuple[Any, tuple[Anchors | None, CertRules, int]]:
        return (CertJudge, (self._anchors, self._rules, self._cache_size))

    @property
    def anchors(self) -> Anchors | None:
        """The trust anchors (None: the default rules decide)."""
        return self._anchors

    @property
    def rules(self) -> CertRules:
        """The markers in use."""
        return self._rules

    def cache_info(self) -> CacheInfo:
        """Hits, misses and size of the verdict cache."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._cache), self._cache_size)

    def judge(
        self,
        leaf: Certificate | bytes,
        intermediates: Sequence[Certificate | bytes] = (),
        *,
        at: datetime | None = None,
    ) -> Judgement:
        """The verdict on ``leaf``, with the ``intermediates`` the message carried (any order;
        unrelated ones are ignored), at ``at`` (default now; a naive datetime is UTC).

        Certificates may be given read (:class:`Certificate`) or as bytes in any form
        :func:`~kanta_guard.certs.load_certificate` reads. Raises
        :class:`~kanta_guard.certs.CertificateError` for one that cannot be read.
        """
        moment = _aware(at)
        key: _Key = (
            _digest(leaf),
            tuple(_digest(cert) for cert in intermediates),
            self._anchor_id,
            moment.date(),
        )
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                judgement, low, high = entry
                # The verdict holds for the day; its expiry flag only inside its window.
                if (low <= moment <= high) != judgement.expired:
                    self._cache.move_to_end(key)
                    self._hits += 1
                    return judgement
            self._misses += 1
        leaf_cert = _read(leaf)
        others = [_read(cert) for cert in intermediates]
        judgement, low, high = self._judge(leaf_cert, others, moment)
        if self._cache_size:
            with self._lock:
                self._cache[key] = (judgement, low, high)
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return judgement

    def judge_chain(
        self, chain: Sequence[Certificate | bytes], *, at: datetime | None = None
    ) -> Judgement:
        """The verdict on a chain in TLS order: the leaf first, then the rest (RFC 8446
        §4.4.2). Raises :class:`~kanta_guard.certs.CertificateError` for an empty chain."""
        if not chain:
            raise CertificateError("an empty certificate chain")
        return self.judge(chain[0], chain[1:], at=at)

    # -- the decision ----------------------------------------------------------------------

    def _judge(
        self, leaf: Certificate, others: list[Certificate], at: datetime
    ) -> tuple[Judgement, datetime, datetime]:
        """The judgement, and the window in which its ``expired`` flag holds."""
        rules = self._rules
        anchors = self._anchors
        pool = others + list(anchors.intermediates + anchors.roots if anchors else ())
        verification = self._verify(leaf, others, at) if anchors is not None else None
        if verification is not None and verification.verified:
            chain = verification.path
            dated = chain[:-1] if len(chain) > 1 else chain  # RFC 5280: not the anchor's dates
        else:
            chain = _chain_by_name(leaf, pool)
            dated = (leaf,)
        low = max(cert.not_before for cert in dated)
        high = min(cert.not_after for cert in dated)
        expired = not (low <= at <= high)
        production = _unique(m for cert in chain for m in rules.production_markers(cert))
        test = _unique(m for cert in chain for m in rules.test_markers(cert))
        what = _describe(leaf)
        expiry = _expiry(dated, at) if expired else ""
        verified = verification is not None and verification.verified

        if production:
            disagree = f"; its test markers ({_listed(test)}) do not count" if test else ""
            kind = CertKind.PRODUCTION
            reason = f"Production certificate: {what} shows {_listed(production)}{disagree}."
        elif verification is not None and not verification.verified:
            kind = CertKind.UNKNOWN
            names = "; it names a test CA, which is no proof" if test else ""
            reason = (
                f"Unknown certificate: {what} does not verify to a configured trust anchor "
                f"({verification.why}){names}; if its issuing CA is a genuine DVV/VRK test CA, "
                "add that CA's root certificate to the trust anchors folder."
            )
        elif verification is None and not test:
            kind = CertKind.UNKNOWN
            reason = (
                f"Unknown certificate: no rule marks {what} from issuer {_issuer_name(leaf)!r} "
                "as a test certificate; to accept it, put its issuing test CA's root "
                "certificate (PEM or DER) in a trust anchors folder named in the policy."
            )
        elif leaf.role is CertRole.CARD and rules.card_marker(leaf) is None:
            kind = CertKind.UNKNOWN
            reason = (
                f"Unknown certificate: {what} comes from a test CA but carries no test-card "
                "marker (a SPECIMEN- or ' Tes' surname, a 999 serial number), so it is no "
                "test card."
            )
        elif verification is not None:
            kind = CertKind.TEST
            anchor = _ca_name(verification.path[-1])
            reason = f"Test certificate: {what} verifies to the trust anchor {anchor!r}{expiry}."
        else:
            kind = CertKind.TEST
            reason = (
                f"Test certificate by the default rules: {what} shows {_listed(test)} (no "
                f"trust anchors configured, signatures not checked){expiry}."
            )
        judgement = Judgement(
            kind=kind,
            reason=reason,
            subject=leaf.masked_subject,
            issuer=leaf.masked_issuer,
            sha256=leaf.sha256,
            role=leaf.role,
            expired=expired,
            verified=verified,
        )
        return judgement, low, high

    def _verify(self, leaf: Certificate, others: list[Certificate], at: datetime) -> _Verification:
        """RFC 5280 path validation to the anchors, at a moment inside the path's validity."""
        anchors = self._anchors
        assert anchors is not None
        if leaf.sha256 in self._root_digests:
            return _Verification(True, (leaf,), "")
        by_digest = {cert.sha256: cert for cert in (*others, *anchors.intermediates, leaf)}
        by_digest.update((cert.sha256, cert) for cert in anchors.roots)
        roots = [cert.asn1 for cert in anchors.roots]
        other_certs = [cert.asn1 for cert in (*others, *anchors.intermediates)]

        async def validate() -> _Verification:
            builder = ValidationContext(
                trust_roots=roots, other_certs=other_certs, allow_fetching=False, moment=at
            )
            paths = builder.path_builder.async_build_paths_lazy(leaf.asn1)
            failures: list[Exception] = []
            try:
                async for path in paths:
                    try:
                        await self._validate_path(path, roots, other_certs, at)
                    except Exception as exc:  # each candidate's failure, kept for the reason
                        failures.append(exc)
                    else:
                        return _Verification(True, _path_certs(path, by_digest), "")
                    if len(failures) >= _MAX_PATHS:
                        break
            except PathBuildingError:
                if not failures:
                    return _Verification(False, (), _no_path(leaf))
            finally:
                await paths.cancel()  # type: ignore[no-untyped-call]
            return _Verification(False, (), _why(failures) if failures else _no_path(leaf))

        try:
            return _run(validate)
        except Exception as exc:  # a validator bug or a certificate it chokes on: not verified
            return _Verification(
                False, (), f"the validator could not process it: {type(exc).__name__}"
            )

    async def _validate_path(
        self,
        path: ValidationPath,
        roots: list[asn1_x509.Certificate],
        other_certs: list[asn1_x509.Certificate],
        at: datetime,
    ) -> None:
        certs = list(path.iter_certs(include_root=False))
        low = max(cert.not_valid_before for cert in certs)
        high = min(cert.not_valid_after for cert in certs)
        moment = max(low, min(at, high)) if low <= high else at
        context = ValidationContext(
            trust_roots=roots,
            other_certs=other_certs,
            allow_fetching=False,
            moment=moment,
            algorithm_usage_policy=self._algorithms,
        )
        await async_validate_path(context, path)


# -- helpers -------------------------------------------------------------------------------


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _digest(cert: Certificate | bytes) -> str:
    """The SHA-256 a certificate is cached by: of its DER, found without parsing ASN.1."""
    if isinstance(cert, Certificate):
        return cert.sha256
    return sha256(certificate_der(cert)).hexdigest().upper()


def _read(cert: Certificate | bytes) -> Certificate:
    return cert if isinstance(cert, Certificate) else load_certificate(cert)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _listed(markers: list[str], most: int = 3) -> str:
    """The first markers, and how many more: a reason stays one readable sentence."""
    shown = "; ".join(markers[:most])
    return shown + (f" and {len(markers) - most} more" if len(markers) > most else "")


def _chain_by_name(leaf: Certificate, pool: list[Certificate]) -> tuple[Certificate, ...]:
    """The leaf and the certificates whose subject DN is the issuer DN of the one before, as
    far as the pool goes (no signatures checked: this is what markers are read from when
    there are no anchors, or when the chain did not verify)."""
    by_subject: dict[str, list[Certificate]] = {}
    for cert in pool:
        by_subject.setdefault(cert.subject_key, []).append(cert)
    chain = [leaf]
    seen = {leaf.sha256}
    current = leaf
    while not current.self_issued and len(chain) < _MAX_CHAIN:
        issuer = next(
            (c for c in by_subject.get(current.issuer_key, ()) if c.sha256 not in seen), None
        )
        if issuer is None:
            break
        chain.append(issuer)
        seen.add(issuer.sha256)
        current = issuer
    return tuple(chain)


def _path_certs(path: ValidationPath, by_digest: dict[str, Certificate]) -> tuple[Certificate, ...]:
    """The verified path as our certificates, leaf first, the anchor last."""
    certs: list[Certificate] = []
    for item in path.iter_certs(include_root=True):
        der = item.dump()
        known = by_digest.get(sha256(der).hexdigest().upper())
        certs.append(known if known is not None else load_certificate(der))
    return tuple(reversed(certs))


def _describe(cert: Certificate) -> str:
    role = {
        CertRole.CA: "the CA certificate",
        CertRole.CARD: "the card",
        CertRole.SERVICE: "the service certificate",
        CertRole.UNKNOWN: "the certificate",
    }[cert.role]
    return f"{role} {cert.masked_subject!r} (SHA-256 {cert.sha256[:16]}…)"


def _ca_name(cert: Certificate) -> str:
    names = cert.subject_values("CN") or cert.subject_values("O")
    return names[0] if names and cert.is_ca else cert.masked_subject


def _expiry(dated: Sequence[Certificate], at: datetime) -> str:
    leaf = dated[0]
    if at > leaf.not_after:
        return f", expired {leaf.not_after:%Y-%m-%d} (reported, not blocking)"
    if at < leaf.not_before:
        return f", not valid before {leaf.not_before:%Y-%m-%d} (reported, not blocking)"
    return ", a certificate of its chain is outside its validity (reported, not blocking)"


def _no_path(leaf: Certificate) -> str:
    if leaf.self_issued:
        return "it is self-signed and not one of the anchors"
    return (
        f"no chain of issuers from it reaches an anchor: its issuer {_issuer_name(leaf)!r} is "
        "no anchor, and no intermediate of the message or the anchors folder leads to one"
    )


def _issuer_name(cert: Certificate) -> str:
    """The issuer's CN (a CA's name), or the masked issuer DN when it has none or it is the
    holder's own."""
    names = cert.issuer_values("CN")
    return names[0] if names and not (cert.self_issued and not cert.is_ca) else cert.masked_issuer


def _why(failures: list[Exception]) -> str:
    """What failed, as a fixed phrase: the validator's own messages quote subject names."""
    phrases: list[str] = []
    for exc in failures:
        message = str(exc)
        if isinstance(exc, DisallowedAlgorithmError):
            phrase = "a signature uses a refused algorithm"
        elif "signature" in message:
            phrase = "a signature in the chain does not verify"
        elif "is not a CA" in message:
            phrase = "an issuer is not a CA (basicConstraints)"
        elif "maximum path length" in message:
            phrase = "the chain is longer than an issuer's path length allows"
        elif "not allowed to sign certificates" in message:
            phrase = "an issuer's key usage does not allow signing certificates"
        elif "critical extension" in message:
            phrase = "a certificate has an unsupported critical extension"
        elif "policies" in message or "policy" in message:
            phrase = "the certificate policies do not chain"
        elif "namespace" in message:
            phrase = "a name is outside an issuer's name constraints"
        elif "expired" in message or "not valid" in message:
            phrase = "the certificates were never valid at one time"
        else:
            phrase = f"path validation failed ({type(exc).__name__})"
        phrases.append(phrase)
    return "; ".join(_unique(phrases))


def _run[T](factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine that does no I/O (path validation without fetching) to completion on
    the calling thread, whether or not an event loop runs there (mitmproxy's does): step it
    by hand. Should it ever wait on something, it is run afresh on a private event loop in a
    worker thread instead."""
    coroutine = factory()
    try:
        while coroutine.send(None) is None:
            pass  # a bare yield (``asyncio.sleep(0)``): nothing to wait for, go on
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, factory()).result()
