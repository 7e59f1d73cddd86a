"""End-to-end harness: the real proxy as a subprocess, real upstream servers, all on loopback.

The proxy is started with ``python -m kanta_guard.cli run`` exactly as a tester starts it, with
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
HASH_KEY = "kanta-guard-e2e-test-key-0123456789"
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
UPSTREAM_BODY = b"upstream ok\n"
#: Environment variables that would send a client (or curl) through some other proxy.
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any proxy settings, plus ``extra``."""
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
        return [
            sys.executable, "-m", "kanta_guard.cli", "run",
            "--listen-host", LOOPBACK,
            "--listen-port", str(self.port),
            "--confdir", str(self.confdir),
            "--log", str(self.log),
            *self.args,
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        return clean_env(
            KANTA_GUARD_HASH_KEY=HASH_KEY,
            XDG_STATE_HOME=str(self.workdir / "state"),
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
            found = [r for r in self.records() if r["flow_id"] == flow_id]
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
