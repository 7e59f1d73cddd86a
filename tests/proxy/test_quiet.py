"""Tests for kanta_guard.proxy.quiet: mitmproxy's log, error pages and tracebacks stay masked."""

from __future__ import annotations

import html
import importlib
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REAL
from mitmproxy.addons.dumper import Dumper
from mitmproxy.proxy.layers.http import _http1, _http2
from test_pipeline import shows_code

from kanta_guard.proxy import quiet

MITMDUMP = Path(sys.executable).parent / "mitmdump"
_D, _R = REAL[:6].encode(), REAL[7:].encode()
CODE = REAL.encode()
TAB_CODE = _D + b"\t-" + _R


def _restore_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Have ``monkeypatch`` put back everything install() replaces (but the record factory)."""
    for module, attr in quiet.PATCH_TARGETS:
        mod = importlib.import_module(module)
        monkeypatch.setattr(mod, attr, getattr(mod, attr))
    monkeypatch.setattr(Dumper, "echo", Dumper.echo)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """quiet.install() for one test; everything it replaces is put back afterwards."""
    _restore_later(monkeypatch)
    factory = logging.getLogRecordFactory()
    try:
        quiet.install()
        yield
    finally:
        logging.setLogRecordFactory(factory)


def _record(msg: str, args: tuple[object, ...] = (), exc: bool = False) -> logging.LogRecord:
    exc_info = sys.exc_info() if exc else None
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)


# -- records -------------------------------------------------------------------------------------

RECORDS: list[tuple[str, str, tuple[object, ...]]] = [
    ("a code in the arguments", "client %s sent %s", ("127.0.0.1", REAL)),
    ("a bytes repr with a tab", "Bad HTTP request line: %r", (b"GET /" + TAB_CODE + b" HTTP/1.1",)),
    ("a folded header line", "Invalid headers: %r", (b"X-Id: " + _D + b"\r\n\t-" + _R,)),
    ("an f-string", f"Client closed connection: {b'X: ' + TAB_CODE + b'\r\n'!r}", ()),
    ("a dict argument", "%(value)s", ({"value": REAL.replace("-", "%2D")},)),
    ("a bad format string", "%d %s", (REAL,)),
]


@pytest.mark.parametrize(("name", "msg", "args"), RECORDS, ids=[r[0] for r in RECORDS])
def test_mask_record_message(name: str, msg: str, args: tuple[object, ...]) -> None:
    """A record's message, with its arguments filled in, shows no code in any reading."""
    record = _record(msg, args)
    assert shows_code(f"{record.msg} {record.args!r}")
    quiet.mask_record(record)
    assert not shows_code(record.getMessage()), record.getMessage()
    assert record.args == ()


def test_mask_record_folds_the_traceback() -> None:
    """A raw code in an exception's message is masked, and the traceback is in the message."""
    try:
        raise ValueError(f"unexpected data {(b'X-Id: ' + TAB_CODE)!r} and {REAL}")
    except ValueError:
        record = _record("mitmproxy has crashed!", exc=True)
    quiet.mask_record(record)
    assert record.exc_info is None and record.exc_text is None
    text = logging.Formatter().format(record)
    assert "Traceback" in text and "ValueError" in text
    assert not shows_code(text), text


def test_mask_record_folds_the_stack() -> None:
    """Stack information is masked into the message too; no formatter prints it raw."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "x", (), None, sinfo=f"at {REAL}")
    quiet.mask_record(record)
    assert record.stack_info is None and not shows_code(logging.Formatter().format(record))


def test_masked_traceback() -> None:
    """A formatted traceback holds no code, yet names the exception."""
    try:
        raise KeyError(TAB_CODE)
    except KeyError as exc:
        text = quiet.masked_traceback(type(exc), exc, exc.__traceback__)
    assert "KeyError" in text and not shows_code(text)


# -- install -------------------------------------------------------------------------------------


def test_patch_targets_exist() -> None:
    """Every mitmproxy function quiet wraps exists in the installed mitmproxy."""
    for module, attr in quiet.PATCH_TARGETS:
        assert callable(getattr(importlib.import_module(module), attr)), (module, attr)
    assert callable(Dumper.echo)


def test_install_refuses_a_missing_target(installed: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mitmproxy without one of the targets makes install() fail loudly, naming it."""
    monkeypatch.delattr(_http2, "format_error")
    with pytest.raises(RuntimeError, match=r"_http2\.format_error"):
        quiet.install()


def test_install_is_idempotent(installed: None) -> None:
    """A second install() wraps nothing twice and keeps the one record factory."""
    before = (logging.getLogRecordFactory(), _http1.make_error_response, Dumper.echo)
    quiet.install()
    after = (logging.getLogRecordFactory(), _http1.make_error_response, Dumper.echo)
    assert before == after


def test_logged_records_are_masked(installed: None) -> None:
    """Through a real logger and handler, neither the message nor the traceback shows a code."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("kanta_guard.test_quiet")
    logger.addHandler(handler)
    try:
        logger.warning("Unexpected data from server: %r", b"HTTP/1.1 200\r\n" + TAB_CODE)
        try:
            raise RuntimeError(REAL)
        except RuntimeError:
            logger.exception("connection handler has crashed")
    finally:
        logger.removeHandler(handler)
    assert "Traceback" in out.getvalue() and not shows_code(out.getvalue()), out.getvalue()


def test_the_factory_chains_the_previous_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records still come from the factory that was set before install()."""
    made: list[str] = []
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        made.append("previous")
        return previous(*args, **kwargs)

    logging.setLogRecordFactory(factory)
    try:
        with pytest.MonkeyPatch.context() as m:
            _restore_later(m)
            quiet.install()
            record = logging.getLogger("t").makeRecord("t", logging.INFO, "f", 1, REAL, (), None)
    finally:
        logging.setLogRecordFactory(previous)
    assert made == ["previous"] and not shows_code(record.getMessage())


@pytest.mark.parametrize(
    ("module", "name"), quiet.PATCH_TARGETS, ids=[".".join(t) for t in quiet.PATCH_TARGETS]
)
def test_error_pages_are_masked(installed: None, module: str, name: str) -> None:
    """Every layer's error page masks its message (each layer looks format_error up itself)."""
    message = f"Bad HTTP request line: {b'GET /' + TAB_CODE!r}"
    assert shows_code(html.escape(message))  # what the page would show unmasked
    page = getattr(importlib.import_module(module), name)(400, message).decode()
    assert "400" in page and not shows_code(page), page


def _raise(exc: BaseException) -> None:
    raise exc


def test_excepthooks_mask(installed: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Uncaught exceptions in the main thread and in other threads print masked tracebacks."""
    try:
        raise ValueError(TAB_CODE)
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    thread = threading.Thread(target=_raise, args=(KeyError(REAL),), name=REAL)
    thread.start()
    thread.join()
    err = capsys.readouterr().err
    assert "ValueError" in err and "KeyError" in err
    assert not shows_code(err), err


def test_cost_per_record(installed: None) -> None:
    """Masking costs little per record: a typical mitmproxy line well under 100 microseconds."""
    logger = logging.getLogger("kanta_guard.test_quiet.cost")
    logger.propagate = False
    n = 2000
    start = time.perf_counter()
    for i in range(n):
        logger.makeRecord("t", logging.INFO, "f", 1, "[%s] client connect %s", (i, "x"), None)
    per_record = (time.perf_counter() - start) / n
    assert per_record < 100e-6, per_record


# -- the real mitmdump ---------------------------------------------------------------------------

# What mitmproxy echoes: a malformed request line, a header line without a colon, an invalid
# Content-Length (whose flow the dumper prints), each with a real-range code.
BAD_REQUESTS: list[tuple[str, bytes]] = [
    ("request line", b"GET /" + CODE + b" HTTP/1.1 junk\r\n\r\n"),
    ("request line with a tab", b"GET /" + TAB_CODE + b" HTTP/1.1 junk\r\n\r\n"),
    (
        "header without colon",
        b"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n" + CODE + b"\r\n\r\n",
    ),
    (
        "invalid Content-Length",
        b"POST http://127.0.0.1:9/ HTTP/1.1\r\nHost: a\r\nX-Id: "
        + TAB_CODE
        + b"\r\nContent-Length: "
        + CODE
        + b"\r\n\r\n",
    ),
]
# Headers cut off by the client: mitmproxy logs the buffer's repr (a tab as \t).
CUT_OFF = b"GET http://a.test/ HTTP/1.1\r\nX-Id: " + TAB_CODE + b"\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def _run_mitmdump(tmp_path: Path, *, quiet_installed: bool) -> tuple[list[bytes], str]:
    """Start mitmdump on loopback, send every bad request, stop it: (answers, its output)."""
    script = tmp_path / "script.py"
    script.write_text(
        "from kanta_guard.proxy.quiet import install\n\ninstall()\n" if quiet_installed else "\n"
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["HOME"] = str(tmp_path)  # mitmproxy's confdir (~/.mitmproxy) stays in the test's dir
    command = [str(MITMDUMP), "-s", str(script), "--listen-host", "127.0.0.1"]
    command += ["--listen-port", str(port), "--set", "flow_detail=4"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("mitmdump did not start") from None
                time.sleep(0.05)
        answers = [_exchange(port, data) for _, data in BAD_REQUESTS]
        answers.append(_exchange(port, CUT_OFF, half_close=True))
        time.sleep(0.3)  # let the last log lines out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    return answers, output.decode("utf-8", "replace")


@pytest.mark.e2e
def test_mitmdump_echoes_codes_without_quiet(tmp_path: Path) -> None:
    """Without install(), mitmproxy really shows the codes: the test below can fail."""
    answers, output = _run_mitmdump(tmp_path, quiet_installed=False)
    assert b"400 Bad Request" in answers[0]
    assert shows_code(answers[0].decode()) and shows_code(answers[1].decode())
    assert shows_code(output), output


@pytest.mark.e2e
def test_mitmdump_never_shows_a_code_with_quiet(tmp_path: Path) -> None:
    """With install(), neither mitmproxy's 400 pages nor its terminal output show a code."""
    answers, output = _run_mitmdump(tmp_path, quiet_installed=True)
    for (name, _), answer in zip(BAD_REQUESTS, answers, strict=False):
        assert b"400 Bad Request" in answer, name
        assert not shows_code(answer.decode("utf-8", "replace")), (name, answer)
    assert "Bad HTTP request line" in output and "before completing request headers" in output
    assert not shows_code(output), output
