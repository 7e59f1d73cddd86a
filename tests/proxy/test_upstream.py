"""Tests for kanta_guard.proxy.upstream: the allowed upstream hosts, in taddons with tflow flows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REAL, identity_policy_text
from mitmproxy import connection, http
from mitmproxy.addons import proxyserver
from mitmproxy.proxy import context as proxy_context
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import TlsData

from kanta_guard.eventlog import read_records
from kanta_guard.proxy.connections import ConnectionGuard
from kanta_guard.proxy.flows import MARK_BLOCKED, MARK_WARNED
from kanta_guard.proxy.guard import HttpGuard
from kanta_guard.proxy.redact import REDACTED_HEADER
from kanta_guard.proxy.state import GuardState
from kanta_guard.proxy.status import Status
from kanta_guard.proxy.upstream import UpstreamGuard, request_names

RULE = "upstream.not-allowed"


class Guarded:
    """The destination addon in front of the HTTP guard, as the launcher chains them."""

    def __init__(self, upstream: UpstreamGuard, http_guard: HttpGuard, log: Path) -> None:
        self.upstream, self.http_guard, self.log = upstream, http_guard, log

    def records(self) -> list[dict[str, Any]]:
        return [r for r in read_records(self.log) if "event" not in r] if self.log.exists() else []

    def run(self, f: http.HTTPFlow) -> http.HTTPFlow:
        """requestheaders and request of both addons, in chain order (the body is in by then)."""
        self.upstream.requestheaders(f)
        self.http_guard.requestheaders(f)
        self.upstream.request(f)
        asyncio.run(self.http_guard.request(f))
        return f


def make(tmp_path: Path, sections: str = "", rules: str = "") -> tuple[GuardState, HttpGuard, Path]:
    """The identity-code policy with more ``rules`` lines and ``sections``, and its guard."""
    log = tmp_path / "blocked.jsonl"
    policy = tmp_path / "policy.toml"
    policy.write_text(f"{identity_policy_text()}{rules}\n{sections}", "utf-8")
    state = GuardState()
    settings = {
        "kanta_guard_log": str(log),
        "kanta_guard_workers": 0,
        "kanta_guard_policy": str(policy),
    }
    return state, HttpGuard(state, settings), log


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Guarded]:
    """The destination addon and the HTTP guard in a taddons context (the default hosts)."""
    state, http_guard, log = make(tmp_path)
    upstream = UpstreamGuard(state)
    with taddons.context(
        proxyserver.Proxyserver(), upstream, ConnectionGuard(state), Status(state), http_guard
    ):
        yield Guarded(upstream, http_guard, log)
    http_guard.done()


def flow(url: str, headers: dict[str, str] | None = None, body: bytes = b"") -> http.HTTPFlow:
    """A live flow of a plain client (no TLS, so no SNI) to ``url``."""
    f = tflow.tflow()
    f.client_conn.sni = None
    f.request = http.Request.make("POST" if body else "GET", url, body)
    for name, value in (headers or {}).items():
        f.request.headers[name] = value  # (after the URL, which sets Host itself)
    return f


def rules(f: http.HTTPFlow) -> list[str]:
    assert f.response is not None
    return f.response.headers["X-Kanta-Guard-Rules"].split(",")


@pytest.mark.parametrize(
    "url",
    [
        "https://fhirsandbox.kanta.fi/fhir/Patient",
        "https://x.at.kanta.fi/services",
        "http://localhost:8080/x",
        "http://127.0.0.2/x",
        "http://[::1]:8080/x",
        "http://2130706433/x",  # decimal spelling of 127.0.0.1
    ],
)
def test_allowed_hosts_pass(guarded: Guarded, url: str) -> None:
    """A request to an allowed host goes on to the HTTP guard, which passes it."""
    f = guarded.run(flow(url))
    assert f.response is None and not f.marked
    assert guarded.records() == []


@pytest.mark.parametrize(
    "url",
    [
        "https://www.kanta.fi/services",  # production
        "https://at.kanta.fi/services",  # the wildcard's own domain
        "http://0x08080808/x",  # a spelling hiding 8.8.8.8
        "http://0.0.0.0:8080/x",
        "http://[::ffff:8.8.8.8]/x",
        "http://evil.example/x",
    ],
)
def test_other_hosts_are_refused_before_the_body(guarded: Guarded, url: str) -> None:
    """Refused at requestheaders: answered 403 upstream.not-allowed, marked and logged once."""
    f = flow(url)
    guarded.upstream.requestheaders(f)
    assert f.response is not None and f.response.status_code == 403
    assert rules(f) == [RULE]
    assert f.marked == MARK_BLOCKED and f.comment.startswith(f"{RULE} · block")
    asyncio.run(guarded.http_guard.request(f))  # skips an answered flow: no second record
    [record] = guarded.records()
    assert record["verdict"] == "block" and record["rules"] == [RULE]
    assert "not among the allowed upstream hosts" in record["findings"][0]["explanation"]


@pytest.mark.parametrize(
    ("headers", "location"),
    [
        ({"Host": "www.kanta.fi"}, "destination:header:host"),  # differs from the target
        ({"Host": "localhost:80@evil.example"}, "destination:header:host"),  # no host[:port]
        ({"Host": "a b"}, "destination:header:host"),
    ],
)
def test_every_host_header_is_a_destination(
    guarded: Guarded, headers: dict[str, str], location: str
) -> None:
    """A Host header that names another host, or no host at all, is refused."""
    f = guarded.run(flow("http://127.0.0.1:8080/x", headers))
    assert rules(f) == [RULE]
    [record] = guarded.records()
    assert record["findings"][0]["location"] == location


def test_a_second_host_header_is_judged(guarded: Guarded) -> None:
    """Two Host headers: a receiver may take either, so both must be allowed."""
    f = flow("http://127.0.0.1:8080/x")
    f.request.headers.add("Host", "127.0.0.1:8080")
    f.request.headers.add("Host", "prod.kanta.fi")
    guarded.run(f)
    assert rules(f) == [RULE]


def test_http2_authority_is_a_destination(guarded: Guarded) -> None:
    """HTTP/2's :authority is judged like a Host header."""
    f = flow("https://127.0.0.1:8443/x")
    f.request.http_version = "HTTP/2.0"
    f.request.authority = "www.kanta.fi:443"
    guarded.run(f)
    assert rules(f) == [RULE]


def test_the_clients_sni_is_a_destination(guarded: Guarded) -> None:
    """The SNI the client sent goes upstream with the request: it must be allowed too."""
    f = flow("https://127.0.0.1:8443/x")
    f.client_conn.sni = "www.kanta.fi"
    guarded.run(f)
    assert rules(f) == [RULE]
    f = flow("https://127.0.0.1:8443/x")
    f.client_conn.sni = "localhost"
    assert guarded.run(f).response is None


def test_a_host_with_a_code_names_both_rules_and_never_shows_it(guarded: Guarded) -> None:
    """A host carrying an identity code is refused as a destination and as hetu.real, masked."""
    f = guarded.run(flow(f"http://{REAL}.kanta.test/x"))
    assert set(rules(f)) == {"hetu.real", RULE}
    assert f.response is not None and REAL.encode() not in f.response.content
    assert REAL not in guarded.log.read_text("utf-8")
    assert REAL not in json.dumps(f.metadata["kanta_guard"])
    assert REAL not in f.request.pretty_url  # redacted in mitmweb


def test_the_unjudged_body_is_withheld_from_mitmweb(guarded: Guarded) -> None:
    """A refused request's body was never scanned: mitmweb keeps none of it."""
    f = guarded.run(flow("http://evil.example/x", {"Content-Type": "text/plain"}, b"anything"))
    assert rules(f) == [RULE]
    assert f.request.content == b""
    assert REDACTED_HEADER in f.request.headers


def test_a_host_changed_after_requestheaders_is_judged_as_it_leaves(guarded: Guarded) -> None:
    """map_remote and scripts change requests in the request hook: judged again there."""
    f = flow("http://localhost:8080/x")
    guarded.upstream.requestheaders(f)
    assert f.response is None
    f.request.host = "www.kanta.fi"  # what map_remote would do
    guarded.upstream.request(f)
    asyncio.run(guarded.http_guard.request(f))
    assert rules(f) == [RULE]
    assert len(guarded.records()) == 1


def test_connect_to_another_host_is_answered(guarded: Guarded) -> None:
    """A CONNECT to a host not allowed is answered 403 before the tunnel (or any connection)."""
    f = tflow.tflow()
    f.client_conn.sni = None
    f.request = http.Request.make("CONNECT", "http://www.kanta.fi:443/")
    f.request.authority = "www.kanta.fi:443"
    f.request.path = ""
    guarded.upstream.http_connect(f)
    assert f.response is not None and f.response.status_code == 403
    guarded.http_guard.http_connect(f)  # skips it
    [record] = guarded.records()
    assert record["method"] == "CONNECT" and record["rules"] == [RULE]
    allowed = tflow.tflow()
    allowed.request = http.Request.make("CONNECT", "http://localhost:443/")
    guarded.upstream.http_connect(allowed)
    assert allowed.response is None


def test_the_status_page_is_no_destination(guarded: Guarded) -> None:
    """kanta-guard.status is answered by the proxy itself: not refused as a destination."""
    f = flow("http://kanta-guard.status/")
    guarded.upstream.requestheaders(f)
    assert f.response is None


def test_names_of_a_request() -> None:
    """request_names lists the target, :authority, every Host header and the SNI."""
    f = flow("http://127.0.0.1:8080/x", {"Host": "localhost:8080"})
    f.client_conn.sni = "localhost"
    names, unreadable = request_names(f)
    assert names == [
        ("destination:host", "127.0.0.1", 8080),
        ("destination:header:host", "localhost", 8080),
        ("destination:sni", "localhost", 8080),
    ]
    assert unreadable == []


def test_warn_forwards_with_a_record_and_off_does_nothing(tmp_path: Path) -> None:
    """With the rule at warn the request goes on, marked and logged once; at off it is not
    judged."""
    for action, marked in (("warn", MARK_WARNED), ("off", "")):
        base = tmp_path / action
        base.mkdir()
        state, http_guard, log = make(base, rules=f'"upstream.not-allowed" = "{action}"')
        upstream = UpstreamGuard(state)
        with taddons.context(proxyserver.Proxyserver(), upstream, http_guard):
            f = flow("http://evil.example/x")
            upstream.requestheaders(f)
            upstream.request(f)  # a warning waits for the request as it leaves
            assert f.response is None
            assert f.marked == marked
            written = [r for r in read_records(log) if "event" not in r] if log.exists() else []
            assert [r["verdict"] for r in written] == (["warn"] if action == "warn" else [])
        http_guard.done()


def test_policy_hosts_replace_the_default(tmp_path: Path) -> None:
    """A policy listing only localhost refuses 127.0.0.1 (the e2e tests' way to a refused,
    yet loopback, host)."""
    state, http_guard, _ = make(tmp_path, '[upstream]\nhosts = ["localhost"]\n')
    upstream = UpstreamGuard(state)
    with taddons.context(proxyserver.Proxyserver(), upstream, http_guard):
        f = flow("http://127.0.0.1:8080/x")
        upstream.requestheaders(f)
        assert f.response is not None
        g = flow("http://localhost:8080/x")
        upstream.requestheaders(g)
        assert g.response is None
    http_guard.done()


# -- connections: the safety net -------------------------------------------------------------


def server_data(host: str, port: int, sni: str | None = None, mode: str = "regular") -> Any:
    client = tflow.tclient_conn()
    client.proxy_mode = ProxyMode.parse(mode)
    server = connection.Server(address=(host, port))
    server.sni = sni
    return ServerConnectionHookData(server=server, client=client)


@pytest.mark.parametrize(
    ("host", "sni", "refused"),
    [
        ("127.0.0.1", None, False),
        ("localhost", "localhost", False),
        ("www.kanta.fi", None, True),
        ("127.0.0.1", "www.kanta.fi", True),  # the SNI names another host
        ("0x08080808", None, True),
    ],
)
def test_server_connect_refuses_what_is_not_allowed(
    guarded: Guarded, host: str, sni: str | None, refused: bool
) -> None:
    """No server connection opens to a host not allowed, however it came about; a record."""
    data = server_data(host, 443, sni)
    guarded.upstream.server_connect(data)
    assert bool(data.server.error) is refused
    if refused:
        assert data.server.error.startswith("kanta-guard refused to connect: ")
        [record] = guarded.records()
        assert record["method"] == "" and record["rules"] == [RULE]


def test_server_connect_with_a_code_in_the_name(guarded: Guarded) -> None:
    """A refused server name holding a code: the record names hetu.real too, masked."""
    data = server_data(f"{REAL}.kanta.test", 443)
    guarded.upstream.server_connect(data)
    assert data.server.error is not None and REAL not in data.server.error
    [record] = guarded.records()
    assert set(record["rules"]) == {"hetu.real", RULE}
    assert REAL not in guarded.log.read_text("utf-8")


def test_the_upstream_proxy_is_a_hop_not_a_destination(guarded: Guarded) -> None:
    """In upstream mode the configured proxy is not judged; any other server is."""
    data = server_data("proxy.corp.example", 3128, mode="upstream:http://proxy.corp.example:3128")
    guarded.upstream.server_connect(data)
    assert data.server.error is None
    other = server_data("www.kanta.fi", 443, mode="upstream:http://proxy.corp.example:3128")
    guarded.upstream.server_connect(other)
    assert other.server.error is not None


def tls_data(host: str, sni: str | None, mode: str = "regular") -> TlsData:
    data = server_data(host, 443, sni, mode)
    ctx = proxy_context.Context(data.client, taddons_options())
    ctx.server = data.server
    tls = TlsData(data.server, ctx)
    tls.ssl_conn = object()  # type: ignore[assignment]  # what tlsconfig would have set
    return tls


def taddons_options() -> Any:
    from mitmproxy import options

    return options.Options()


@pytest.mark.parametrize(
    ("host", "sni", "refused"),
    [
        ("127.0.0.1", None, False),
        ("127.0.0.1", "localhost", False),
        ("127.0.0.1", "www.kanta.fi", True),
        ("www.kanta.fi", "www.kanta.fi", True),
    ],
)
def test_tls_to_a_name_not_allowed_gets_no_context(
    guarded: Guarded, host: str, sni: str | None, refused: bool
) -> None:
    """tls_start_server: no ClientHello to an SNI (or address) not allowed."""
    data = tls_data(host, sni)
    guarded.upstream.tls_start_server(data)
    assert (data.ssl_conn is None) is refused
    if refused:
        assert data.conn.error is not None and data.conn.error.startswith("kanta-guard refused")


def test_unconfigured_guard_leaves_connections_to_the_connection_guard(tmp_path: Path) -> None:
    """Without a policy the destination addon decides nothing (the guard refuses all anyway)."""
    upstream = UpstreamGuard(GuardState())
    with taddons.context(upstream):
        f = flow("http://evil.example/x")
        upstream.requestheaders(f)
        assert f.response is None
        data = server_data("www.kanta.fi", 443)
        upstream.server_connect(data)
        assert data.server.error is None


def test_an_error_inside_a_hook_fails_closed(
    guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mitmproxy only logs an addon's exception: these hooks refuse instead of letting go."""

    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("kanta_guard.proxy.upstream.request_names", broken)
    f = flow("http://localhost:8080/x")
    guarded.upstream.requestheaders(f)
    assert rules(f) == ["unscannable"]
    monkeypatch.setattr(guarded.upstream, "_refused", broken)
    data = server_data("localhost", 443)
    guarded.upstream.server_connect(data)
    assert data.server.error is not None and "internal error" in data.server.error
    tls = tls_data("localhost", "localhost")
    guarded.upstream.tls_start_server(tls)
    assert tls.ssl_conn is None
