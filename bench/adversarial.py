#!/usr/bin/env python3
"""Adversarial inputs: generators of pathological requests, and the scan's worst throughput.

Run from the project root::

    .venv/bin/python bench/adversarial.py                # every generator at 1 MB and 4 MB
    .venv/bin/python bench/adversarial.py --size 8000000 # one size, in bytes
    .venv/bin/python bench/adversarial.py --proxy        # also: other clients' latency through
                                                         # the proxy while one client sends them
                                                         # (8 KB: the proxy's thread; 1 MB: workers)

Each generator builds a request of about ``size`` bytes that once took one of the guard's steps
past linear time (a look-back per match, a scan back per member, a needle per line) or past
its output bounds (thousands of findings). The scan must proceed at >= 5 MB/s on every one
(issue 7); tests/test_linear.py times the same generators at n and 8n and fails on
super-linear growth. Real-range codes are computed here (DVV checksum), never written out.
"""

# ruff: noqa: E501  (the report lines are long by nature)
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kanta_guard import KeyedHasher, Request, Scanner, default_policy  # noqa: E402

_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
TARGET_MB_S = 5.0


def hetu(date: str, sign: str, number: int) -> str:
    """A checksum-valid code (002-899: a real person's range; used only to prove blocking)."""
    return f"{date}{sign}{number:03d}{_CHECK[int(date + f'{number:03d}') % 31]}"


def _repeat(piece: str, size: int) -> str:
    return piece * max(1, size // len(piece))


def _post(body: str | bytes, content_type: str, *headers: tuple[str, str]) -> Request:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return Request("POST", "/x", (("Content-Type", content_type), *headers), data, "kanta.test")


def _many_codes(size: int) -> Request:
    """A text body of distinct real-range codes, one per line (bounded output, needles)."""
    lines, i = [], 0
    while 12 * len(lines) < size:
        day, month, year = 1 + i % 28, 1 + (i // 28) % 12, i // 336 % 100
        lines.append(hetu(f"{day:02d}{month:02d}{year:02d}", "-", 2 + i % 898))
        i += 1
    return _post("\n".join(lines), "text/plain")


def _json_systems_after_array(size: int) -> Request:
    """A clean JSON: a long array, then identifier objects (the scan back per member)."""
    ids = [{"system": "urn:oid:1.2.246.21", "value": "010181-900C"}] * max(1, size // 20_000)
    items = max(1, (size - 60 * len(ids)) // 2)
    doc = '{"a": [' + ",".join(["1"] * items) + '], "identifier": ' + json.dumps(ids) + "}"
    return _post(doc, "application/json")


def _json_nested_systems(size: int) -> Request:
    """Nested objects, each with an identifier member (an object decoded per member)."""
    depth = min(400, max(1, size // 2000))
    pad = "x" * max(1, size // depth - 60)
    inner = '{"system": "urn:oid:1.2.246.21", "value": "010181-900C"}'
    for _ in range(depth):
        inner = f'{{"p": "{pad}", "system": "urn:oid:1.2.246.21", "value": "010181-900C", "c": {inner}}}'
    return _post(inner, "application/fhir+json")


def _short_b64(size: int, sep: str, before: str = "", after: str | None = None) -> str:
    """Distinct short Base64 tokens of clean text (each decodes to printable UTF-8, so each is
    decoded and read: a nested payload apiece, the costliest thing a body of its size can ask
    for since short Base64 is read). Eleven bytes: 16 characters, "=" included (ten made 14
    with "==", shorter than any short token read: until 2026-12-02 this decoded nothing)."""
    import base64

    after = before if after is None else after
    out: list[str] = []
    total = i = 0
    while total < size:
        word = "".join(chr(97 + (i // 26**k) % 26) for k in range(5))  # no digit: no number
        token = base64.b64encode(f"rivi {word}x".encode()).decode()
        piece = f"{before}{token}{after}{sep}"
        out.append(piece)
        total += len(piece)
        i += 1
    return "".join(out).removesuffix(sep)


def _random_b64(size: int, before: str, after: str, sep: str = "") -> str:
    """Distinct Base64 texts of 24 random bytes (a seeded generator: the same input each run),
    each long enough to be decoded whatever it spells: a nested payload apiece, which the
    XML parser locates at its node only when asked (a walk of the tree per text was
    quadratic)."""
    import base64
    import random

    rng = random.Random(7)
    out: list[str] = []
    total = 0
    while total < size:
        piece = f"{before}{base64.b64encode(rng.randbytes(24)).decode()}{after}{sep}"
        out.append(piece)
        total += len(piece)
    return "".join(out).removesuffix(sep)


#: name -> builder of a request of about ``size`` bytes.
GENERATORS: dict[str, Callable[[int], Request]] = {
    "header of OID tag fragments": lambda n: Request(
        "GET", "/x", (("X-Note", _repeat('<a root="1.2.246.21" extension="x" ', n)),)
    ),
    "text of OID tag fragments": lambda n: _post(
        _repeat('<a root="1.2.246.21" extension="x" ', n), "text/plain"
    ),
    "XML of OID tags": lambda n: _post(
        "<r>" + _repeat('<id root="1.2.246.21" extension="010181-900C"/>', n) + "</r>",
        "application/xml",
    ),
    "tag that never closes": lambda n: _post('<a root="1.2.246.21" ' + "b" * n, "text/plain"),
    "one long attribute name": lambda n: _post(
        '<r><a root="1.2.246.21" ' + "b" * n + '="x"/></r>', "application/xml"
    ),
    "JSON systems after a long array": _json_systems_after_array,
    "JSON nested identifier objects": _json_nested_systems,
    "JSON number of many digits": lambda n: _post('{"n": ' + "7" * n + "}", "application/json"),
    "dates and long separator runs": lambda n: _post(
        _repeat("010181" + " -" * 500 + "x", n), "text/plain"
    ),
    "dates glued by spaces": lambda n: _post(_repeat("010181 ", n), "text/plain"),
    "digits": lambda n: _post(_repeat("0123456789", n), "text/plain"),
    "zero-width spaces between digits": lambda n: _post(_repeat("1\u200b", n), "text/plain"),
    "fullwidth test codes": lambda n: _post(
        _repeat("０１０１８１-９００Ｃ ", n), "text/plain; charset=utf-8"
    ),
    "distinct real codes (bounded output)": _many_codes,
    "text of short Base64 tokens": lambda n: _post(_short_b64(n, " "), "text/plain"),
    "JSON array of short Base64 strings": lambda n: _post(
        "[" + _short_b64(n, ", ", '"') + "]", "application/json"
    ),
    "XML of short Base64 texts": lambda n: _post(
        "<r>" + _short_b64(n, "", "<a>", "</a>") + "</r>", "application/xml"
    ),
    "XML of random Base64 texts": lambda n: _post(
        "<r>" + _random_b64(n, "<a>", "</a>") + "</r>", "application/xml"
    ),
    "JSON array of random Base64 strings": lambda n: _post(
        "[" + _random_b64(n, '"', '"', ", ") + "]", "application/json"
    ),
    "text of distinct phone-like numbers": lambda n: _post(
        " ".join(f"puh 040 {i:07d}" for i in range(max(1, n // 16))), "text/plain"
    ),
    "text of distinct phone-like non-numbers": lambda n: _post(
        " ".join(f"(0) {i:08d}" for i in range(max(1, n // 13))), "text/plain"
    ),
    "JSON attachments titled with joined words": lambda n: _post(
        '{"resourceType":"Bundle","entry":['
        + ",".join(
            '{"resource":{"resourceType":"DocumentReference","content":[{"attachment":'
            f'{{"title":"Lahete_Panadol_{i}.pdf"}}}}]}}}}'
            for i in range(max(1, n // 110))
        )
        + "]}",
        "application/fhir+json",
    ),
    "XML attachments titled with joined words": lambda n: _post(
        '<Bundle xmlns="http://hl7.org/fhir">'
        + "".join(
            "<entry><resource><DocumentReference><content><attachment>"
            f'<title value="Lahete_Panadol_{i}.pdf"/></attachment></content>'
            "</DocumentReference></resource></entry>"
            for i in range(max(1, n // 150))
        )
        + "</Bundle>",
        "application/fhir+xml",
    ),
    "CDA narrative table of many rows": lambda n: _post(
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><component><structuredBody><component>'
        "<section><text><table><tbody>"
        + _repeat("<tr><td>Maija</td><td>Panadol</td><td>500 mg</td></tr>", n)
        + "</tbody></table></text></section></component></structuredBody></component>"
        "</ClinicalDocument>",
        "application/xml",
    ),
    "nested tables": lambda n: _post(
        "<html xmlns='http://www.w3.org/1999/xhtml'><body>"
        + "<table><tr><td>Maija<table><tr><td>Anna</td><td>Mäki</td></tr></table></td>" * 100
        + "</tr></table>" * 100
        + _repeat("<p>Maija Testinen</p>", max(0, n - 9000))
        + "</body></html>",
        "application/xhtml+xml",
    ),
    "JSON strings of inline markup": lambda n: _post(
        json.dumps([f'<b>Maija</b> <i>Panadol {i}</i> <a href="x">mg' for i in range(n // 46)]),
        "application/json",
    ),
    "FHIR search form of many names": lambda n: Request(
        "POST",
        "/fhir/Patient/_search",
        (("Content-Type", "application/x-www-form-urlencoded"),),
        "&".join(
            f"family=Testinen{i % 7},Mäki&given=Maija" for i in range(max(1, n // 34))
        ).encode(),
    ),
    "many Content-Type lines": lambda n: Request(
        "POST",
        "/x",
        tuple(("Content-Type", f"text/plain; x={i}") for i in range(50)),
        _repeat("ei tunnuksia ", n).encode(),
    ),
}


def scanner() -> Scanner:
    """A scanner on the embedded default policy with a throwaway key."""
    return Scanner(default_policy(), KeyedHasher(b"adversarial-bench-key-0123456789"))


def time_scan(scan: Scanner, request: Request, repeat: int = 1) -> float:
    """The best of ``repeat`` scans of ``request``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        scan.scan(request)
        best = min(best, time.perf_counter() - start)
    return best


def size_of(request: Request) -> int:
    """The bytes a request carries (body, headers, target)."""
    return (
        len(request.body) + len(request.target) + sum(len(k) + len(v) for k, v in request.headers)
    )


# ---------------------------------------------------------------------------------------------
# Through the proxy: what one client's pathological requests cost the others
# ---------------------------------------------------------------------------------------------


def _raw(request: Request, port: int) -> bytes:
    """The request's bytes through the proxy (absolute-form target to the loopback upstream)."""
    authority = f"127.0.0.1:{port}"
    lines = [f"{request.method} http://{authority}{request.target} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{k}: {v}" for k, v in request.headers]
    lines += [f"Content-Length: {len(request.body)}", "", ""]
    return "\r\n".join(lines).encode("utf-8") + request.body


def _exchange(sock: socket.socket, data: bytes) -> int:
    """Send one request on a keep-alive connection and read its answer; the status."""
    sock.sendall(data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    need = int(match.group(1)) if match else 0
    while len(rest) < need:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(head[9:12])


def bench_proxy(sizes: list[int]) -> dict[str, dict[str, float]]:
    """Start an upstream and ``kanta-guard run`` (default workers); while one client sends each
    generator's requests in a loop, another sends small clean GETs and records their latency."""
    import benchmark

    procs = benchmark.Procs()
    tmp = Path(tempfile.mkdtemp(prefix="kanta-guard-adversarial-"))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["KANTA_GUARD_HASH_KEY"] = "adversarial-bench-key-0123456789"
    env["XDG_STATE_HOME"] = str(tmp / "state")
    results: dict[str, dict[str, float]] = {}
    try:
        up = procs.start(
            [sys.executable, benchmark.__file__, "_upstream"],
            tmp / "up.log",
            env,
            stdout=subprocess.PIPE,
        )
        assert up.stdout is not None
        upstream = int(up.stdout.readline())
        port = benchmark.free_port()
        guard = procs.start(
            [
                str(benchmark.VENV_BIN / "kanta-guard"),
                "run",
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                str(port),
                "--confdir",
                str(tmp / "confdir"),
                "--log",
                str(tmp / "blocked.jsonl"),
                "-q",
                "--set",
                "flow_detail=0",
            ],
            tmp / "guard.log",
            env,
        )
        benchmark.wait_port(port, guard, tmp / "guard.log")
        clean = _raw(Request("GET", "/fhir/Patient?identifier=010181-900C"), upstream)
        cases = {"(no load)": None} | {
            f"{name} ({size:,} B)": _raw(build(size), upstream)
            for name, build in GENERATORS.items()
            for size in sizes
        }
        for name, attack in cases.items():
            stop = threading.Event()
            sent = [0]

            def attacker(
                data: bytes | None = attack, stop: threading.Event = stop, sent: list[int] = sent
            ) -> None:
                if data is None:
                    return
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    while not stop.is_set():
                        try:
                            _exchange(sock, data)
                        except OSError:
                            return
                        sent[0] += 1

            thread = threading.Thread(target=attacker, daemon=True)
            thread.start()
            time.sleep(0.2)
            latencies: list[float] = []
            with socket.create_connection(("127.0.0.1", port)) as sock:
                end = time.perf_counter() + 3.0
                while time.perf_counter() < end:
                    start = time.perf_counter()
                    _exchange(sock, clean)
                    latencies.append(time.perf_counter() - start)
            stop.set()
            thread.join(30)
            latencies.sort()
            results[name] = {
                "p50_ms": latencies[len(latencies) // 2] * 1e3,
                "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
                "max_ms": latencies[-1] * 1e3,
                "attacks": sent[0],
            }
            r = results[name]
            print(
                f"  {name:55} other client p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
                f"  max {r['max_ms']:8.2f} ms  ({sent[0]} pathological requests answered)",
                flush=True,
            )
    finally:
        procs.stop_all()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="input size in bytes")
    parser.add_argument(
        "--proxy", action="store_true", help="also measure other clients' latency through it"
    )
    args = parser.parse_args()
    sizes = args.size or [1_000_000, 4_000_000]
    scan = scanner()
    worst = (float("inf"), "")
    print(
        f"{'generator':40} {'bytes':>10} {'seconds':>8} {'MB/s':>7} verdict  findings (+omitted) answer"
    )
    from kanta_guard.answer import blocked_answer

    for name, build in GENERATORS.items():
        for size in sizes:
            request = build(size)
            seconds = time_scan(scan, request, repeat=2)
            report = scan.scan(request)
            rate = size_of(request) / seconds / 1e6
            answer = len(blocked_answer(report).body) if report.verdict == "block" else 0
            print(
                f"{name:40} {size_of(request):>10,} {seconds:>8.3f} {rate:>7.1f} {report.verdict!s:8} "
                f"{len(report.findings):>4} (+{report.omitted}) {answer:>7,} B"
            )
            worst = min(worst, (rate, f"{name} at {size_of(request):,} B"))
    verdict = "MET" if worst[0] >= TARGET_MB_S else "NOT MET"
    print(f"worst: {worst[0]:.1f} MB/s ({worst[1]}); target >= {TARGET_MB_S} MB/s: {verdict}")
    if args.proxy:
        print("through the proxy (kanta-guard run, default workers), one client attacking:")
        bench_proxy([8_000, 1_000_000])
    return 0 if worst[0] >= TARGET_MB_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
