"""Tests for kanta_guard.proxy.status: the status page is answered by the proxy itself."""

from __future__ import annotations

import json

from mitmproxy import http
from mitmproxy.test import taddons, tflow

from kanta_guard.proxy.state import GuardState
from kanta_guard.proxy.status import STATUS_HOST, Status


def test_status_page_is_answered_locally() -> None:
    """A request for http://kanta-guard.status/ gets the status JSON and never goes upstream."""
    status = Status(GuardState())
    f = tflow.tflow()
    f.request = http.Request.make("GET", f"http://{STATUS_HOST}/")
    status.request(f)
    assert f.response is not None and f.response.status_code == 200
    assert json.loads(f.response.content or b"")["ready"] is False


def test_other_hosts_are_not_answered() -> None:
    """Requests to any other host are left to the guard."""
    status = Status(GuardState())
    f = tflow.tflow()
    status.request(f)
    assert f.response is None


def test_status_command() -> None:
    """The kanta_guard.status command returns the same status."""
    status = Status(GuardState())
    with taddons.context(status) as tctx:
        assert json.loads(tctx.command(status.status))["ready"] is False
