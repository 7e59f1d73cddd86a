"""End-to-end harness: the real proxy as a subprocess, real upstream servers, all on loopback.

The proxy is started with ``python -m kanta_guard run`` exactly as a tester starts it, with
its own confdir (its CA), its own blocked-request log, a fixed hash key and a private state
directory. The upstreams are stdlib ``ThreadingHTTPServer``s (one plain, one TLS with a
self-signed certificate made here) that record every request they receive, byte for byte.
Nothing here talks to any host other than 127.0.0.1 / localhost.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import identity_policy_file

from kanta_guard.idcode import mask_text

ROOT = Path(__file__).resolve().parents[2]
HASH_KEY = "kanta-guard-e2e-test-key-0123456789"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
UPSTREAM_BODY = b"upstream ok\n"
#: Environment variables that would send a client (or curl) through some other proxy.
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any proxy settings, plus ``extra``. (The per-user folders,
    ``XDG_*``, are tmp ones already: ``tests/conftest.py`` sets them for the session.)"""
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- upstream -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as the upstream received it."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def _handle(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.record(Received(self.command, self.path, tuple(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(UPSTREAM_BODY)))
        self.send_header("X-Upstream", "e2e")
        self.end_headers()
        self.wfile.write(UPSTREAM_BODY)

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class Upstream(ThreadingHTTPServer):
    """A recording HTTP(S) server on 127.0.0.1, answering every request 200."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = LOOPBACK) -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def got(self, marker: str) -> list[Received]:
        """The requests received whose path contains ``marker``."""
        with self._lock:
            return [r for r in self.received if marker in r.path]

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "upstream-cert.pem", directory / "upstream-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# --- the proxy ------------------------------------------------------------------------------------


@dataclass
class Proxy:
    """One ``kanta-guard run`` subprocess and the files it writes."""

    workdir: Path
    log: Path
    args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def confdir(self) -> Path:
        return self.workdir / "confdir"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ca_cert(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "proxy.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "proxy.stderr"

    def command(self) -> list[str]:
        # The identity-code rules only, unless the test names a policy: a fixture's test
        # names are not what most of these tests are about (tests/e2e/test_personal.py).
        policy: list[str] = []
        if not any(a == "--policy" or "kanta_guard_policy" in a for a in self.args):
            self.workdir.mkdir(parents=True, exist_ok=True)
            policy = ["--policy", str(identity_policy_file(self.workdir))]
        return [
            sys.executable, "-m", "kanta_guard", "run",
            "--listen-host", LOOPBACK,
            "--listen-port", str(self.port),
            "--confdir", str(self.confdir),
            "--log", str(self.log),
            *policy,
            *self.args,
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        return clean_env(
            KANTA_GUARD_HASH_KEY=HASH_KEY,
            XDG_STATE_HOME=str(self.workdir / "state"),
            XDG_DATA_HOME=str(self.workdir / "data"),
            XDG_CONFIG_HOME=str(self.workdir / "config"),
            PYTHONUNBUFFERED="1",
        )

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it (appending to the output files)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                self.command(), cwd=self.workdir, env=self.env(), stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        return self.process

    def start(self) -> Proxy:
        """Start the proxy and wait until it accepts connections; fail with its stderr if not."""
        process = self.spawn()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"proxy exited with {process.returncode} before listening:\n{self.output()}"
                )
            if listening(self.port):
                return self
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"proxy did not listen on port {self.port} in {START_TIMEOUT} s:\n{self.output()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end; harmless when already stopped."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            if path.exists():
                parts.append(path.read_text("utf-8", "replace"))
        return "\n".join(parts)

    def records(self) -> list[dict[str, object]]:
        """The blocked-request log, one dict per line."""
        if not self.log.exists():
            return []
        lines = self.log.read_text("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def record(self, flow_id: str) -> dict[str, object]:
        """The one log record of flow ``flow_id``."""
        deadline = time.monotonic() + 5
        while True:
            # (The log masks its flow ids as any text: a random UUID reads as a code now and
            # then, bc391622-0645-….)
            found = [r for r in self.records() if r.get("flow_id") == mask_text(flow_id)]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(found) == 1, f"expected one record of flow {flow_id}, got {found}"
        return found[0]


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    """The plain-HTTP recording upstream."""
    with Upstream() as server:
        yield server


@pytest.fixture(scope="session")
def upstream_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The HTTPS upstream's self-signed certificate and key."""
    return self_signed_cert(tmp_path_factory.mktemp("upstream-tls"))


@pytest.fixture(scope="session")
def tls_upstream(upstream_cert: tuple[Path, Path]) -> Iterator[Upstream]:
    """The HTTPS recording upstream (certificate for localhost and 127.0.0.1)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*upstream_cert)
    with Upstream(context) as server:
        yield server


@pytest.fixture(scope="session")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, upstream_cert: tuple[Path, Path]
) -> Iterator[Proxy]:
    """The guard in regular (explicit proxy) mode, trusting the HTTPS upstream's certificate."""
    workdir = tmp_path_factory.mktemp("proxy-regular")
    guard = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        # Two scan workers, whatever the machine: requests in flight together go to both.
        ["--workers", "2", "--set", f"ssl_verify_upstream_trusted_ca={upstream_cert[0]}"],
    )
    guard.start()
    yield guard
    guard.stop()


@pytest.fixture(scope="session")
def reverse_proxy(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Proxy]:
    """The guard in reverse mode in front of the plain upstream, scanning on the proxy's own
    thread (no worker processes: the single-core set-up)."""
    workdir = tmp_path_factory.mktemp("proxy-reverse")
    guard = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        ["--mode", f"reverse:{upstream.url('')}", "--workers", "0"],
    )
    guard.start()
    yield guard
    guard.stop()


# --- additions for the path tests (test_paths.py and friends) -------------------------------------
#
# Everything below is opt-in: the fixtures above are unchanged. ``GuardProxy`` is a ``Proxy`` that
# (1) cannot resolve any name but localhost (a ``sitecustomize`` put on the proxy's PYTHONPATH
# makes ``socket.getaddrinfo`` refuse every other name, so a request the proxy wrongly lets
# through to ``<code>.kanta.test`` fails there instead of sending the name to a DNS server),
# (2) can run ``web`` instead of ``run`` and (3) can leave ``--log`` out.

#: Put first on the proxy's PYTHONPATH: only loopback names resolve in the proxy process.
_LOOPBACK_ONLY = '''\
"""e2e safety net: this process resolves localhost and IP literals only, never a DNS name."""
import ipaddress
import socket

_getaddrinfo = socket.getaddrinfo
_ALLOWED = {"localhost", "localhost.", "ip6-localhost"}


def _loopback_only(host, *args, **kwargs):
    name = host.decode("idna") if isinstance(host, bytes) else host
    if name is not None and name.lower() not in _ALLOWED:
        try:
            ipaddress.ip_address(str(name).strip("[]").split("%")[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "e2e: only loopback names resolve") from None
    return _getaddrinfo(host, *args, **kwargs)


def _no_name(name, *args, **kwargs):
    return _loopback_only(name, 0)[0][4][0]


socket.getaddrinfo = _loopback_only
socket.gethostbyname = _no_name
'''


def loopback_only_path(directory: Path) -> Path:
    """A directory holding the loopback-only ``sitecustomize.py`` (created on first use)."""
    directory.mkdir(parents=True, exist_ok=True)
    module = directory / "sitecustomize.py"
    if not module.exists():
        module.write_text(_LOOPBACK_ONLY, encoding="utf-8")
    return directory


@dataclass
class GuardProxy(Proxy):
    """A ``Proxy`` that resolves loopback names only, and can be ``web`` or run without --log."""

    tool: str = "run"
    with_log_flag: bool = True

    def command(self) -> list[str]:
        command = super().command()
        command[3] = self.tool
        if not self.with_log_flag:
            at = command.index("--log")
            del command[at : at + 2]
        return command

    def env(self) -> dict[str, str]:
        env = super().env()
        site = loopback_only_path(self.workdir / "site")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
        return env

    def blocked(self) -> list[dict[str, object]]:
        """The log's request records (not the ``{"event": ...}`` ones)."""
        return [r for r in self.records() if "event" not in r]

    def events(self, kind: str) -> list[dict[str, object]]:
        """The log's ``{"event": kind}`` records."""
        return [r for r in self.records() if r.get("event") == kind]

    def wait_records(
        self, predicate: object, since: int = 0, timeout: float = 5.0
    ) -> list[dict[str, object]]:
        """Request records after the first ``since`` that match ``predicate``, waiting a while."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.blocked()[since:] if predicate(r)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", "replace") if self.stderr_path.exists() else ""


@dataclass(frozen=True)
class StartResult:
    """How a proxy start that is expected to be refused went."""

    returncode: int | None
    listened: bool
    stderr: str
    output: str


def start_refused(guard: Proxy, timeout: float = 90.0) -> StartResult:
    """Spawn ``guard``; wait until it exits or listens (then stop it). Never leaves it running."""
    process = guard.spawn()
    listened = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            # A UDP mode (dns) never accepts TCP: mitmproxy's "listening at" line tells.
            if listening(guard.port) or "listening at" in guard.output():
                listened = True
                break
            time.sleep(0.05)
    finally:
        guard.stop()
        if process.poll() is None:  # pragma: no cover - stop() always ends it
            process.kill()
            process.wait(STOP_TIMEOUT)
    stderr = guard.stderr_path.read_text("utf-8", "replace") if guard.stderr_path.exists() else ""
    return StartResult(None if listened else process.returncode, listened, stderr, guard.output())


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = entry.joinpath("stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


class RawServer:
    """A threaded TCP server on 127.0.0.1 that records every byte of every connection.

    ``banner`` is sent as soon as a connection is accepted (a server that speaks first);
    ``reply`` is sent once the first request head (up to a blank line) has arrived; with ``tls``
    each connection is TLS (the bytes recorded are the plaintext). It never closes a connection
    first, except after ``idle`` seconds of silence.
    """

    def __init__(
        self,
        *,
        banner: bytes = b"",
        reply: bytes = b"",
        tls: ssl.SSLContext | None = None,
        idle: float = 10.0,
    ) -> None:
        self.banner, self.reply, self.tls, self.idle = banner, reply, tls, idle
        self.connections: list[bytearray] = []
        self.accepted = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def data(self) -> bytes:
        """Everything received, all connections together."""
        with self._lock:
            return b"".join(bytes(c) for c in self.connections)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        received = bytearray()
        with self._lock:
            self.accepted += 1
            self.connections.append(received)
        try:
            conn.settimeout(self.idle)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            if self.banner:
                conn.sendall(self.banner)
            replied = not self.reply
            while not self._stop.is_set():
                chunk = conn.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    received.extend(chunk)
                if not replied and b"\r\n\r\n" in received:
                    replied = True
                    conn.sendall(self.reply)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(2)


def recv_all(sock: socket.socket, timeout: float = 3.0, limit: int = 1 << 20) -> tuple[bytes, bool]:
    """Read until the peer closes or ``timeout`` passes: (bytes, whether the peer closed)."""
    sock.settimeout(timeout)
    data = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while len(data) < limit and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(data), True
            data.extend(chunk)
    except TimeoutError:
        return bytes(data), False
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return bytes(data), True
    except OSError:
        return bytes(data), True
    return bytes(data), False


def read_head(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read an HTTP response head (up to the blank line) and return it; b"" if closed first."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            return data
        data += chunk
    return data


def connect_tunnel(proxy: Proxy, port: int, timeout: float = 10.0) -> tuple[socket.socket, bytes]:
    """A socket to ``proxy`` after ``CONNECT 127.0.0.1:port``: (socket, the proxy's answer head)."""
    sock = socket.create_connection((LOOPBACK, proxy.port), timeout=timeout)
    target = f"{LOOPBACK}:{port}"
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    return sock, read_head(sock, timeout)


def client_tls(proxy: Proxy, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A client TLS context trusting only the proxy's CA, offering ``alpn`` (none by default)."""
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def socks5_connect(proxy: Proxy, port: int, timeout: float = 10.0) -> socket.socket:
    """A socket through ``proxy`` in SOCKS5 mode to 127.0.0.1:``port`` (RFC 1928, no auth)."""
    sock = socket.create_connection((LOOPBACK, proxy.port), timeout=timeout)
    try:
        sock.sendall(b"\x05\x01\x00")
        assert _recv_exact(sock, 2) == b"\x05\x00", "SOCKS5: no-auth method refused"
        sock.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(LOOPBACK) + port.to_bytes(2, "big"))
        reply = _recv_exact(sock, 4)
        assert reply[:2] == b"\x05\x00", f"SOCKS5 CONNECT refused: {reply!r}"
        size = {1: 4, 4: 16}.get(reply[3]) or _recv_exact(sock, 1)[0]
        _recv_exact(sock, size + 2)  # the bound address and port
    except BaseException:
        sock.close()
        raise
    return sock


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


@dataclass
class H2Answer:
    """What an HTTP/2 stream got back (status None: reset or closed before a response)."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    reset: bool = False


def h2_request(
    sock: ssl.SSLSocket,
    headers: Sequence[tuple[str, str]],
    body: bytes = b"",
    trailers: Sequence[tuple[str, str]] = (),
    timeout: float = 10.0,
    validate: bool = True,
) -> H2Answer:
    """Send one request on a fresh HTTP/2 connection over ``sock`` and read its answer.

    ``validate=False`` sends header fields as given, even ones RFC 9113 forbids (a careless or
    hostile client's), instead of the h2 library refusing them.
    """
    import h2.config
    import h2.connection
    import h2.events

    config = h2.config.H2Configuration(
        client_side=True,
        validate_outbound_headers=validate,
        normalize_outbound_headers=validate,
    )
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, list(headers), end_stream=not body and not trailers)
    if body:
        conn.send_data(stream, body, end_stream=not trailers)
    if trailers:
        conn.send_headers(stream, list(trailers), end_stream=True)
    sock.sendall(conn.data_to_send())
    answer = H2Answer(None, {}, b"")
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ssl.SSLError, OSError):
            break
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                got = {_text(k): _text(v) for k, v in event.headers}
                answer.status = int(got[":status"])
                answer.headers = got
            elif isinstance(event, h2.events.DataReceived):
                answer.body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, stream)
            elif isinstance(event, h2.events.StreamReset):
                answer.reset = True
                return answer
            elif isinstance(event, h2.events.StreamEnded | h2.events.ConnectionTerminated):
                return answer
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
    return answer


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@pytest.fixture(scope="session")
def guard(
    tmp_path_factory: pytest.TempPathFactory, upstream_cert: tuple[Path, Path]
) -> Iterator[GuardProxy]:
    """The guard in regular mode (one scan worker), loopback names only, trusting the HTTPS
    upstream's certificate: shared by the path tests that need no special options."""
    workdir = tmp_path_factory.mktemp("guard-paths")
    proxy = GuardProxy(
        workdir,
        workdir / "blocked.jsonl",
        ["--workers", "1", "--set", f"ssl_verify_upstream_trusted_ca={upstream_cert[0]}"],
    )
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    """A plain recording TCP server (it never speaks)."""
    with RawServer() as server:
        yield server


#: Hex digits as letters: a random hex string can spell an identity code (its A-F are century
#: signs: ``e030582a9031``), which the guard masks in the log and the test would not find.
_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def unique(length: int = 12) -> str:
    """A random token of letters only (no identity code can be read in it)."""
    return uuid.uuid4().hex[:length].translate(_NO_DIGITS)


def marker(case: str) -> str:
    """A unique path, so a test can ask the upstream about its own requests only."""
    return f"/e2e/{case}/{unique()}"


def requests_session(proxy: Proxy) -> requests.Session:
    """A requests session going through ``proxy`` only (no environment proxies)."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": proxy.url, "https": proxy.url}
    return session
