"""DICOM person names (PN, PS3.5 6.2.1): a value's component groups as the pipeline's names."""

from __future__ import annotations

from ..model import PersonName

__all__ = ["name_of_parts", "person_name"]


def person_name(group: str) -> PersonName | None:
    """One component group of a PN value as a name: ``Family^Given^Middle^Prefix^Suffix``
    (PS3.5 6.2.1.1), or a name written in one component (``Maija Testinen``: read whole)."""
    parts = [" ".join(p.split()) for p in group.split("^")]
    if not any(parts):
        return None
    if len(parts) == 1:
        return PersonName(text=parts[0])
    family, given, middle, prefix, suffix = [*parts, "", "", "", ""][:5]
    suffix = " ".join(p for p in (suffix, *parts[5:]) if p)
    return name_of_parts(family, (given, middle), prefix, suffix)


def name_of_parts(
    family: str, givens: tuple[str, ...], prefix: str = "", suffix: str = ""
) -> PersonName:
    """A name from the components PN and HL7 v2 XPN share (family, given names, prefix,
    suffix: empty ones dropped), its text as a reader writes it (prefix, given, family,
    suffix)."""
    givens = tuple(p for p in givens if p)
    text = " ".join(p for p in (prefix, *givens, family, suffix) if p)
    return PersonName(
        givens,
        (family,) if family else (),
        (prefix,) if prefix else (),
        (suffix,) if suffix else (),
        None,
        (),
        text,
    )
