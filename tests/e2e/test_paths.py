"""End to end: configuration paths, the log that cannot be written, and the status page.

Each test starts the real proxy (``python -m kanta_guard run``) and proves through a real
client and the recording upstream what the configuration does: an option given as ``--set`` works
like its flag, conflicting spellings and relaying options stop start-up, rewriting addons are
judged after they ran, a log that cannot be written never lets a request through unlogged, and
``http://kanta-guard.status/`` is answered by the proxy itself.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from helpers import REAL, TEST

from .conftest import (
    LOOPBACK,
    GuardProxy,
    StartResult,
    Upstream,
    children,
    marker,
    requests_session,
    start_refused,
)

pytestmark = pytest.mark.e2e

STATUS_URL = "http://kanta-guard.status/"
WARN_POLICY = '[rules]\n"hetu.real" = "warn"\n'


def dirty_get(guard: GuardProxy, upstream: Upstream, path: str) -> requests.Response:
    """A GET carrying a real code in a header."""
    with requests_session(guard) as client:
        return client.get(upstream.url(path), headers={"X-Patient-Hetu": REAL}, timeout=10)


def clean_get(guard: GuardProxy, upstream: Upstream, path: str) -> requests.Response:
    with requests_session(guard) as client:
        return client.get(upstream.url(path), headers={"X-Patient-Hetu": TEST}, timeout=10)


def assert_blocked(response: requests.Response, status: int, rules: str) -> None:
    assert response.status_code == status, response.text[:200]
    assert response.headers.get("X-Kanta-Guard") == "blocked"
    assert response.headers.get("X-Kanta-Guard-Rules") == rules


def new_guard(
    tmp_path: Path, args: list[str], log: Path | None = None, **kwargs: object
) -> GuardProxy:
    return GuardProxy(tmp_path, log or tmp_path / "blocked.jsonl", args, **kwargs)  # type: ignore[arg-type]


# --- 1: options given as --set --------------------------------------------------------------------


@pytest.fixture(scope="module")
def set_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProxy]:
    """A guard configured only through ``--set kanta_guard_*`` (no --policy/--log/--workers)."""
    workdir = tmp_path_factory.mktemp("guard-set")
    policy = workdir / "warn.toml"
    policy.write_text(WARN_POLICY, encoding="utf-8")
    log = workdir / "set-log.jsonl"
    proxy = GuardProxy(
        workdir,
        log,
        [
            "--set", f"kanta_guard_policy={policy}",
            "--set", f"kanta_guard_log={log}",
            "--set", "kanta_guard_workers=1",
        ],
        with_log_flag=False,
    )  # fmt: skip
    proxy.start()
    yield proxy
    proxy.stop()


def test_set_policy_works_like_policy_flag(
    set_guard: GuardProxy, guard: GuardProxy, upstream: Upstream
) -> None:
    """``--set kanta_guard_policy=FILE`` applies FILE: a warn policy lets a dirty request through
    (logged as warn), where the default policy blocks it."""
    path = marker("set-policy")
    response = dirty_get(set_guard, upstream, path)
    assert response.status_code == 200
    assert len(upstream.got(path)) == 1
    records = set_guard.wait_records(lambda r: r.get("path", "").startswith(path))
    assert [r["verdict"] for r in records] == ["warn"]
    assert records[0]["rules"] == ["hetu.real"]
    blocked_path = marker("set-policy-default")
    assert_blocked(dirty_get(guard, upstream, blocked_path), 403, "hetu.real")
    assert upstream.got(blocked_path) == []


def test_set_log_option_writes_that_log(set_guard: GuardProxy, upstream: Upstream) -> None:
    """``--set kanta_guard_log=FILE`` (no --log) makes FILE the blocked-request log."""
    path = marker("set-log")
    dirty_get(set_guard, upstream, path)
    assert set_guard.log.name == "set-log.jsonl"
    assert set_guard.wait_records(lambda r: r.get("path", "").startswith(path))
    assert not (set_guard.workdir / "kanta-guard-blocked.jsonl").exists()


def test_set_workers_option_starts_that_many(set_guard: GuardProxy) -> None:
    """``--set kanta_guard_workers=1`` starts exactly one scan worker process."""
    assert set_guard.process is not None
    deadline = time.monotonic() + 5
    while len(children(set_guard.process.pid)) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(children(set_guard.process.pid)) == 1


#: case: (arguments besides the harness's own ``--log``, the two spellings stderr must name)
CONFLICTS = {
    "policy": (["--policy", "A", "--set", "kanta_guard_policy=B"],
               ("--policy", "kanta_guard_policy")),
    "log": (["--set", "kanta_guard_log=B"], ("--log", "kanta_guard_log")),
    "workers": (["--workers", "1", "--set", "kanta_guard_workers=2"],
                ("--workers", "kanta_guard_workers")),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CONFLICTS))
def test_same_option_twice_with_different_values_refused(
    refused_starts: dict[str, StartResult], case: str
) -> None:
    """An option given as its flag and as ``--set`` with different values stops start-up,
    naming both spellings."""
    result = refused_starts[f"conflict:{case}"]
    assert not result.listened, "the proxy started"
    assert result.returncode not in (None, 0)
    for name in CONFLICTS[case][1]:
        assert name in result.stderr, f"stderr does not name {name}: {result.stderr[-500:]}"


def test_same_option_twice_with_same_value_starts(tmp_path: Path, upstream: Upstream) -> None:
    """The same value given as flag and as ``--set`` is no conflict: the proxy starts and blocks."""
    policy = tmp_path / "default.toml"
    policy.write_text("", encoding="utf-8")
    log = tmp_path / "blocked.jsonl"
    guard = new_guard(
        tmp_path,
        [
            "--policy", str(policy), "--set", f"kanta_guard_policy={policy}",
            "--set", f"kanta_guard_log={log}",
            "--workers", "0", "--set", "kanta_guard_workers=0",
        ],
        log,
    )  # fmt: skip
    guard.start()
    try:
        path = marker("same-twice")
        assert_blocked(dirty_get(guard, upstream, path), 403, "hetu.real")
        assert upstream.got(path) == []
    finally:
        guard.stop()


#: case: (arguments, the option's name as stderr must give it, with - or _)
REFUSED = {
    "ignore-hosts": (["--ignore-hosts", LOOPBACK], "ignore_hosts"),
    "allow-hosts": (["--allow-hosts", "example"], "allow_hosts"),
    "tcp-hosts": (["--tcp-hosts", LOOPBACK], "tcp_hosts"),
    # mitmdump 12.3.1 has no --udp-hosts flag, only the option.
    "udp-hosts-set": (["--set", f"udp_hosts={LOOPBACK}"], "udp_hosts"),
    "rawtcp": (["--set", "rawtcp=true"], "rawtcp"),
    "websocket": (["--set", "websocket=true"], "websocket"),
    "stream-large-bodies": (["--set", "stream_large_bodies=1k"], "stream_large_bodies"),
    "reverse-tcp": (["--mode", "reverse:tcp://127.0.0.1:9"], "mode"),
    "dns": (["--mode", "dns"], "mode"),
}


@pytest.fixture(scope="module")
def refused_starts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StartResult]:
    """Every start-up expected to be refused, tried all at once (each alone takes a second)."""
    guards: dict[str, GuardProxy] = {}
    for case, (args, _) in REFUSED.items():
        workdir = tmp_path_factory.mktemp(f"refused-{case}")
        guards[f"refused:{case}"] = new_guard(workdir, [*args, "--workers", "0"])
    for case, (args, _) in CONFLICTS.items():
        workdir = tmp_path_factory.mktemp(f"conflict-{case}")
        for name in ("A", "B"):
            (workdir / name).write_text("", encoding="utf-8")
        a_path, b_path = str(workdir / "A"), str(workdir / "B")
        args = [a_path if a == "A" else re.sub(r"=B$", f"={b_path}", a) for a in args]
        guards[f"conflict:{case}"] = new_guard(workdir, args)
    # (Four at a time: each start imports mitmproxy, and all of them at once on two cores
    # took longer than the wait for one.)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(guards, pool.map(start_refused, guards.values()), strict=True))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_relaying_option_refused_at_start(
    refused_starts: dict[str, StartResult], case: str
) -> None:
    """An option that would let bytes past the guard unread stops start-up, naming it."""
    result = refused_starts[f"refused:{case}"]
    name = REFUSED[case][1]
    assert not result.listened, "the proxy started"
    assert result.returncode not in (None, 0)
    assert "kanta-guard" in result.stderr, result.stderr[-500:]
    spellings = (name, name.replace("_", "-"))
    assert any(s in result.stderr for s in spellings), result.stderr[-500:]


# --- 1: rewriting addons run before the guard judges ----------------------------------------------


@pytest.fixture(scope="module")
def modify_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProxy]:
    """A guard with mitmproxy's rewriting addons, each putting a real code into matching flows."""
    workdir = tmp_path_factory.mktemp("guard-modify")
    proxy = GuardProxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--workers", "0",
            "--modify-headers", f"|~q & ~u hdr-inject|X-Injected|{REAL}",
            "--modify-body", f"|~q & ~u body-inject|PLACEHOLDER|{REAL}",
            "--map-remote", f"|~q & ~u map-inject|/map-inject/|/mapped/{REAL}/",
        ],
    )  # fmt: skip
    proxy.start()
    yield proxy
    proxy.stop()


def test_modify_headers_result_is_judged(modify_guard: GuardProxy, upstream: Upstream) -> None:
    """A header that --modify-headers adds with a real code blocks the request (hetu.real)."""
    path = marker("hdr-inject")
    response = clean_get(modify_guard, upstream, path)
    assert upstream.got(path.rsplit("/", 1)[1]) == []
    assert_blocked(response, 403, "hetu.real")


def test_modify_body_result_is_judged(modify_guard: GuardProxy, upstream: Upstream) -> None:
    """A body that --modify-body rewrites to hold a real code is blocked (hetu.real)."""
    path = marker("body-inject")
    with requests_session(modify_guard) as client:
        response = client.post(
            upstream.url(path),
            data=b"patient=PLACEHOLDER",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
    assert upstream.got(path.rsplit("/", 1)[1]) == []
    assert_blocked(response, 403, "hetu.real")


def test_map_remote_result_is_judged(modify_guard: GuardProxy, upstream: Upstream) -> None:
    """A URL that --map-remote rewrites to hold a real code in its path is blocked."""
    path = marker("map-inject")
    response = clean_get(modify_guard, upstream, path)
    assert upstream.got(path.rsplit("/", 1)[1]) == []
    assert_blocked(response, 403, "hetu.real")


# --- 6: a log that cannot be written --------------------------------------------------------------


@pytest.fixture(scope="module")
def devfull_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProxy]:
    """A guard whose blocked-request log is /dev/full (every write fails with ENOSPC)."""
    workdir = tmp_path_factory.mktemp("guard-devfull")
    proxy = GuardProxy(workdir, Path("/dev/full"), ["--workers", "0"])
    proxy.start()
    yield proxy
    proxy.stop()


def test_unwritable_log_dirty_still_blocked(devfull_guard: GuardProxy, upstream: Upstream) -> None:
    """With a log that cannot be written a dirty request is still blocked, unsent, and stderr
    says the log cannot be written. (Its answer is 503 rather than 403 when the guard already
    knew, from the policy record written at start, that the log cannot be written.)"""
    path = marker("devfull-dirty")
    response = dirty_get(devfull_guard, upstream, path)
    assert upstream.got(path) == []
    assert response.status_code in (403, 503)
    assert response.headers.get("X-Kanta-Guard") == "blocked"
    deadline = time.monotonic() + 5
    while "/dev/full" not in devfull_guard.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "/dev/full" in devfull_guard.stderr(), "stderr does not report the log"


def test_unwritable_log_then_clean_gets_503(devfull_guard: GuardProxy, upstream: Upstream) -> None:
    """After the log failed, a clean request is answered 503 guard.unavailable, unsent."""
    dirty_get(devfull_guard, upstream, marker("devfull-first"))
    path = marker("devfull-clean")
    response = clean_get(devfull_guard, upstream, path)
    assert upstream.got(path) == []
    assert_blocked(response, 503, "guard.unavailable")


def test_status_after_log_failure_not_ready(devfull_guard: GuardProxy, upstream: Upstream) -> None:
    """After the log failed, the status page says not ready and the log not writable."""
    dirty_get(devfull_guard, upstream, marker("devfull-status"))
    with requests_session(devfull_guard) as client:
        response = client.get(STATUS_URL, timeout=10)
    assert response.status_code == 200
    status = response.json()
    assert status["ready"] is False
    assert status["log"]["writable"] is False


def test_unwritable_log_not_required_lets_clean_pass(tmp_path: Path, upstream: Upstream) -> None:
    """With ``[log] required = false`` a failing log still blocks dirty requests and lets clean
    ones through, and stderr still reports it."""
    policy = tmp_path / "optional-log.toml"
    policy.write_text("[log]\nrequired = false\n", encoding="utf-8")
    guard = new_guard(tmp_path, ["--workers", "0", "--policy", str(policy)], Path("/dev/full"))
    guard.start()
    try:
        dirty, clean = marker("optional-dirty"), marker("optional-clean")
        assert_blocked(dirty_get(guard, upstream, dirty), 403, "hetu.real")
        assert upstream.got(dirty) == []
        assert clean_get(guard, upstream, clean).status_code == 200
        assert len(upstream.got(clean)) == 1
        assert "/dev/full" in guard.stderr()
    finally:
        guard.stop()


def test_log_rotation_failure_still_blocks(tmp_path: Path, upstream: Upstream) -> None:
    """When rotating the log fails (``.1`` is a non-empty directory), dirty requests are still
    blocked, and stderr reports the rotation failure."""
    policy = tmp_path / "small-log.toml"
    # One backup: the log cannot become blocked.jsonl.1 (with more, the directory would simply
    # be shifted to .2 and the rotation succeed).
    policy.write_text("[log]\nmax_bytes = 300\nbackups = 1\n", encoding="utf-8")
    log = tmp_path / "blocked.jsonl"
    backup = tmp_path / "blocked.jsonl.1"
    backup.mkdir()
    (backup / "keep").write_text("not empty", encoding="utf-8")
    guard = new_guard(tmp_path, ["--workers", "0", "--policy", str(policy)], log)
    guard.start()
    try:
        paths = [marker(f"rotate-{i}") for i in range(4)]
        responses = [dirty_get(guard, upstream, path) for path in paths]
        for path in paths:
            assert upstream.got(path) == [], "a dirty request reached the upstream"
        assert [r.status_code for r in responses] == [403] * len(paths)
        assert re.search(r"rotat", guard.stderr(), re.IGNORECASE), guard.stderr()[-500:]
    finally:
        guard.stop()


# --- 7: the status page ---------------------------------------------------------------------------


def test_status_page_answered_by_proxy(
    guard: GuardProxy, upstream: Upstream, tls_upstream: Upstream
) -> None:
    """``GET http://kanta-guard.status/`` is answered by the proxy itself with its readiness,
    policy and log."""
    before = (len(upstream.received), len(tls_upstream.received))
    with requests_session(guard) as client:
        response = client.get(STATUS_URL, timeout=10)
    assert (len(upstream.received), len(tls_upstream.received)) == before
    assert response.status_code == 200, response.text[:200]
    status = response.json()
    assert status["ready"] is True
    assert status["policy"]["source"]
    assert re.fullmatch(r"sha256:\S+", status["policy"]["digest"])
    assert status["log"]["path"] == str(guard.log)
    assert status["log"]["writable"] is True
    assert REAL not in json.dumps(status)
