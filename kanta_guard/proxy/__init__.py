"""The mitmproxy side of kanta-guard: one addon per behaviour, wired to the pure library.

Only this package imports mitmproxy. Everything it decides, it asks the library
(:mod:`kanta_guard.pipeline`, :mod:`kanta_guard.answer`, :mod:`kanta_guard.eventlog`):

- :mod:`~kanta_guard.proxy.guard`: the HTTP guard (judges every request, last in the chain);
- :mod:`~kanta_guard.proxy.connections`: every connection is HTTP the guard reads, or refused;
- :mod:`~kanta_guard.proxy.redact`: flagged requests are redacted in mitmweb and saved flows;
- :mod:`~kanta_guard.proxy.status`: the guard's status page and command;
- :mod:`~kanta_guard.proxy.view`: the "kanta-guard" content view;
- :mod:`~kanta_guard.proxy.quiet`: mitmproxy's own output never shows a raw value;
- :mod:`~kanta_guard.proxy.launch`: mitmproxy started with each addon in its place.
"""

from __future__ import annotations

from .launch import addons, install, run_tool
from .state import GuardState

__all__ = ["GuardState", "addons", "install", "run_tool"]
