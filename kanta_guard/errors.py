"""The exception tree of kanta-guard.

::

    KantaGuardError
    ├── PolicyError          bad configuration: start-up stops, the message names the problem
    └── UnscannableError     traffic the guard cannot fully read: the request is blocked (rule
                             ``unscannable``), never forwarded

No message of these exceptions ever carries a raw identity code or other personal value: callers
describe *what* could not be read (an encoding, a limit, a parse error position), not the data.
"""

from __future__ import annotations

__all__ = ["KantaGuardError", "PolicyError", "UnscannableError"]


class KantaGuardError(Exception):
    """Base class of every error kanta-guard raises on purpose."""


class PolicyError(KantaGuardError):
    """The policy (or an option) is invalid; raised at start-up, never on traffic."""


class UnscannableError(KantaGuardError):
    """A payload could not be decoded, parsed or fully read, so it must not be forwarded.

    ``reason`` is a short human sentence; ``location`` says where in the request it happened
    (``body``, ``body/part[2]``, ``header:Authorization`` ...).
    """

    def __init__(self, reason: str, location: str = "body") -> None:
        super().__init__(f"{location}: {reason}")
        self.reason = reason
        self.location = location
