"""End to end: bytes the guard does not read as HTTP are never relayed (raw TCP, upgrades).

Through a CONNECT tunnel (plain and inside TLS), to a server that speaks first, and through
SOCKS5, a payload that is not a well-formed HTTP request must not reach the raw recording
server: the proxy closes the connection (or answers with an HTTP error) and logs the refusal as
``protocol.refused``. A well-formed request in the same tunnel is still read and scanned. An
upgrade (WebSocket, or an upstream answering 101) never turns into a relay either.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REAL

from .conftest import (
    LOOPBACK,
    UPSTREAM_BODY,
    GuardProxy,
    RawServer,
    Upstream,
    client_tls,
    connect_tunnel,
    marker,
    read_head,
    socks5_connect,
)

pytestmark = pytest.mark.e2e

#: How long a test waits for the proxy to close a refused connection.
OUTCOME_TIMEOUT = 3.0


def payloads(port: int) -> dict[str, bytes]:
    """Plaintext that is not a well-formed HTTP request line, each holding a real code."""
    body = f"hetu={REAL}".encode()
    return {
        # RFC 9112 §2.2 lets a server ignore a leading CRLF: it may be read as HTTP (then it
        # must be scanned and blocked) or refused; either way it must not be relayed.
        "leading-crlf": (
            f"\r\nPOST /e2e/crlf HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body,
        "method-without-space": f"POST/{REAL}\r\nHost: {LOOPBACK}:{port}\r\n\r\n".encode(),
        "random-bytes": b"\x00\x01\x02\x03\x9c kanta " + REAL.encode() + b" \xfe\xff\r\n",
    }


CASES = ("leading-crlf", "method-without-space", "random-bytes")


def outcome(sock: socket.socket, raw: RawServer | RawAfterHead) -> tuple[bytes, bool]:
    """Read what the proxy answers until it closes, or stop early once the raw server got
    payload bytes (a relay), or after ``OUTCOME_TIMEOUT``: (answer, closed)."""
    sock.settimeout(0.1)
    answer = b""
    deadline = time.monotonic() + OUTCOME_TIMEOUT
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError):
            if raw.data():
                return answer, False
            continue
        except OSError:
            return answer, True
        if not chunk:
            return answer, True
        answer += chunk
    return answer, False


def assert_refused(
    guard: GuardProxy,
    raw: RawServer,
    answer: bytes,
    closed: bool,
    since: int,
    rules: tuple[str, ...] = ("protocol.refused",),
) -> None:
    """Nothing reached the raw server; the client was closed or got an HTTP error; a record."""
    time.sleep(0.2)  # anything relayed late would show up here
    received = len(raw.data())
    assert received == 0, "the raw server received bytes"
    assert REAL.encode() not in answer
    errored = answer.startswith(b"HTTP/1.1 4") or answer.startswith(b"HTTP/1.1 5")
    assert closed or errored, f"connection left open, answer {answer[:80]!r}"
    found = guard.wait_records(lambda r: set(r["rules"]) & set(rules), since)
    assert found, f"no log record with {rules} for the refused connection"


def established(head: bytes) -> None:
    assert head.split(b"\r\n", 1)[0].split()[1:2] == [b"200"], head


# --- through CONNECT, plaintext -------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_connect_tunnel_odd_plaintext_not_relayed(
    guard: GuardProxy, raw_server: RawServer, case: str
) -> None:
    """Plaintext in a CONNECT tunnel that is not a well-formed request never reaches the server."""
    since = len(guard.blocked())
    sock, head = connect_tunnel(guard, raw_server.port)
    with sock:
        established(head)
        sock.sendall(payloads(raw_server.port)[case])
        answer, closed = outcome(sock, raw_server)
    rules = ("protocol.refused", "hetu.real") if case == "leading-crlf" else ("protocol.refused",)
    assert_refused(guard, raw_server, answer, closed, since, rules)


def test_connect_tunnel_wellformed_request_scanned(guard: GuardProxy, upstream: Upstream) -> None:
    """A well-formed request in a CONNECT tunnel is still read: clean arrives, dirty is blocked."""
    clean_path, dirty_path = marker("tunnel-clean"), marker("tunnel-dirty")
    host = f"{LOOPBACK}:{upstream.port}"
    sock, head = connect_tunnel(guard, upstream.port)
    with sock:
        established(head)
        sock.sendall(f"GET {clean_path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        clean_head = read_head(sock)
        sock.recv(len(UPSTREAM_BODY))
        sock.sendall(f"GET {dirty_path}?hetu={REAL} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        dirty_head = read_head(sock)
    assert clean_head.startswith(b"HTTP/1.1 200"), clean_head
    assert len(upstream.got(clean_path)) == 1
    assert dirty_head.startswith(b"HTTP/1.1 403"), dirty_head
    assert b"x-kanta-guard: blocked" in dirty_head.lower()
    assert upstream.got(dirty_path) == []


# --- through CONNECT, inside TLS ------------------------------------------------------------------


@pytest.fixture
def tls_raw_server(upstream_cert: tuple[Path, Path]) -> Iterator[RawServer]:
    """A recording TCP server speaking TLS (the HTTPS upstream's certificate), never HTTP."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*upstream_cert)
    with RawServer(tls=context) as server:
        yield server


@pytest.mark.parametrize("case", CASES)
def test_connect_tls_odd_plaintext_not_relayed(
    guard: GuardProxy, tls_raw_server: RawServer, case: str
) -> None:
    """Inside TLS in a CONNECT tunnel (no ALPN), odd plaintext never reaches the TLS server."""
    since = len(guard.blocked())
    sock, head = connect_tunnel(guard, tls_raw_server.port)
    with sock:
        established(head)
        with client_tls(guard).wrap_socket(sock, server_hostname=LOOPBACK) as tls:
            tls.sendall(payloads(tls_raw_server.port)[case])
            answer, closed = outcome(tls, tls_raw_server)
    rules = ("protocol.refused", "hetu.real") if case == "leading-crlf" else ("protocol.refused",)
    assert_refused(guard, tls_raw_server, answer, closed, since, rules)


# --- a server that speaks first -------------------------------------------------------------------


def test_server_speaks_first_not_relayed(guard: GuardProxy) -> None:
    """To an upstream that sends a banner on accept, the client's bytes are never relayed."""
    since = len(guard.blocked())
    with RawServer(banner=b"220 kanta-e2e ESMTP ready\r\n") as raw:
        sock, head = connect_tunnel(guard, raw.port)
        with sock:
            established(head)
            time.sleep(0.3)  # the banner reaches the proxy first
            with contextlib.suppress(OSError):  # closed already: nothing can be relayed
                sock.sendall(f"MAIL FROM:<{REAL}@kanta.test>\r\n".encode())
            answer, closed = outcome(sock, raw)
        answer = answer.replace(b"220 kanta-e2e ESMTP ready\r\n", b"")
        assert_refused(guard, raw, answer, closed, since)


# --- SOCKS5 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def socks_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProxy]:
    """The guard in SOCKS5 mode (no scan workers)."""
    workdir = tmp_path_factory.mktemp("guard-socks5")
    proxy = GuardProxy(workdir, workdir / "blocked.jsonl", ["--mode", "socks5", "--workers", "0"])
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("case", CASES)
def test_socks5_odd_plaintext_not_relayed(
    socks_guard: GuardProxy, raw_server: RawServer, case: str
) -> None:
    """Through SOCKS5, plaintext that is not a well-formed request never reaches the server."""
    since = len(socks_guard.blocked())
    with socks5_connect(socks_guard, raw_server.port) as sock:
        sock.sendall(payloads(raw_server.port)[case])
        answer, closed = outcome(sock, raw_server)
    rules = ("protocol.refused", "hetu.real") if case == "leading-crlf" else ("protocol.refused",)
    assert_refused(socks_guard, raw_server, answer, closed, since, rules)


def test_socks5_wellformed_request_scanned(socks_guard: GuardProxy, upstream: Upstream) -> None:
    """Through SOCKS5 a well-formed request is read: a clean one arrives, a dirty one is blocked."""
    clean_path, dirty_path = marker("socks-clean"), marker("socks-dirty")
    host = f"{LOOPBACK}:{upstream.port}"
    with socks5_connect(socks_guard, upstream.port) as sock:
        sock.sendall(f"GET {clean_path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        clean_head = read_head(sock)
        sock.recv(len(UPSTREAM_BODY))
        dirty = f"GET {dirty_path} HTTP/1.1\r\nHost: {host}\r\nX-Hetu: {REAL}\r\n\r\n"
        sock.sendall(dirty.encode())
        dirty_head = read_head(sock)
    assert clean_head.startswith(b"HTTP/1.1 200"), clean_head
    assert len(upstream.got(clean_path)) == 1
    assert dirty_head.startswith(b"HTTP/1.1 403"), dirty_head
    assert upstream.got(dirty_path) == []


# --- upgrades -------------------------------------------------------------------------------------


def test_websocket_upgrade_refused(guard: GuardProxy, upstream: Upstream) -> None:
    """A WebSocket handshake is answered 403 protocol.refused and never reaches the upstream."""
    import wsproto
    import wsproto.events

    path = marker("websocket")
    host = f"{LOOPBACK}:{upstream.port}"
    handshake = wsproto.WSConnection(wsproto.ConnectionType.CLIENT).send(
        wsproto.events.Request(host=host, target=path)
    )
    # Through the explicit proxy the request line takes the absolute form.
    handshake = handshake.replace(f"GET {path} ".encode(), f"GET http://{host}{path} ".encode(), 1)
    assert handshake.startswith(b"GET http://") and b"upgrade: websocket" in handshake.lower()
    with socket.create_connection((LOOPBACK, guard.port), timeout=10) as sock:
        sock.sendall(handshake)
        head = read_head(sock)
    lines = head.decode("latin-1").lower().split("\r\n")
    assert lines[0].split()[1:2] == ["403"], head
    assert "x-kanta-guard: blocked" in lines
    assert "x-kanta-guard-rules: protocol.refused" in lines
    assert upstream.got(path) == []


SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: kanta-raw\r\n\r\n"


def test_upstream_101_never_becomes_a_relay(guard: GuardProxy) -> None:
    """After an upstream answers 101 to a plain request, the client's bytes never reach it."""
    path = marker("switch")
    with RawServer(reply=SWITCH) as raw:
        with socket.create_connection((LOOPBACK, guard.port), timeout=10) as sock:
            host = f"{LOOPBACK}:{raw.port}"
            sock.sendall(f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = read_head(sock)
            with contextlib.suppress(OSError):
                sock.sendall(f"after the switch: {REAL}\r\n".encode())
            answer, closed = outcome(sock, RawAfterHead(raw))
        time.sleep(0.2)
        relayed = REAL.encode() in raw.data()
        assert not relayed, "the client's bytes were relayed after 101"
        status = head.split(b"\r\n", 1)[0]
        assert closed or not status.startswith(b"HTTP/1.1 101"), (status, answer[:80])


class RawAfterHead:
    """A view of a RawServer whose data() is only what came after the first request head."""

    def __init__(self, raw: RawServer) -> None:
        self.raw = raw

    def data(self) -> bytes:
        return self.raw.data().partition(b"\r\n\r\n")[2]
