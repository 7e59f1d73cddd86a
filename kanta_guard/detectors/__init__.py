"""Detectors: each turns a field into hits for the rules it declares. The registry is explicit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..model import Field, Hit
from ..rules import RuleSpec
from .hetu import HetuDetector

__all__ = ["DETECTORS", "Detector", "HetuDetector"]


class Detector(Protocol):
    """Turns one field into zero or more hits; declares the rules it can fire."""

    name: str
    rules: tuple[RuleSpec, ...]
    #: Identifier systems (bare OIDs) whose identifier fields this detector judges: parsers
    #: always yield those, whatever the screen says.
    systems: frozenset[str]

    def detect(self, field: Field) -> Iterator[Hit]: ...

    def count(self, field: Field) -> int:
        """How many hits ``detect`` would yield for ``field``, at a fraction of its cost.

        The pipeline asks this instead of ``detect`` once a report holds its cap of findings
        and already blocks: a request carrying a quarter of a million codes is answered in
        seconds with the first findings and a count of the rest. (Optional: a detector without
        it is asked ``detect``, its hits counted.)
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


#: The detectors every field goes through, in order.
DETECTORS: tuple[Detector, ...] = (HetuDetector(),)
