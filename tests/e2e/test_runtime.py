"""End to end: a policy change at run time (mitmweb's PUT /options) cannot weaken the guard
unless the active policy allows it, and an accepted change is logged.

mitmweb 12.3.1 authenticates API calls with ``Authorization: Bearer <web_password>`` (or the
``token`` query argument) and, for a PUT, tornado's XSRF check: the ``_mitmproxy_xsrf`` cookie
must equal the ``X-XSRFToken`` header (a version-1 token is the raw value, so any shared value
passes).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import REAL

from .conftest import LOOPBACK, GuardProxy, Upstream, free_port, listening, unique

pytestmark = pytest.mark.e2e

PASSWORD = "kanta-e2e-web-password"
WEAK = '[rules]\n"hetu.real" = "warn"\n'


def web_guard(workdir: Path, policy_text: str) -> GuardProxy:
    policy = workdir / "policy.toml"
    policy.write_text(policy_text, encoding="utf-8")
    (workdir / "weak.toml").write_text(WEAK, encoding="utf-8")
    web_port = free_port()
    guard = GuardProxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--workers", "0", "--policy", str(policy),
            "--set", f"web_port={web_port}", "--set", f"web_password={PASSWORD}",
        ],
        tool="web",
    )  # fmt: skip
    guard.web_port = web_port  # type: ignore[attr-defined]
    return guard


@pytest.fixture
def started(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GuardProxy]:
    guard = web_guard(tmp_path, request.param)
    guard.start()
    deadline = time.monotonic() + 10
    while not listening(guard.web_port) and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    yield guard
    guard.stop()


def put_policy(guard: GuardProxy, path: Path) -> requests.Response:
    """PUT /options {"kanta_guard_policy": path} on the guard's mitmweb, authenticated."""
    token = uuid.uuid4().hex
    return requests.put(
        f"http://{LOOPBACK}:{guard.web_port}/options",  # type: ignore[attr-defined]
        json={"kanta_guard_policy": str(path)},
        headers={
            "Authorization": f"Bearer {PASSWORD}",
            "X-XSRFToken": token,
            "Cookie": f"_mitmproxy_xsrf={token}",
        },
        timeout=10,
    )


def dirty_status(guard: GuardProxy, upstream: Upstream) -> tuple[int, int]:
    """(status of a GET with a real code in a header, requests the upstream got for it)."""
    path = f"/e2e/runtime/{unique()}"
    client = requests.Session()
    client.trust_env = False
    client.proxies = {"http": guard.url}
    response = client.get(upstream.url(path), headers={"X-Patient-Hetu": REAL}, timeout=10)
    return response.status_code, len(upstream.got(path))


@pytest.mark.parametrize("started", [""], indirect=True, ids=["default-policy"])
def test_weakening_policy_at_runtime_refused(started: GuardProxy, upstream: Upstream) -> None:
    """Without ``allow_weakening`` a PUT of a weaker policy is refused and dirty stays blocked."""
    assert dirty_status(started, upstream) == (403, 0)
    response = put_policy(started, started.workdir / "weak.toml")
    assert response.status_code >= 400, response.text[:200]
    assert dirty_status(started, upstream) == (403, 0)


@pytest.mark.parametrize(
    "started", ["[runtime]\nallow_weakening = true\n"], indirect=True, ids=["allow-weakening"]
)
def test_weakening_policy_allowed_is_logged(started: GuardProxy, upstream: Upstream) -> None:
    """With ``allow_weakening = true`` the PUT is accepted and logged as a policy event."""
    deadline = time.monotonic() + 5
    # The start record is written once the proxy runs, which may be just after it listens.
    while not started.events("policy") and time.monotonic() < deadline:
        time.sleep(0.05)
    before = len(started.events("policy"))
    assert before >= 1, "no policy record at start"
    response = put_policy(started, started.workdir / "weak.toml")
    assert response.status_code == 200, response.text[:200]
    deadline = time.monotonic() + 5
    while len(started.events("policy")) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    events = started.events("policy")
    assert len(events) == before + 1
    assert events[-1]["source"] == str(started.workdir / "weak.toml")
    assert str(events[-1]["digest"]).startswith("sha256:")
    assert dirty_status(started, upstream)[0] == 200
