"""DICOM person names (PN, PS3.5 6.2.1): a value's component groups as the pipeline's names."""

from __future__ import annotations

from ..model import PersonName

__all__ = ["person_name"]


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
    givens = tuple(p for p in (given, middle) if p)
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
