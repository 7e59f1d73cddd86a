"""The mitmproxy side of kanta-guard: one addon per behaviour, wired to the pure library.

Only this package imports mitmproxy. Everything it decides, it asks the library
(:mod:`kanta_guard.pipeline`, :mod:`kanta_guard.answer`, :mod:`kanta_guard.eventlog`).
"""

from __future__ import annotations

__all__: list[str] = []
