"""Detector for ``registry.unknown_professional``: with the supplier's registry of test
identities, a professional a document identifies by a Terhikki number (Valvira's register of
health care professionals, OID 1.2.246.537.26: a CDA ``author``, ``legalAuthenticator``,
``performer``; a FHIR ``Practitioner.identifier``) must be a registered test professional.

Without a registry nothing tells a test Terhikki number from a real one (Valvira publishes no
test range), so the rule runs only with one. A professional identified by an identity code is
judged by the code rules (``hetu.real``; with a registry ``registry.unknown_code``), and one
who signs, by the card rules (``card.real``).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Field, Hit
from ..registry import Registry
from ..rules import RuleSpec, rule

__all__ = ["TERHIKKI_OID", "ProfessionalDetector"]

#: Valvira's Terhikki register (HL7 Finland OID registry).
TERHIKKI_OID = "1.2.246.537.26"
_OID_BYTES = TERHIKKI_OID.encode("ascii")


class ProfessionalDetector:
    """Judges Terhikki numbers against the registry."""

    name = "professionals"
    systems = frozenset({TERHIKKI_OID})
    rules: tuple[RuleSpec, ...] = (rule("registry.unknown_professional"),)

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def detect(self, field: Field) -> Iterator[Hit]:
        if not (field.identifier and field.context.system == TERHIKKI_OID):
            return
        number = field.value.strip()
        if not number or self.registry.professional_number(number) is not None:
            return
        yield Hit(
            "registry.unknown_professional",
            field,
            number,
            _mask(number),
            "Terhikki number of no registered test professional: use a registered test "
            "professional (or add this one to the registry, if Valvira's test register has it)",
        )

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes]:
        """The needle: the OID itself, where it stands in markup. Its place names the tag
        that declares it (``II`` ``root``), whose attributes the XML parser then reads, the
        ``extension`` with them; JSON parsers yield every identifier of ``systems`` anyway.
        Joined text holds no identifiers."""
        if joined or data.find(_OID_BYTES) == -1:
            return frozenset()
        return frozenset({_OID_BYTES})


def _mask(number: str) -> str:
    """A Terhikki number masked but for its last two digits (it identifies a person)."""
    return "*" * max(0, len(number) - 2) + number[-2:]
