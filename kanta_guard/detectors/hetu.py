"""Detector for the identity-code rules: ``hetu.real``, ``hetu.malformed``, ``hetu.malformed_test``.

Two ways a code is found (DVV's rules, as applied by Kela to the test environments):

* anywhere, as a HETU-shaped token in any value: a *valid* code with individual number 002–899 is
  a real person's (``hetu.real``). An invalid HETU-shaped token in free text is ignored: order
  numbers, timestamps and typos must not stop a tester's day.
* in a structured identity field (the value of an identifier declared under OID 1.2.246.21): the
  value must be a valid code. If it is not, an individual number below 900 (or none readable)
  blocks (``hetu.malformed``: a real code mistyped is still a real person's), a 900-series one
  warns (``hetu.malformed_test``).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import idcode
from ..model import HETU_OID, Field, Hit
from ..rules import RuleSpec, rule

__all__ = ["HetuDetector"]


class HetuDetector:
    """Finds real-range and malformed personal identity codes."""

    name = "hetu"
    rules: tuple[RuleSpec, ...] = (
        rule("hetu.real"),
        rule("hetu.malformed"),
        rule("hetu.malformed_test"),
    )

    def detect(self, field: Field) -> Iterator[Hit]:
        value = field.value
        if field.identifier and field.context.system == HETU_OID:
            yield from self._structured(field)
            return
        for match in idcode.TOKEN.finditer(value):
            token = match.group(0)
            if idcode.classify(token) is idcode.Kind.REAL:
                yield Hit(
                    "hetu.real",
                    field,
                    idcode.normalise(token),
                    idcode.mask(token),
                    "valid identity code in the real range (individual number 002-899)",
                )

    def _structured(self, field: Field) -> Iterator[Hit]:
        value = field.value.strip()
        if not value:
            return
        kind = idcode.classify(value)
        if kind is idcode.Kind.TEST:
            return
        code = idcode.normalise(value)
        if kind is idcode.Kind.REAL:
            yield Hit(
                "hetu.real",
                field,
                code,
                idcode.mask(value),
                "valid identity code in the real range (individual number 002-899) in an "
                "identity field",
            )
            return
        number = idcode.individual_number(value)
        if number is not None and number >= 900:
            yield Hit(
                "hetu.malformed_test",
                field,
                code,
                idcode.mask(value),
                "identity field holds a 900-series value that is not a valid code "
                "(check character or date wrong)",
            )
        else:
            yield Hit(
                "hetu.malformed",
                field,
                code,
                idcode.mask(value),
                "identity field holds a value that is not a valid code and not in the 900 "
                "series: it may be a real person's code mistyped",
            )
