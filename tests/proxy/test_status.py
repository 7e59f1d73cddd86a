"""Tests for kanta_guard.proxy.status: the status page is answered by the proxy itself."""

from __future__ import annotations

import json

from helpers import REAL
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from kanta_guard import KeyedHasher, Scanner, default_policy
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


def test_status_request_holding_a_code_is_not_kept_readable() -> None:
    """A request to the status page that carries a code (in its query, a header or its body) is
    answered by the proxy, and what mitmweb keeps of it shows no code."""
    state = GuardState(scanner=Scanner(default_policy(), KeyedHasher(b"k" * 32)))
    status = Status(state)
    f = tflow.tflow()
    f.request = http.Request.make(
        "POST", f"http://{STATUS_HOST}/?id={REAL}", REAL.encode(), {"X-Id": REAL}
    )
    status.request(f)
    assert f.response is not None
    assert REAL not in f.request.path and REAL not in str(f.request.headers)
    assert REAL.encode() not in (f.request.raw_content or b"")
