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

import re
from collections.abc import Iterator

from .. import idcode
from ..model import HETU_OID, Field, Hit
from ..rules import RuleSpec, rule

__all__ = ["HetuDetector"]

_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_HETU_OID = HETU_OID.encode("ascii")
_TAG_REACH = 2048


class HetuDetector:
    """Finds real-range and malformed personal identity codes."""

    name = "hetu"
    systems = frozenset({HETU_OID})
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

    def screen(self, data: bytes) -> frozenset[bytes] | None:
        """Which fields of this document (its UTF-8 text, markup included) could produce a hit?

        The answer is the needles: every real-range token, and every identifier value declared
        under the HETU OID in a CDA ``II``/``code`` tag that is not a valid test code. An empty
        set: none can. None: it cannot tell (the OID in text, FHIR XML or SAML form), so the
        parser reads every field. A JSON ``"system"`` member needs no needle: JSON parsers yield
        the identifier fields of ``systems`` whatever the screen says.
        """
        needles: set[bytes] = set()
        for token in idcode.find_tokens(data):
            if idcode.classify(token) is idcode.Kind.REAL:
                needles.add(token.encode("utf-8"))
        for pos in _oid_positions(data):
            value = _coded_value(data, pos)
            if value is None:
                if _json_system(data, pos):
                    continue
                return None
            if value and idcode.classify(value.decode("utf-8", "replace")) is not idcode.Kind.TEST:
                needles.add(value)
        return frozenset(needles)

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


def _oid_positions(data: bytes) -> Iterator[int]:
    """Where the HETU OID stands, not as the prefix of a longer OID (a literal search: fast)."""
    size = len(_HETU_OID)
    pos = data.find(_HETU_OID)
    while pos != -1:
        after = data[pos + size : pos + size + 1]
        if not after or after not in b"0123456789.":
            yield pos
        pos = data.find(_HETU_OID, pos + size)


def _json_system(data: bytes, pos: int) -> bool:
    """True if the OID at ``pos`` opens the value of a JSON member ``"system": "[urn:oid:]``."""
    head = data[max(0, pos - 48) : pos]
    if head[-8:].lower() == b"urn:oid:":
        head = head[:-8]
    if head[-1:] != b'"':
        return False
    head = head[:-1].rstrip()
    return head[-1:] == b":" and head[:-1].rstrip().endswith(b'"system"')


def _coded_value(data: bytes, pos: int) -> bytes | None:
    """The identifier an XML start tag declares under the OID at ``pos`` (b"" if none).

    Mirrors the XML parser: the system is ``@root`` or else ``@codeSystem``; the identifier is
    ``@extension`` under ``@root``, ``@code`` under ``@codeSystem``. None when the OID at
    ``pos`` is not such a system (text, JSON, another attribute).
    """
    # Looked for within reach only: a JSON document has no "<" to find, and a start tag this
    # long is no II or code (None sends the parser down the full walk, which reads everything).
    start = data.rfind(b"<", max(0, pos - _TAG_REACH), pos)
    if start == -1 or data.rfind(b">", start, pos) != -1:
        return None  # not inside a tag
    end = data.find(b">", pos)
    if end == -1:
        return None
    attrs = {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _ATTR.finditer(data, start, end)
    }
    system = attrs.get(b"root") or attrs.get(b"codeSystem")
    if system != _HETU_OID:
        return None
    return attrs.get(b"extension" if b"root" in attrs else b"code", b"").strip()
