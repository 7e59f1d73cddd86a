"""The rule catalogue: every rule id, its safe default action and what it means."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Action

__all__ = ["REFUSED", "REGISTRY_STRICT", "RULES", "UNAVAILABLE", "UNSCANNABLE", "RuleSpec", "rule"]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule a detector (or the pipeline) can fire; the policy may change its action."""

    id: str
    default: Action
    summary: str
    #: False for rules whose action the policy may not weaken (fail closed).
    adjustable: bool = True


UNSCANNABLE = RuleSpec(
    "unscannable",
    Action.BLOCK,
    "The request could not be decoded, parsed or fully read (unknown encoding, parse error, "
    "DOCTYPE, size or depth limit), so it cannot be shown to be clean.",
    adjustable=False,
)

REFUSED = RuleSpec(
    "protocol.refused",
    Action.BLOCK,
    "The connection or request would take a path the guard does not read (raw TCP, TLS "
    "passthrough, a protocol upgrade such as WebSocket, request trailers towards a server that "
    "cannot take them), so it is refused rather than relayed unread.",
    adjustable=False,
)

UNAVAILABLE = RuleSpec(
    "guard.unavailable",
    Action.BLOCK,
    "The guard cannot judge traffic right now (it holds no valid policy, or its blocked-request "
    "log cannot be written), so it forwards nothing until it can.",
    adjustable=False,
)

#: Every rule, in the order the README documents them. Detectors declare theirs here.
RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "hetu.real",
        Action.BLOCK,
        "A valid personal identity code with individual number 002-899: a real person's code. "
        "Only Kela's 900-series test codes may be used in the test environment.",
    ),
    RuleSpec(
        "hetu.malformed",
        Action.BLOCK,
        "A structured identity field (OID 1.2.246.21) holds a value that is not a valid code and "
        "whose individual number is below 900 (or unreadable): a real code mistyped is still a "
        "real person's.",
    ),
    RuleSpec(
        "hetu.malformed_test",
        Action.WARN,
        "A structured identity field (OID 1.2.246.21) holds a 900-series value that is not a valid "
        "code (wrong check character or date); Kanta will reject it.",
    ),
    # -- personal data and the test-identity registry (issue 8). Where a rule below says
    # "warn", that is its action without a registry; with a registry configured every one of
    # them blocks unless the policy sets its action itself (``Policy.action``).
    RuleSpec(
        "registry.unknown_code",
        Action.BLOCK,
        "A 900-series test code that is not in the supplier's registry of Kela-issued test "
        "identities: use a registered test identity (only with a registry configured).",
    ),
    RuleSpec(
        "registry.wrong_pool",
        Action.BLOCK,
        "A registered test code used in the wrong testing mode: an independent-testing code in "
        "joint testing, or a joint-testing code in independent testing. The pools must not be "
        "cross-used.",
    ),
    RuleSpec(
        "registry.wrong_case",
        Action.BLOCK,
        "A joint-testing code used in a test case it was not requested for.",
    ),
    RuleSpec(
        "registry.unknown_professional",
        Action.BLOCK,
        "A professional identified by a Terhikki number (Valvira's register, OID "
        "1.2.246.537.26) that no registered test identity has: with a registry, only "
        "registered test professionals may act in test documents (only with a registry "
        "configured).",
    ),
    RuleSpec(
        "name.unregistered",
        Action.WARN,
        "A person's name (patient, guardian, professional, related person …) that is not the "
        "registered name of a registered test identity: it may be a real person's.",
    ),
    RuleSpec(
        "name.mismatch",
        Action.WARN,
        "A name on a registered test code that is not that code's registered name: a real "
        "person's name on a test code.",
    ),
    RuleSpec(
        "name.narrative",
        Action.WARN,
        "A full name of a person in narrative or free text that is not a registered test "
        "identity's.",
    ),
    RuleSpec(
        "email.personal",
        Action.BLOCK,
        "A person's e-mail address outside the domains reserved for testing and documentation "
        "(RFC 2606, RFC 6761: example.com/.net/.org, .example, .test, .invalid, .localhost) "
        "and not listed in the policy or the registry.",
    ),
    RuleSpec(
        "phone.personal",
        Action.WARN,
        "A person's telephone number not listed in the policy or the registry. Finland reserves "
        "no numbers for testing: a number that looks made up may be someone's.",
    ),
    RuleSpec(
        "address.personal",
        Action.WARN,
        "A person's street address not listed in the policy or the registry and matching none "
        "of the policy's test patterns.",
    ),
    # -- certificates, cards and destinations (issue 9).
    RuleSpec(
        "cert.production",
        Action.BLOCK,
        "A production certificate: issued in the DVV/VRK production hierarchy (a pinned "
        "production root or intermediate, a production CA name, a policy OID under "
        "1.2.246.517.1). Only test certificates and test cards may be used in the test "
        "environment.",
    ),
    RuleSpec(
        "cert.unknown",
        Action.BLOCK,
        "A certificate the guard cannot show to be a test certificate: with trust anchors "
        "configured, its chain does not verify to one; without them, no rule knows its issuer, "
        "or its markers disagree (a test name with a production policy). Add the issuing test "
        "CA as a trust anchor (README).",
    ),
    RuleSpec(
        "cert.expired",
        Action.OFF,
        "A test certificate outside its validity period. Off by default "
        "(Kela's own test documents carry long-expired test certificates, and expiry does not "
        "make a test certificate a production one): set it to warn to have expiry reported.",
    ),
    RuleSpec(
        "card.real",
        Action.BLOCK,
        "A professional signature that does not come from a test card (no SPECIMEN or ' Tes' "
        "test name, not issued by a test CA), or a signing professional identified in the "
        "document by something other than a test identity.",
    ),
    RuleSpec(
        "upstream.not-allowed",
        Action.BLOCK,
        "A request to a host outside the policy's allowed upstream hosts (by default the Kanta "
        "test and sandbox hosts and loopback): refused before any connection is opened.",
    ),
    RuleSpec(
        "upstream.production",
        Action.BLOCK,
        "The upstream server presents a production certificate: the system under test is "
        "pointed at production, and nothing is sent.",
    ),
    # -- imaging (issue 10).
    RuleSpec(
        "dicom.identifying",
        Action.BLOCK,
        "A DICOM attribute the Basic Application Level Confidentiality Profile (PS3.15 Annex E) "
        "removes, zeroes or replaces holds a value that is neither a registered test "
        "identity's nor a dummy the policy lists.",
    ),
    RuleSpec(
        "dicom.private",
        Action.BLOCK,
        "A private DICOM attribute whose creator and element are not on the policy's list of "
        "safe private attributes: no rule can read what it means.",
    ),
    RuleSpec(
        "dicom.burned_in",
        Action.BLOCK,
        "Burned In Annotation is not NO, or is absent on an image type where burned-in text "
        "is common (secondary capture, ultrasound, screenshots, scanned documents).",
    ),
    RuleSpec(
        "dicom.ocr_text",
        Action.WARN,
        "Text read by OCR from pixel data or an overlay where none is expected (codes and "
        "names in it fire their own rules).",
    ),
    RuleSpec(
        "dicom.ocr_incomplete",
        Action.WARN,
        "OCR could not read the whole image within its time and size budget: burned-in text "
        "there is unchecked.",
    ),
    RuleSpec(
        "dicom.not_deidentified",
        Action.WARN,
        "Patient Identity Removed (0012,0062) is not YES: the data set does not declare itself "
        "de-identified.",
    ),
    UNSCANNABLE,
    REFUSED,
    UNAVAILABLE,
)

#: The rules whose action rises to block when a registry is configured (and the policy does not
#: set their action itself).
REGISTRY_STRICT: frozenset[str] = frozenset(
    {"name.unregistered", "name.mismatch", "name.narrative", "phone.personal", "address.personal"}
)

_BY_ID = {spec.id: spec for spec in RULES}


def rule(rule_id: str) -> RuleSpec:
    """The spec of a rule id; KeyError for an unknown one."""
    return _BY_ID[rule_id]
