"""The guard's status: a page the proxy serves itself, the same on mitmweb's dashboard, a command.

``http://kanta-guard.status/`` through the proxy is answered by the proxy, never forwarded: an
HTML page to a browser (``Accept: text/html``, :mod:`kanta_guard.statuspage`), the status as
JSON to anything else; ``/status.json`` is always JSON. (``/metrics`` on that host is the
metrics addon's: :mod:`kanta_guard.proxy.metrics`.) What it shows: ready or not and why, counts
by verdict and rule since start, the last blocks with masked evidence, the active policy,
registry and testing mode, the workers' and the log's health.

Where mitmweb runs, the same page is on the dashboard's port at ``/kanta-guard/`` (and
``/kanta-guard/status.json``), behind the dashboard's own access rule: mitmweb 12 asks every
request for its token (the ``?token=…`` it prints at start, a ``web_password``, or the cookie a
browser got with either). The page shows only masked data, but it names hosts, paths and the
policy in force, which the dashboard also guards: the same rule for both, and a browser that has
opened the dashboard sees the page without asking again. Through the proxy the page needs no
token, as the proxy itself needs none: whoever can use the proxy can see what it stops.

In mitmweb or mitmproxy's console the status is also the command ``kanta_guard.status``.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from mitmproxy import command, ctx, http

from ..statuspage import CONTENT_TYPE, render
from .redact import redact_request
from .state import GuardState

__all__ = ["DASHBOARD_PATH", "STATUS_HOST", "Status", "status_json", "wants_html"]

logger = logging.getLogger("kanta_guard")

#: The host name the proxy answers for itself (``.status`` is no top-level domain: a request
#: for it can only mean the guard).
STATUS_HOST = "kanta-guard.status"
#: Where mitmweb's dashboard serves the page.
DASHBOARD_PATH = "/kanta-guard/"

_NO_STORE = {"Cache-Control": "no-store"}


def wants_html(accept: str) -> bool:
    """Whether a request's ``Accept`` asks for a page (a browser's does) rather than data."""
    return "text/html" in accept.lower()


def status_json(state: GuardState) -> bytes:
    """The status as indented JSON (what both servers answer for data)."""
    return json.dumps(state.status(), ensure_ascii=False, indent=2).encode("utf-8")


class Status:
    """Answers ``http://kanta-guard.status/`` locally, adds the page to mitmweb's dashboard, and
    offers the ``kanta_guard.status`` command."""

    def __init__(self, state: GuardState) -> None:
        self.state = state

    async def running(self) -> None:
        app = getattr(ctx.master, "app", None)
        if app is None or not hasattr(app, "add_handlers"):
            return  # mitmdump: no dashboard
        handler = _dashboard_handler()
        app.add_handlers(
            r".*",
            [
                (DASHBOARD_PATH, handler, {"state": self.state, "as_json": False}),
                (DASHBOARD_PATH + "status.json", handler, {"state": self.state, "as_json": True}),
            ],
        )

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.request.pretty_host != STATUS_HOST:
            return
        # Nothing the guard did not judge is kept as sent: whatever this request carried (a
        # query, headers, a body) is masked or withheld in mitmweb like a flagged request.
        request = flow.request
        path = request.path.partition("?")[0]
        accept = request.headers.get("accept", "")
        redact_request(flow, self.state.scanner)
        if request.method not in ("GET", "HEAD"):
            code, body, kind = 405, b"405: the status page is read-only\n", "text/plain"
        elif path == "/status.json" or (path == "/" and not wants_html(accept)):
            code, body, kind = 200, status_json(self.state), "application/json"
        elif path == "/":
            code, kind = 200, CONTENT_TYPE
            body = render(self.state.status()).encode("utf-8")
        else:
            code, kind = 404, "text/plain"
            body = b"404: the guard answers /, /status.json and /metrics here\n"
        flow.response = http.Response.make(code, body, {"Content-Type": kind, **_NO_STORE})

    @command.command("kanta_guard.status")  # type: ignore[untyped-decorator]
    def status(self) -> str:
        """The guard's status as JSON: ready or not, the active policy, the log's health."""
        return json.dumps(self.state.status(), ensure_ascii=False)


@functools.cache
def _dashboard_handler() -> type[Any]:
    """A tornado handler for mitmweb's app, built on first use (mitmdump never imports tornado).

    It derives from mitmweb's own ``RequestHandler``, which wraps every method in the
    dashboard's token check and sends its security headers (a Content-Security-Policy that
    allows inline styles, which is all the page uses).
    """
    from mitmproxy.tools.web.app import RequestHandler

    class StatusPage(RequestHandler):
        """The status page (or its JSON) on the dashboard's port."""

        def initialize(self, state: GuardState, as_json: bool) -> None:
            self.state, self.as_json = state, as_json

        def auth_fail(self, invalid_password: bool) -> None:
            # The dashboard's own log-in form (its token or password), as on its index page.
            self.render("login.html", invalid_password=invalid_password)

        def get(self) -> None:
            self.set_header("Cache-Control", "no-store")
            if self.as_json:
                self.set_header("Content-Type", "application/json")
                self.write(status_json(self.state))
            else:
                self.set_header("Content-Type", CONTENT_TYPE)
                self.write(render(self.state.status(), metrics_href=None))

        post = get  # the log-in form posts back here

    return StatusPage
