"""Value objects that flow through the pipeline: payloads, fields, hits, findings and reports.

bytes → :class:`Payload` → parsers yield :class:`Field` (and nested :class:`Payload`) →
detectors yield :class:`Hit` (the only object that ever holds a raw value, and only inside the
pipeline) → the pipeline masks and hashes each hit into a :class:`Finding` → :class:`Report`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "HETU_OID",
    "MAX_COUNTED",
    "MAX_FINDINGS",
    "MAX_TEST_CODES",
    "Action",
    "Address",
    "CertificateItem",
    "Context",
    "Field",
    "Finding",
    "Hit",
    "Party",
    "PartyKind",
    "Payload",
    "PersonName",
    "Protocol",
    "Recognised",
    "Report",
    "Request",
    "Role",
    "Telecom",
    "Verdict",
]

#: OID of the Finnish personal identity code (DVV; HL7 Finland OID registry).
HETU_OID = "1.2.246.21"
#: Findings a report, an answer or a log record holds at most; the rest are counted
#: (``Report.omitted``), so that what people see stays small however much a request carries.
MAX_FINDINGS = 100
#: Findings counted past the cap at most: beyond them the verdict (block) is certain and the rest
#: of the request is not read, so a flood of distinct codes costs a bounded scan; the count is
#: then a lower bound ("at least").
MAX_COUNTED = 10_000
#: Test codes a report names at most (``Recognised.test_codes``); further ones are only counted.
MAX_TEST_CODES = 20


class Action(StrEnum):
    """What the policy does with a rule's findings."""

    OFF = "off"
    WARN = "warn"
    BLOCK = "block"


class Verdict(StrEnum):
    """The outcome for one request: the strongest action among its findings."""

    PASS = "pass"
    WARN = "warn"
    BLOCK = "block"


class Role(StrEnum):
    """Whom or what a field belongs to; personal-data rules judge by it."""

    PATIENT = "patient"
    GUARDIAN = "guardian"
    RELATED_PERSON = "related-person"
    AUTHOR = "author"
    PROFESSIONAL = "professional"
    PARTICIPANT = "participant"
    INFORMANT = "informant"
    AUTHENTICATOR = "authenticator"
    LEGAL_AUTHENTICATOR = "legal-authenticator"
    DATA_ENTERER = "data-enterer"
    SUBJECT = "subject"
    USER = "user"
    ORGANISATION = "organisation"
    NARRATIVE = "narrative"
    DOCUMENT = "document"
    MESSAGE = "message"
    URL = "url"
    HEADER = "header"
    UNKNOWN = "unknown"


class Protocol(StrEnum):
    """The client's protocol, as far as the parsers could tell; picks the blocked answer's form."""

    SOAP11 = "soap11"
    SOAP12 = "soap12"
    FHIR_JSON = "fhir+json"
    FHIR_XML = "fhir+xml"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Context:
    """Where a field sits: the role it belongs to, the element it is in, the system declared on it.

    ``system`` is the identifier system or OID the field is declared under (CDA ``II/@root`` or
    ``@codeSystem``, FHIR ``identifier.system``, a SAML attribute name), normalised to a bare OID
    where it is one (``urn:oid:`` stripped).
    """

    role: Role = Role.UNKNOWN
    element: str | None = None
    system: str | None = None


@dataclass(frozen=True, slots=True)
class Payload:
    """Bytes still to be parsed: a request body, a multipart part, a decoded Base64 value.

    ``where`` and ``owner`` (its location, and the context of the element or key that holds it)
    may be functions computing them: a parser that finds nested content without walking the
    document looks its holder up only if something inside is reported.
    """

    data: bytes
    content_type: str | None
    where: str | Callable[[], str]
    owner: Context | Callable[[], Context] = Context()
    depth: int = 0
    #: True when the payload's type was declared (a header, ``mediaType``): a parse failure is
    #: then unscannable. False when it was sniffed: a failed parse falls back to text.
    declared: bool = True

    @property
    def location(self) -> str:
        return self.where if isinstance(self.where, str) else self.where()

    @property
    def context(self) -> Context:
        return self.owner if isinstance(self.owner, Context) else self.owner()


@dataclass(frozen=True, slots=True)
class CertificateItem:
    """An X.509 certificate a parser found in a request (XML-DSig ``X509Certificate``,
    WS-Security ``BinarySecurityToken``, JWS ``x5c``, PKCS#7/CMS, a PEM block), as DER.

    Judged when the whole request has been read, with every other certificate of the request
    as a possible intermediate of its chain. ``where`` and ``owner`` as for :class:`Payload`.
    """

    der: bytes
    where: str | Callable[[], str]
    owner: Context | Callable[[], Context] = Context()
    #: A certificate named only by the SHA-256 of its DER (a JWS ``x5t#S256``: upper-case
    #: hex), ``der`` then empty: the guard cannot see it, only match it against the others.
    thumbprint: str = ""

    @property
    def location(self) -> str:
        return self.where if isinstance(self.where, str) else self.where()

    @property
    def context(self) -> Context:
        return self.owner if isinstance(self.owner, Context) else self.owner()


@dataclass(frozen=True, slots=True)
class Field:
    """One value a parser found, with its context and where it is.

    ``identifier`` is True when the value *is* the identifier of ``context.system`` (``II``
    extension, ``code/@code``, FHIR ``identifier.value``), not merely text near it.
    ``where`` is the location, or a function computing it: most fields never need theirs, and an
    XPath costs more than the scan.
    """

    value: str
    context: Context
    where: str | Callable[[], str]
    identifier: bool = False
    #: The full context (the role), when the parser found the field without walking to it and
    #: computes the role only if something is reported; ``context`` then holds the system.
    owner: Callable[[], Context] | None = None
    #: The location of the field this one is another reading of (decoded, or lines joined), read
    #: before it: a hit already reported there is not reported again. None: a field of its own.
    view_of: str | None = None

    @property
    def location(self) -> str:
        return self.where if isinstance(self.where, str) else self.where()

    @property
    def role(self) -> Role:
        return (self.owner() if self.owner is not None else self.context).role


class PartyKind(StrEnum):
    """A party a document names: a person, or an organisation (whose contact details are not
    personal data)."""

    PERSON = "person"
    ORGANISATION = "organisation"


@dataclass(frozen=True, slots=True)
class PersonName:
    """One name of a party as written: its parts (CDA ``given``/``family``/``prefix``/``suffix``,
    FHIR ``HumanName``), its ``use`` (CDA ``@use``, FHIR ``use``) and the parts' qualifiers, and
    the name as one string (``text``: FHIR ``HumanName.text``, a CDA name without parts, or
    the parts joined)."""

    given: tuple[str, ...] = ()
    family: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()
    use: str | None = None
    qualifiers: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class Telecom:
    """A contact point as written (CDA ``telecom/@value`` such as ``tel:+358…`` or
    ``mailto:…``; FHIR ``ContactPoint``): its system (``phone``, ``email``, ``fax``, ``url``,
    ``other``; None when only the value tells) and ``use``."""

    value: str
    system: str | None = None
    use: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address as written: street lines, postal code, city, country, ``use``, and the
    whole as one string (``text``)."""

    lines: tuple[str, ...] = ()
    postal_code: str = ""
    city: str = ""
    country: str = ""
    use: str | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Party:
    """A person or organisation a document names, with what belongs to it: the personal-data
    rules judge names, contacts and codes together ("a real name on a registered test code").

    ``identifiers`` are ``(system, value)`` pairs, the system a bare OID where it is one (CDA
    ``id/@root``+``@extension``, FHIR ``identifier``). ``where`` is its location (the element or
    JSON path of the person), or a function computing it.
    """

    kind: PartyKind
    role: Role
    where: str | Callable[[], str]
    identifiers: tuple[tuple[str, str], ...] = ()
    names: tuple[PersonName, ...] = ()
    telecoms: tuple[Telecom, ...] = ()
    addresses: tuple[Address, ...] = ()

    @property
    def location(self) -> str:
        return self.where if isinstance(self.where, str) else self.where()


@dataclass(frozen=True, slots=True)
class Hit:
    """What a detector reports about a field. Holds the raw value: never leaves the pipeline."""

    rule: str
    field: Field
    raw: str
    masked: str
    explanation: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired, under the policy: masked evidence and a keyed hash, never the value."""

    rule: str
    action: Action
    location: str
    role: Role
    evidence: str
    value_hash: str
    explanation: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "action": str(self.action),
            "location": self.location,
            "role": str(self.role),
            "evidence": self.evidence,
            "value_hash": self.value_hash,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class Recognised:
    """What the identity-code scan recognised and let pass: a clean request's sign that the
    guard looked (shown in mitmweb's Comment column).

    ``identity_fields``: values declared under the HETU OID (CDA ``II``/``code``, FHIR
    ``identifier``) the scan read, whatever they held. ``test_codes``: distinct valid
    900-series codes seen anywhere, normalised, in order of first sight, the first
    ``MAX_TEST_CODES`` of them; ``more_test_codes``: how many further distinct ones. Test codes
    are not personal data (Kela issues them for the test environments): they are shown whole.
    A count for people, not a proof: a value read twice (two readings of one document) may be
    counted twice.
    """

    identity_fields: int = 0
    test_codes: tuple[str, ...] = ()
    more_test_codes: int = 0

    def __bool__(self) -> bool:
        return bool(self.identity_fields or self.test_codes)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "identity_fields": self.identity_fields,
            "test_codes": list(self.test_codes),
        }
        if self.more_test_codes:
            out["more_test_codes"] = self.more_test_codes
        return out


@dataclass(frozen=True, slots=True)
class Report:
    """The result of scanning one request (or one file)."""

    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    protocol: Protocol = Protocol.OTHER
    fields_scanned: int = 0
    payloads_scanned: int = 0
    #: Findings that count but were left out past the cap (``MAX_FINDINGS``); the
    #: verdict reflects them too. Once the cap is reached and the verdict is block, only the
    #: identity codes are still counted: then it is a lower bound.
    omitted: int = 0
    #: True if, past the cap, rules whose findings could no longer change the verdict were not
    #: looked for any more (a flood of warnings): ``omitted`` is then a lower bound.
    omitted_partial: bool = False
    #: What the identity-code scan recognised without objection (empty: nothing, or not read).
    recognised: Recognised = Recognised()
    #: The ``resourceType`` of a FHIR JSON body (the resource or Bundle the client sent; "" for
    #: any other body): the answer's FHIRPath expressions start with it (``fhirpath``). A FHIR
    #: XML body's locations start with it already.
    resource: str = ""

    @property
    def rules(self) -> tuple[str, ...]:
        """Distinct rule ids of the findings that count (not ``off``), in order of first use."""
        return tuple(dict.fromkeys(f.rule for f in self.findings if f.action is not Action.OFF))

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "verdict": str(self.verdict),
            "rules": list(self.rules),
            "findings": [f.as_dict() for f in self.findings],
            "protocol": str(self.protocol),
        }
        if self.omitted:
            out["findings_omitted"] = self.omitted
        if self.omitted_partial:
            out["findings_omitted_at_least"] = True
        if self.recognised:
            out["recognised"] = self.recognised.as_dict()
        return out


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request as the guard sees it: no proxy types, just what was sent."""

    method: str
    #: The request target as sent: path and query string, percent-encoded.
    target: str
    #: Header fields in the order sent, names as sent; a value may still hold obs-folds.
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    #: Where the request goes, as the proxy resolved it (not scanned: not necessarily sent).
    host: str = ""
    #: The authority as sent: the host[:port] of an absolute-form target (HTTP/1), the
    #: ``:authority`` pseudo-header (HTTP/2, HTTP/3), a CONNECT target; "" for origin-form.
    authority: str = ""
    #: Trailer fields sent after a chunked or HTTP/2 body, in order (RFC 9110 §6.5).
    trailers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None
