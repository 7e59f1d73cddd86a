"""Certificates and cards in requests: only test certificates, only test professional cards.

The parsers find the certificates (``model.CertificateItem``: XML-DSig, WS-Security, JWS
``x5c``, PKCS#7/CMS, PEM); this detector judges them once the whole request is read, each with
every other certificate of the request as a possible intermediate, by
:class:`kanta_guard.certs.CertJudge` (trust anchors when the policy names a folder, else the
default rules shipped as data). It reads no field: its screen names nothing, so the documents'
fast paths stay fast, and the judge's cache makes the certificate a system signs every document
with cost a dictionary look-up.

Rules:

- ``cert.production``: a production certificate (a real professional card is one).
- ``cert.unknown``: one the guard cannot show to be a test certificate.
- ``card.real``: a professional or citizen card without a test-card marker (``SPECIMEN-`` or
  ``… Tes`` surname, ``999…`` serial number), whatever its CA.
- ``cert.expired`` (warn): a test certificate outside its validity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from ..certs import (
    Certificate,
    CertificateError,
    CertJudge,
    CertKind,
    CertRole,
    Judgement,
    load_certificate,
)
from ..certs.markers import is_test_card
from ..errors import UnscannableError
from ..model import CertificateItem, Context, Field, Hit
from ..parsers.certificate import IN_TEXT
from ..rules import RuleSpec, rule

__all__ = ["CertificateDetector"]

_ROLES = {
    CertRole.CARD: "professional card",
    CertRole.SERVICE: "system signature (service certificate)",
    CertRole.CA: "CA certificate",
    CertRole.UNKNOWN: "certificate",
}


class CertificateDetector:
    """Judges the certificates a request carries (see the module)."""

    name = "certificates"
    rules: tuple[RuleSpec, ...] = (
        rule("cert.production"),
        rule("cert.unknown"),
        rule("card.real"),
        rule("cert.expired"),
    )
    systems: frozenset[str] = frozenset()

    def __init__(self, judge: CertJudge | None = None, *, silent: frozenset[str] = frozenset()):
        """``silent``: the rules the policy turns off, for which no hit is built (the corpus's
        expired test certificates would each build a ``cert.expired`` hit, off by default)."""
        self.cert_judge = judge if judge is not None else CertJudge()
        self.silent = silent
        self._cards: dict[bytes, bool] = {}
        self._certificates: dict[bytes, Certificate] = {}
        #: The rule each certificate of a set fires (or None), by the set and the minute.
        self._outcomes: dict[
            tuple[tuple[bytes, ...], int], dict[bytes, tuple[str, str, Judgement] | None]
        ] = {}

    def _test_card(self, der: bytes) -> bool:
        """Whether a card carries a test-card marker (remembered: cards recur)."""
        known = self._cards.get(der)
        if known is None:
            if len(self._cards) >= 1024:
                self._cards.clear()
            known = self._cards[der] = is_test_card(self._read(der), self.cert_judge.rules)
        return known

    def detect(self, field: Field) -> Iterator[Hit]:
        return iter(())

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes]:
        """No field can produce a hit: certificates reach this detector as certificates."""
        return frozenset()

    def judge_certificates(self, items: Sequence[CertificateItem]) -> Iterator[Hit]:
        """Hits for the certificates of one request, in the order found; a certificate that
        stands in two places is reported at each. Raises UnscannableError for one the judge
        cannot read (the parsers read each already, so only a judge's failure gets here)."""
        named = [item for item in items if item.thumbprint]
        items = [item for item in items if not item.thumbprint]
        # A certificate found as Base64 in a payload's bytes is dropped where a parser yielded
        # it from the payload's structure too (an X509Certificate, an x5c): one place, one report.
        seen = {item.der for item in items if not _in_text(item)}
        kept = []
        for item in items:
            if _in_text(item):
                if item.der in seen:
                    continue
                seen.add(item.der)
            kept.append(item)
        items = kept
        if not items and not named:
            return
        try:
            ders = tuple(dict.fromkeys(item.der for item in items))
            # The verdicts on one set of certificates, remembered for the minute: a system
            # sends the same few with every document, and judging them again (each with the
            # others as its possible intermediates) cost a signed document's scan 6 %. (A
            # certificate's validity may so be seen up to a minute late: it only decides
            # ``cert.expired``, a warning.)
            key = (ders, int(time.time() // 60))
            outcomes = self._outcomes.get(key)
            if outcomes is None or named:
                read = {der: self._read(der) for der in ders}
                digests = {cert.sha256 for cert in read.values()}
                for item in named:
                    yield from self._thumbprint(item, digests)
            if outcomes is None:
                outcomes = {}
                for der, cert in read.items():
                    others = [other for each, other in read.items() if each != der]
                    judgement = self.cert_judge.judge(cert, others)
                    found = self._rule(der, judgement)
                    quiet = found is None or found[0] in self.silent
                    outcomes[der] = None if found is None or quiet else (*found, judgement)
                if len(self._outcomes) >= 256:
                    self._outcomes.clear()
                self._outcomes[key] = outcomes
        except CertificateError as exc:
            raise UnscannableError(f"a certificate that cannot be judged: {exc}", "") from None
        for item in items:
            outcome = outcomes[item.der]
            if outcome is not None:
                yield self._hit(item, *outcome)

    def _thumbprint(self, item: CertificateItem, digests: set[str]) -> Iterator[Hit]:
        """A certificate named only by its SHA-256 (JWS ``x5t#S256``): fine if the request
        carries it (judged itself) or it is a trust anchor; production if it is a pinned
        production CA; else unknown: the guard cannot see it."""
        digest = item.thumbprint
        anchors = self.cert_judge.anchors
        known = anchors.roots + anchors.intermediates if anchors is not None else ()
        if digest in digests or any(cert.sha256 == digest for cert in known):
            return
        field = Field(digest, Context(), item.where, owner=_owner(item))
        pin = next((p for p in self.cert_judge.rules.pinned if p.sha256 == digest), None)
        evidence = f"certificate named by its SHA-256 only ({digest[:16]}…)"
        if pin is not None:
            yield Hit(
                "cert.production",
                field,
                digest,
                evidence,
                f"Production certificate: the thumbprint names the pinned production CA "
                f"{pin.name!r}.",
            )
            return
        yield Hit(
            "cert.unknown",
            field,
            digest,
            evidence,
            "Unknown certificate: the JWS names its signer's certificate only by thumbprint "
            "(x5t#S256), and the request does not carry it: send the chain in x5c (a test "
            "certificate passes as such), so that the guard can judge it.",
        )

    def _read(self, der: bytes) -> Certificate:
        """The certificate read (remembered: reading costs half a millisecond, and a system
        signs every document with the same few; the judge then needs no digest of its own)."""
        cert = self._certificates.get(der)
        if cert is None:
            if len(self._certificates) >= 1024:
                self._certificates.clear()
            cert = self._certificates[der] = load_certificate(der)
        return cert

    def _hit(
        self, item: CertificateItem, rule_id: str, explanation: str, judgement: Judgement
    ) -> Hit:
        # The holder's context is looked up in the tree only if the finding is kept (a rule
        # the policy turns off builds none): the field's role is asked lazily.
        if isinstance(item.owner, Context):
            field = Field(judgement.sha256, item.owner, item.where)
        else:
            field = Field(judgement.sha256, Context(), item.where, owner=_owner(item))
        evidence = f"{_ROLES[judgement.role]}: {judgement.subject} (issuer: {judgement.issuer})"
        return Hit(rule_id, field, judgement.sha256, evidence, explanation)

    def _rule(self, der: bytes, judgement: Judgement) -> tuple[str, str] | None:
        """The rule a judgement fires and its explanation, or None for a valid test one."""
        if judgement.kind is CertKind.PRODUCTION:
            real = "a real professional card: " if judgement.role is CertRole.CARD else ""
            return "cert.production", real + judgement.reason
        if judgement.role is CertRole.CARD and not self._test_card(der):
            return "card.real", (
                "A professional signature from a card with no test-card marker (a SPECIMEN- "
                "or ' Tes' surname, a 999 serial number): only Valvira's test cards may sign "
                "in the test environment. " + judgement.reason
            )
        if judgement.kind is CertKind.UNKNOWN:
            return "cert.unknown", judgement.reason
        if judgement.expired:
            return "cert.expired", judgement.reason
        return None


def _in_text(item: CertificateItem) -> bool:
    """Whether the item was found as Base64 in a payload's bytes, not by a parser."""
    return isinstance(item.where, str) and IN_TEXT in item.where


def _owner(item: CertificateItem) -> Callable[[], Context]:
    """The item's context, looked up only when asked."""
    owner = item.owner
    return owner if callable(owner) else lambda: owner
