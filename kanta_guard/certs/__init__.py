"""Certificates: read them, and judge whether each is a DVV/VRK test certificate.

A pure library, no proxy and no parser code: the TLS addon judges the chains it sees, and the
detector that finds certificates in payloads (XML-DSig, WS-Security, JWS ``x5c``, PEM, CMS)
judges what it finds::

    judge = CertJudge(load_anchors(folder))      # or CertJudge() for the default rules
    judgement = judge.judge(load_certificate(der), intermediates, at=when)
    if judgement.kind is not CertKind.TEST: ...  # cert.production / cert.unknown

Modules: :mod:`.x509` reads certificates (asn1crypto, lenient where BER allows),
:mod:`.markers` holds the default rules (from ``kanta_guard/data/certs/rules.toml``),
:mod:`.anchors` loads the operator's trust anchors folder, :mod:`.judge` decides (RFC 5280
path validation by pyhanko-certvalidator, never any network: revocation is not checked).
"""

from __future__ import annotations

from .anchors import ANCHOR_SUFFIXES, Anchors, load_anchors
from .judge import CacheInfo, CertJudge, CertKind, Judgement
from .markers import CertRules, PinnedCA, card_marker, is_test_card
from .x509 import (
    Certificate,
    CertificateError,
    CertRole,
    certificate_der,
    load_certificate,
    load_certificates,
    mask_dn_value,
)

__all__ = [
    "ANCHOR_SUFFIXES",
    "Anchors",
    "CacheInfo",
    "CertJudge",
    "CertKind",
    "CertRole",
    "CertRules",
    "Certificate",
    "CertificateError",
    "Judgement",
    "PinnedCA",
    "card_marker",
    "certificate_der",
    "is_test_card",
    "load_anchors",
    "load_certificate",
    "load_certificates",
    "mask_dn_value",
]
