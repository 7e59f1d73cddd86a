"""Detectors: each turns a field into hits for the rules it declares. The registry is explicit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from ..model import Action, Field, Hit
from ..rules import RuleSpec
from .hetu import HetuDetector

if TYPE_CHECKING:
    from ..policy import Policy
    from ..registry import Registry

__all__ = ["DETECTORS", "Detector", "HetuDetector", "detectors_for"]


class Detector(Protocol):
    """Turns one field into zero or more hits; declares the rules it can fire."""

    name: str
    rules: tuple[RuleSpec, ...]
    #: Identifier systems (bare OIDs) whose identifier fields this detector judges: parsers
    #: always yield those, whatever the screen says.
    systems: frozenset[str]

    def detect(self, field: Field) -> Iterator[Hit]:
        """Hits for one field.

        A detector may also have ``count(field) -> int``: how many hits ``detect`` would yield,
        at a fraction of its cost. The pipeline asks it instead of ``detect`` once a report
        holds its cap of findings and already blocks (a request carrying a quarter of a million
        codes is answered in seconds with the first findings and a count of the rest); a
        detector without it is asked ``detect``. And ``judge(party) -> Iterator[Hit]``: hits for
        a person or organisation the parsers found (``model.Party``). And ``whole_elements``:
        True if it reads several words or digit groups that markup may split (a name, a phone
        number): parsers then also yield each element with mixed content as one field, its text
        joined as a reader sees it, and values holding escapes no parser undoes with them undone
        (``ScanState.whole_elements``).
        """
        ...

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes] | None:
        """Which fields of a document whose UTF-8 text is ``data`` could produce a hit?

        Parsers ask before reading every field, which costs more than parsing. The answer is a
        set of needles: only fields whose value contains one need reading (an empty set: none).
        None: the detector cannot tell, and every field is read.

        The JSON parser always yields the identifier fields of ``systems``; the XML parser does
        not, so a screen must name as needles the XML identifiers of its systems that could
        fire (as the HETU screen does for CDA ``II``/``code`` tags), or answer None.
        tests/test_screen.py holds every screen to the full walk's findings.

        ``joined``: ``data`` is decoded text joined across markup, in which any stretch may be
        a field (an element's text, read as a reader of mixed content joins it): the needles
        must cover every field that is a substring of it, whatever stands around it.
        """
        ...


#: The identity-code detector alone (what needs no configuration).
DETECTORS: tuple[Detector, ...] = (HetuDetector(),)


def detectors_for(policy: Policy, registry: Registry | None = None) -> tuple[Detector, ...]:
    """The detectors a scanner under this policy runs, in order: identity codes; with a
    registry, the registry's test codes under the policy's testing mode; e-mail addresses and
    phone numbers anywhere; full names in free text; persons (names and addresses);
    imaging (DICOM); certificates and cards."""
    # (Imported here: they load lexicons and libraries the identity-code scan alone needs not.)
    from ..certs import CertJudge, load_anchors
    from .certificates import CertificateDetector
    from .contacts import ContactDetector
    from .dicom import DicomDetector
    from .narrative import NarrativeNameDetector
    from .persons import PersonDetector
    from .professionals import ProfessionalDetector
    from .registry import RegistryCodeDetector

    contacts = policy.contacts
    found: list[Detector] = [HetuDetector()]
    if registry is not None:
        found.append(RegistryCodeDetector(registry, policy.testing))
        found.append(ProfessionalDetector(registry))
    # E-mail addresses and phone numbers each by a detector of their own: their rules' actions
    # differ, and past the findings cap the one that can no longer change the verdict stops.
    for kind in ("email", "phone"):
        found.append(
            ContactDetector(
                allowed_emails=frozenset(contacts.emails),
                allowed_email_domains=frozenset(contacts.email_domains),
                allowed_phones=frozenset(contacts.phones),
                registry=registry,
                kinds=frozenset({kind}),
            )
        )
    found.append(NarrativeNameDetector(registry))
    found.append(PersonDetector(registry, contacts))
    found.append(DicomDetector(policy.dicom, registry, test_contacts=policy.contacts))
    anchors = policy.certificates.anchors
    judge = CertJudge(load_anchors(anchors) if anchors else None)
    silent = frozenset(r.id for r in CertificateDetector.rules if policy.action(r.id) is Action.OFF)
    found.append(CertificateDetector(judge, silent=silent))
    return tuple(found)
