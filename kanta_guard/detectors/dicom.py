"""Detector for the DICOM rules: ``dicom.identifying``, ``dicom.private``, ``dicom.burned_in``,
``dicom.not_deidentified``, ``dicom.ocr_text``, ``dicom.ocr_incomplete``.

It judges what the DICOM parser found (``kanta_guard.dicom.facts``, on marker fields), never a
field's text: the text of every element goes to the identity-code, name and contact rules like
any document's.

* **Identifying attributes** (PS3.15 Annex E, Basic Profile; ``kanta_guard.dicom.profile``): an
  attribute the profile removes, zeroes or replaces (not a UID), present with a value, unless an
  option of the policy keeps it or the policy keeps it by name (``[dicom] keep``). A text value
  (PN LO SH ST LT UT UC AE) passes only if it is a dummy the policy lists, a 900-series test code
  (the registry rules judge which), or a registered test identity's name, address, phone number
  or e-mail address (or a test contact the policy lists). A value of another VR (a date, a
  number, a code string, binary) is a finding only where the profile removes the attribute
  outright (``X``): where it zeroes or replaces it, any value of the VR may be the dummy, and
  the guard cannot tell it from the original. A sequence the profile removes outright is a
  finding if it has items; the items of any other are judged element by element.
* **Private attributes**: a private data element not on the policy's safe list (creator and
  element; the Retain Safe Private option, PS3.15 E.3.10), reported once per private block.
  No rule can read what a private attribute means.
* **Burned In Annotation** (0028,0301) on an image: anything but ``NO``; absent on the image
  types where burned-in text is common (``kanta_guard.dicom.classes``).
* **Patient Identity Removed** (0012,0062) not ``YES``, or ``YES`` without the
  De-identification Method (0012,0063) or its Code Sequence (0012,0064) saying how; judged on
  instances (a SOP Class UID), not on query identifiers (C-FIND, C-MOVE), whose universal
  match ``*`` is no value either.
* **OCR**: text read in the pixels of an image type that should carry none (the text itself goes
  to the other rules as a nested payload); an image OCR could not read whole (the budget, the
  frame limit, no engine installed), as ``dicom.ocr_incomplete``, or as ``unscannable`` where
  the policy's ``incomplete_blocks`` says so.

Evidence is masked: names to initials, codes to their mask, a private creator with its codes
masked; the keyed hash is of the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .. import contacts, idcode
from ..contacts import mask_address, mask_name, normalise_address
from ..dicom import classes
from ..dicom.facts import Attribute, DicomFacts, DicomField, OcrReading
from ..dicom.names import person_name
from ..dicom.profile import Profile, ProfileEntry, load_profile
from ..dicom.settings import DicomSettings
from ..model import Context, Field, Hit, PersonName, Role
from ..names import name_parts, readings
from ..policy import ContactSettings
from ..registry import Registry
from ..rules import UNSCANNABLE, RuleSpec, rule

__all__ = ["DICOM_RULES", "DicomDetector"]

#: The DICOM rules (their specs are the catalogue's, ``kanta_guard.rules``).
DICOM_RULES: tuple[RuleSpec, ...] = tuple(
    rule(rule_id)
    for rule_id in (
        "dicom.identifying",
        "dicom.private",
        "dicom.burned_in",
        "dicom.ocr_text",
        "dicom.ocr_incomplete",
        "dicom.not_deidentified",
    )
)


#: VRs whose values are text that can name or identify someone.
_TEXT_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC", "AE"})
#: At least this many letters or digits in OCR text before it counts as text.
_MIN_TEXT = 3
_VERBS = {"X": "removes", "Z": "empties", "D": "replaces with a dummy"}


class DicomDetector:
    """Judges DICOM objects (the marker fields of ``kanta_guard.parsers.dicom``)."""

    name = "dicom"
    systems: frozenset[str] = frozenset()

    def __init__(
        self,
        settings: DicomSettings | None = None,
        registry: Registry | None = None,
        *,
        test_contacts: ContactSettings | None = None,
    ) -> None:
        self.settings = settings or DicomSettings()
        self.registry = registry
        self.rules: tuple[RuleSpec, ...] = (*DICOM_RULES, UNSCANNABLE)
        self._profile: Profile = load_profile()
        policy_contacts = test_contacts or ContactSettings()
        self._phones = frozenset(
            e164 for p in policy_contacts.phones if (e164 := _whole_phone(p)) is not None
        )
        self._addresses = frozenset(normalise_address(a) for a in policy_contacts.addresses)
        self._patterns = tuple(
            re.compile(p, re.IGNORECASE) for p in policy_contacts.address_patterns
        )

    def __repr__(self) -> str:
        return f"DicomDetector(registry={self.registry is not None}, ocr={self.settings.ocr})"

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes] | None:
        """No needles: this detector reads no field's text, only the DICOM parser's markers,
        which the parser yields whatever a screen says."""
        return frozenset()

    def detect(self, field: Field) -> Iterator[Hit]:
        if not isinstance(field, DicomField):
            return
        if field.facts is not None:
            yield from self._facts(field.facts)
        for reading in field.readings:
            yield from self._reading(reading)

    # -- one object's facts ------------------------------------------------------------------

    def _facts(self, facts: DicomFacts) -> Iterator[Hit]:
        private: dict[tuple[str | None, int], list[Attribute]] = {}
        for attribute in facts.attributes:
            if attribute.private:
                if not attribute.empty and not self.settings.is_safe_private(
                    attribute.creator, attribute.tag
                ):
                    private.setdefault((attribute.creator, attribute.tag >> 16), []).append(
                        attribute
                    )
                continue
            yield from self._identifying(attribute)
        for (creator, group), attributes in private.items():
            yield _private_hit(creator, group, attributes)
        if facts.image:
            hit = self._burned_in(facts)
            if hit is not None:
                yield hit
        if facts.sop_class:  # (an instance: a C-FIND or C-MOVE identifier is a query)
            hit = _deidentified(facts)
            if hit is not None:
                yield hit

    def _identifying(self, attribute: Attribute) -> Iterator[Hit]:
        settings = self.settings
        if attribute.tag in settings.keep or attribute.empty:
            return
        entry = self._profile.judged(attribute.tag, settings.options)
        if entry is None:
            return
        field = Field(
            "", Context(attribute.role, attribute.keyword or None, "dicom"), attribute.where
        )
        if attribute.vr == "SQ":
            if entry.removed:
                raw = f"{attribute.where}: {attribute.size} items"
                yield Hit(
                    "dicom.identifying",
                    field,
                    raw,
                    f"{attribute.size} item(s)",
                    f"{entry.name} {entry.tag} has items; PS3.15 Annex E removes it "
                    f"({entry.action})",
                )
            return
        if attribute.vr not in _TEXT_VRS:
            if entry.removed:
                raw = attribute.values[0] if attribute.values else attribute.where
                yield Hit(
                    "dicom.identifying",
                    field,
                    raw,
                    _mask(raw) if attribute.values else f"{attribute.size} bytes",
                    f"{entry.name} {entry.tag} holds a value; PS3.15 Annex E removes it "
                    f"({entry.action})",
                )
            return
        seen: set[str] = set()
        for value in attribute.values:
            value = value.strip()
            if not value.strip(" ^=*") or value in seen or self._accepted(attribute, value):
                continue  # (empty, or "*": universal matching in a query, PS3.4 C.2.2.2.4)
            seen.add(value)
            yield Hit(
                "dicom.identifying",
                Field(value, field.context, attribute.where),
                value,
                _evidence(attribute, value),
                _explanation(entry),
            )

    def _accepted(self, attribute: Attribute, value: str) -> bool:
        """True if the value may stand in an identifying attribute: a dummy, a test code, or a
        registered test identity's (or the policy's test) name, address, phone or e-mail."""
        if self.settings.is_dummy(value):
            return True
        if idcode.classify(idcode.normalise(value)) is idcode.Kind.TEST:
            return True  # (the registry rules judge whether it is registered)
        if attribute.vr == "PN":
            return self._registered_pn(value)
        if self._registered_contact(value):
            return True
        return self._registered_name(value)

    def _registered_pn(self, value: str) -> bool:
        """True if every name of a PN value is a dummy or a registered identity's name."""
        if self.registry is None:
            return False
        for group in value.split("=")[:3]:
            name = person_name(group)
            if name is None or self.settings.is_dummy(name.text):
                continue
            if not self._known(name):
                return False
        return True

    def _known(self, name: PersonName) -> bool:
        assert self.registry is not None
        if name.given or name.family:
            given = tuple(p for g in name.given for p in name_parts(g))
            family = tuple(p for f in name.family for p in name_parts(f))
            return bool(self.registry.named(given, family))
        return self._registered_name(name.text)

    def _registered_name(self, text: str) -> bool:
        if self.registry is None:
            return False
        return any(self.registry.named(w.given, w.family) for w in readings(text))

    def _registered_contact(self, value: str) -> bool:
        """A registered (or policy) test address, phone number or e-mail address."""
        registry = self.registry
        normal = normalise_address(value)
        if normal in self._addresses or any(p.fullmatch(value) for p in self._patterns):
            return True
        if registry is not None and registry.address_allowed(value):
            return True
        if "@" in value and registry is not None and registry.email_allowed(value):
            return True
        e164 = _whole_phone(value)
        if e164 is not None:
            return e164 in self._phones or (registry is not None and registry.phone_allowed(e164))
        return False

    def _burned_in(self, facts: DicomFacts) -> Hit | None:
        where = f"{facts.prefix}(0028,0301)BurnedInAnnotation"
        field = Field("", Context(Role.DOCUMENT, "BurnedInAnnotation", "dicom"), where)
        if facts.burned_in is None:
            if not classes.burned_in_prone(facts.sop_class, facts.modality, facts.conversion_type):
                return None
            return Hit(
                "dicom.burned_in",
                field,
                "absent",
                "absent",
                "Burned In Annotation (0028,0301) is absent on an image type where burned-in text "
                "is common (secondary capture, screenshot, scanned document, ultrasound): state "
                "NO once the pixels are clean",
            )
        value = facts.burned_in.strip().upper()
        if value == "NO":
            return None
        return Hit(
            "dicom.burned_in",
            field,
            value,
            idcode.quote_input(value, 12),
            "Burned In Annotation (0028,0301) is not NO: text is burned into the pixels",
        )

    # -- OCR -----------------------------------------------------------------------------------

    def _reading(self, reading: OcrReading) -> Iterator[Hit]:
        field = Field("", Context(Role.NARRATIVE, "PixelData", "dicom"), reading.where)
        if not reading.complete:
            blocks = self.settings.incomplete_blocks
            engine = f" ({reading.engine}, {reading.seconds:.2f} s)" if reading.engine else ""
            yield Hit(
                UNSCANNABLE.id if blocks else "dicom.ocr_incomplete",
                field,
                reading.where,
                "",
                (reading.note or "OCR could not read the whole image") + engine,
            )
        text = reading.text
        if not reading.expected and sum(c.isalnum() for c in text) >= _MIN_TEXT:
            count = len(text.strip())
            yield Hit(
                "dicom.ocr_text",
                field,
                text,
                f"{count} characters",
                f"OCR read {count} characters of text in the pixels of an image type that should "
                "carry none: check the image (codes and names in the text are reported on their "
                "own)",
            )


def _whole_phone(value: str) -> str | None:
    """A value that is wholly a phone number, in E.164; else None."""
    found = contacts.find_phones(value)
    if len(found) != 1:
        return None
    start, end, e164 = found[0]
    return e164 if not value[:start].strip() and not value[end:].strip() else None


def _private_hit(creator: str | None, group: int, attributes: list[Attribute]) -> Hit:
    first = attributes[0]
    tags = ", ".join(f"({group:04X},xx{a.tag & 0xFF:02X})" for a in attributes[:6])
    more = f" and {len(attributes) - 6} more" if len(attributes) > 6 else ""
    shown = idcode.mask_any_form(creator)[:64] if creator else "no Private Creator"
    return Hit(
        "dicom.private",
        Field("", Context(first.role, f"({group:04X},xxxx)", "dicom"), first.where),
        f"{creator or ''}\0{group:04X}",
        f"{shown} ({group:04X},xxxx)",
        f"{len(attributes)} private attribute(s) of {shown}: {tags}{more}, not on the policy's "
        "safe list ([dicom] safe_private)",
    )


def _deidentified(facts: DicomFacts) -> Hit | None:
    where = f"{facts.prefix}(0012,0062)PatientIdentityRemoved"
    field = Field("", Context(Role.DOCUMENT, "PatientIdentityRemoved", "dicom"), where)
    value = (facts.identity_removed or "").strip().upper()
    if value == "YES":
        if facts.methods or facts.method_codes:
            return None
        explanation = (
            "Patient Identity Removed (0012,0062) is YES, but neither De-identification Method "
            "(0012,0063) nor its Code Sequence (0012,0064) says how"
        )
    elif facts.identity_removed is None:
        explanation = "Patient Identity Removed (0012,0062) is absent: not stated de-identified"
    else:
        explanation = "Patient Identity Removed (0012,0062) is not YES"
    if facts.methods:
        method = idcode.clip(" / ".join(facts.methods), 80)
        explanation += f" (De-identification Method: {method})"
    return Hit("dicom.not_deidentified", field, value or "absent", value or "absent", explanation)


def _explanation(entry: ProfileEntry) -> str:
    verbs = [_VERBS[code] for code in ("X", "Z", "D") if code in entry.actions]
    verb = " or ".join(verbs) or "replaces"
    return (
        f"{entry.name} {entry.tag}: PS3.15 Annex E {verb} it ({entry.action}); this value is no "
        "registered test identity's, no test code and no dummy the policy lists"
    )


def _evidence(attribute: Attribute, value: str) -> str:
    if attribute.vr == "PN":
        return mask_name(" ".join(value.replace("^", " ").replace("=", " ").split()))
    if "Address" in attribute.keyword:
        return mask_address(value)
    e164 = _whole_phone(value)
    if e164 is not None:
        return contacts.mask_phone(e164)
    if "@" in value:
        found = contacts.find_emails(value)
        if found:
            return contacts.mask_email(found[0][2])
    return _mask(value)


def _mask(value: str) -> str:
    """Any other text: codes to their mask, words to initials, digits hidden, kept short."""
    masked = mask_name(idcode.mask_text(value))
    return masked if len(masked) <= 60 else masked[:59] + "…"
