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

    def detect(self, field: Field) -> Iterator[Hit]: ...


#: The detectors every field goes through, in order.
DETECTORS: tuple[Detector, ...] = (HetuDetector(),)
