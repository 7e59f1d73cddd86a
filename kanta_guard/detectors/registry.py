"""Detector for the registry rules: ``registry.unknown_code``, ``registry.wrong_pool``,
``registry.wrong_case``.

Kela gives each supplier a limited set of 900-series test codes, separate for independent and for
joint testing, that must not be cross-used; a joint code may be used only in the test cases it
was requested for. With the supplier's registry configured, every valid 900-series code in a
request (free text, or a structured identity field under OID 1.2.246.21) is looked up: not
there, from the other pool, or outside its cases, it is a finding. (Test codes are not personal
data; the evidence is the code, though what people see still masks every code-shaped token
today: showing 900-series codes there is the operators' issue.)
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import idcode
from ..model import HETU_OID, Field, Hit
from ..policy import TestingMode
from ..registry import Pool, Registry
from ..rules import RuleSpec, rule
from .hetu import MAX_NEEDLES, _coded_values, _decodes

__all__ = ["RegistryCodeDetector"]


class RegistryCodeDetector:
    """Judges the test codes of a request against the registry, under one testing mode."""

    name = "registry"
    systems = frozenset({HETU_OID})
    rules: tuple[RuleSpec, ...] = (
        rule("registry.unknown_code"),
        rule("registry.wrong_pool"),
        rule("registry.wrong_case"),
    )

    def __init__(self, registry: Registry, testing: TestingMode) -> None:
        self.registry = registry
        self.testing = testing

    def verdict(self, code: str) -> tuple[str, str] | None:
        """(rule, explanation) for a valid 900-series code under this mode, None if allowed."""
        identity = self.registry.get(code)
        if identity is None:
            return (
                "registry.unknown_code",
                "900-series code not in the registry of test identities: use a registered "
                "test identity (or add this one, if Kela issued it to you)",
            )
        cases = ", ".join(sorted(identity.cases))
        if self.testing.joint:
            if identity.pool is Pool.INDEPENDENT:
                return (
                    "registry.wrong_pool",
                    "independent-testing code used in joint testing "
                    f"(case {self.testing.case}): use a joint-testing code of this case",
                )
            if self.testing.case not in identity.cases:
                return (
                    "registry.wrong_case",
                    f"joint-testing code requested for case(s) {cases}, used in case "
                    f"{self.testing.case}",
                )
            return None
        if identity.pool is Pool.JOINT:
            return (
                "registry.wrong_pool",
                f"joint-testing code (case(s) {cases}) used in independent testing: use an "
                "independent-testing code",
            )
        return None

    def detect(self, field: Field) -> Iterator[Hit]:
        if field.identifier and field.context.system == HETU_OID:
            candidates = [idcode.normalise(r) for r in idcode.match_readings(field.value.strip())]
        else:
            candidates = [
                idcode.normalise(match.group(0))
                for text in idcode.match_readings(field.value)
                for match in idcode.token_matches_in_text(text)
            ]
        seen: set[str] = set()
        for code in candidates:
            if code in seen or idcode.classify(code) is not idcode.Kind.TEST:
                continue
            seen.add(code)
            judged = self.verdict(code)
            if judged is not None:
                rule_id, explanation = judged
                yield Hit(rule_id, field, code, code, explanation)

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes] | None:
        """The needles: every 900-series token (and identifier value under the HETU OID) this
        mode and registry would report, as it stands in ``data``; None where ``HetuDetector``'s
        screen cannot tell either (the same argument holds: this detector reads the same tokens
        and identifier values, and only classifies them differently)."""
        if not joined and _decodes(data):
            return None
        values = [] if joined else _coded_values(data)
        if values is None:
            return None
        if not idcode.reads_plainly(data):
            return self._cleared(data, values, joined)
        tokens = idcode.iter_loose_tokens(data) if joined else idcode.iter_tokens(data)
        needles: set[bytes] = set()
        for token in tokens:
            code = idcode.normalise(idcode.screen_form(token))
            if idcode.classify(code) is idcode.Kind.TEST and self.verdict(code) is not None:
                needles.add(token.encode("utf-8", "surrogatepass"))
                if len(needles) > MAX_NEEDLES:
                    return None
        for value in values:
            text = value.decode("utf-8", "replace")
            code = idcode.normalise(text)
            if idcode.classify(code) is idcode.Kind.TEST and self.verdict(code) is not None:
                needles.add(value)
        return frozenset(needles) if len(needles) <= MAX_NEEDLES else None

    def _cleared(self, data: bytes, values: list[bytes], joined: bool) -> frozenset[bytes] | None:
        """The screen of a document whose readings differ from it as written (as
        ``hetu._cleared``): "none" if no reading shows a test code this mode would report,
        else None (a needle of a reading need not stand in the bytes)."""
        try:
            texts = [data.decode("utf-8", "surrogatepass")]
        except UnicodeDecodeError:
            texts = [data.decode("latin-1"), data.decode("cp1252", "replace")]
        for text in texts:
            for reading in idcode.match_readings(text):
                matches = (
                    idcode.loose_tokens(reading)
                    if joined
                    else (
                        m.group(0)
                        for m in idcode.token_matches_in_text(idcode.screen_form(reading))
                    )
                )
                for token in matches:
                    code = idcode.normalise(token)
                    if idcode.classify(code) is idcode.Kind.TEST and self.verdict(code):
                        return None
        for value in values:
            for reading in idcode.match_readings(value.decode("utf-8", "replace").strip()):
                code = idcode.normalise(reading)
                if idcode.classify(code) is idcode.Kind.TEST and self.verdict(code):
                    return None
        return frozenset()
