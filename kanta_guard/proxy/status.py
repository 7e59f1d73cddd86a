"""The guard's status: a page the proxy serves itself, and a mitmproxy command.

``http://kanta-guard.status/`` through the proxy answers with the guard's status as JSON (ready or
not and why, the active policy's source and digest, whether the log can be written); it is
answered by the proxy, never forwarded. In mitmweb or mitmproxy's console the same is
``kanta_guard.status``.
"""

from __future__ import annotations

import json

from mitmproxy import command, http

from .redact import redact_request
from .state import GuardState

__all__ = ["STATUS_HOST", "Status"]

#: The host name the proxy answers for itself (``.status`` is no top-level domain: a request
#: for it can only mean the guard).
STATUS_HOST = "kanta-guard.status"


class Status:
    """Answers ``http://kanta-guard.status/`` locally; offers the ``kanta_guard.status`` command."""

    def __init__(self, state: GuardState) -> None:
        self.state = state

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.request.pretty_host != STATUS_HOST:
            return
        # Nothing the guard did not judge is kept as sent: whatever this request carried (a
        # query, headers, a body) is masked or withheld in mitmweb like a flagged request.
        redact_request(flow, self.state.scanner)
        body = json.dumps(self.state.status(), ensure_ascii=False, indent=2).encode("utf-8")
        flow.response = http.Response.make(
            200 if flow.request.method in ("GET", "HEAD") else 405,
            body,
            {"Content-Type": "application/json", "Cache-Control": "no-store"},
        )

    @command.command("kanta_guard.status")  # type: ignore[untyped-decorator]
    def status(self) -> str:
        """The guard's status as JSON: ready or not, the active policy, the log's health."""
        return json.dumps(self.state.status(), ensure_ascii=False)
