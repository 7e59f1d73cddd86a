"""kanta-guard: stops real personal data before it reaches the Kanta services test environment.

The library scans a request (or a file) without a proxy::

    scanner = Scanner(load_policy(None), KeyedHasher(load_key()))
    report = scanner.scan(Request("POST", "/services", headers, body))

:mod:`kanta_guard.proxy` is the only package that imports mitmproxy.
"""

from __future__ import annotations

from .answer import Answer, blocked_answer
from .errors import KantaGuardError, PolicyError, UnscannableError
from .masking import KeyedHasher, load_key
from .model import (
    Action,
    Context,
    Field,
    Finding,
    Payload,
    Protocol,
    Report,
    Request,
    Role,
    Verdict,
)
from .pipeline import Scanner
from .policy import Policy, default_policy, load_policy
from .rules import RULES, RuleSpec

__all__ = [
    "RULES",
    "Action",
    "Answer",
    "Context",
    "Field",
    "Finding",
    "KantaGuardError",
    "KeyedHasher",
    "Payload",
    "Policy",
    "PolicyError",
    "Protocol",
    "Report",
    "Request",
    "Role",
    "RuleSpec",
    "Scanner",
    "UnscannableError",
    "Verdict",
    "blocked_answer",
    "default_policy",
    "load_key",
    "load_policy",
]
