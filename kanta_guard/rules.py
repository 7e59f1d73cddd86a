"""The rule catalogue: every rule id, its safe default action and what it means."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Action

__all__ = ["REFUSED", "RULES", "UNAVAILABLE", "UNSCANNABLE", "RuleSpec", "rule"]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule a detector (or the pipeline) can fire; the policy may change its action."""

    id: str
    default: Action
    summary: str
    #: False for rules whose action the policy may not weaken (fail closed).
    adjustable: bool = True


UNSCANNABLE = RuleSpec(
    "unscannable",
    Action.BLOCK,
    "The request could not be decoded, parsed or fully read (unknown encoding, parse error, "
    "DOCTYPE, size or depth limit), so it cannot be shown to be clean.",
    adjustable=False,
)

REFUSED = RuleSpec(
    "protocol.refused",
    Action.BLOCK,
    "The connection or request would take a path the guard does not read (raw TCP, TLS "
    "passthrough, a protocol upgrade such as WebSocket, request trailers towards a server that "
    "cannot take them), so it is refused rather than relayed unread.",
    adjustable=False,
)

UNAVAILABLE = RuleSpec(
    "guard.unavailable",
    Action.BLOCK,
    "The guard cannot judge traffic right now (it holds no valid policy, or its blocked-request "
    "log cannot be written), so it forwards nothing until it can.",
    adjustable=False,
)

#: Every rule, in the order the README documents them. Detectors declare theirs here.
RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "hetu.real",
        Action.BLOCK,
        "A valid personal identity code with individual number 002-899: a real person's code. "
        "Only Kela's 900-series test codes may be used in the test environment.",
    ),
    RuleSpec(
        "hetu.malformed",
        Action.BLOCK,
        "A structured identity field (OID 1.2.246.21) holds a value that is not a valid code and "
        "whose individual number is below 900 (or unreadable): a real code mistyped is still a "
        "real person's.",
    ),
    RuleSpec(
        "hetu.malformed_test",
        Action.WARN,
        "A structured identity field (OID 1.2.246.21) holds a 900-series value that is not a valid "
        "code (wrong check character or date); Kanta will reject it.",
    ),
    UNSCANNABLE,
    REFUSED,
    UNAVAILABLE,
)

_BY_ID = {spec.id: spec for spec in RULES}


def rule(rule_id: str) -> RuleSpec:
    """The spec of a rule id; KeyError for an unknown one."""
    return _BY_ID[rule_id]
