"""The demo as one session: the fake endpoint, the guard in front of it, the script, then stop.

The guard is the real one, started as a tester starts it (``python -m kanta_guard web``, or
``run`` without the dashboard) in a process group of its own, on a free loopback port, with
everything it writes in the demo's work folder: its CA (``confdir``), its blocked-request log,
its hash key, its output, and the demo's policy and registry of test identities
(:func:`~kanta_guard.demo.script.registry_text`). The policy is the embedded default with that
registry (so an unregistered name or phone blocks, not only warns) and the fake endpoint as the
only upstream. On the way out the whole process group is stopped (SIGTERM, then SIGKILL for
anything left after a grace period), so no scan worker outlives the demo; on Linux the guard
also gets SIGTERM from the kernel if the demo itself is killed outright (``PR_SET_PDEATHSIG``).

Plain HTTP through the explicit proxy: the system under test needs no CA, and mitmweb shows the
same flows it would show for HTTPS.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from ..idcode import mask_text
from .endpoint import FakeKanta
from .script import Outcome, messages, registry_text, send, summary

__all__ = ["DemoError", "DemoOptions", "Guard", "policy_text", "run_demo"]

LOOPBACK = "127.0.0.1"
#: Seconds the guard may take to listen (the first start creates its CA).
START_TIMEOUT = 60.0
#: Seconds the guard's process group gets after SIGTERM before SIGKILL.
STOP_GRACE = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: The host the guard answers itself with its status (kanta_guard.proxy.status).
_STATUS_URL = "http://kanta-guard.status/"


class DemoError(Exception):
    """The demo could not start (the message is one line, masked)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How to run the demo (the ``kanta-guard demo`` flags)."""

    listen_port: int = 0  # 0: a free port
    web_port: int = 0  # 0: a free port
    duration: float | None = None  # seconds; None: until interrupted (or once)
    once: bool = False  # send the script once and stop
    web: bool = True  # mitmweb; False: mitmdump
    interval: float = 0.75  # seconds between two messages
    workdir: Path | None = None  # None: a temporary folder, removed at the end


def policy_text(folder: Path, endpoint_port: int) -> str:
    """The demo's policy: the embedded default, with the registry beside it, the hash key in
    ``folder`` and the fake endpoint as the only upstream."""
    return f"""\
# kanta-guard demo policy: the embedded default, plus the demo's registry of test identities
# (names, phones and addresses not in it block) and the fake Kanta endpoint as the only upstream.

[registry]
file = "test-identities.toml"

[log]
path = {json.dumps(str(folder / "blocked.jsonl"))}
hash_key_file = {json.dumps(str(folder / "hash.key"))}

[upstream]
hosts = ["{LOOPBACK}:{endpoint_port}"]
"""


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


class Guard:
    """``kanta-guard web`` (or ``run``) as a child process in a process group of its own."""

    def __init__(self, folder: Path, endpoint_port: int, options: DemoOptions) -> None:
        self.folder = folder
        self.web = options.web
        self.port = options.listen_port or _free_port()
        self.web_port = (options.web_port or _free_port()) if options.web else 0
        self.token = secrets.token_hex(16)
        self.policy = folder / "policy.toml"
        self.log = folder / "blocked.jsonl"
        self.output = folder / "guard.out"
        self.confdir = folder / "confdir"
        (folder / "test-identities.toml").write_text(registry_text(), "utf-8")
        self.policy.write_text(policy_text(folder, endpoint_port), "utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def proxy(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def dashboard(self) -> str:
        """mitmweb's URL with its access token (mitmweb 12 asks for one)."""
        return f"http://{LOOPBACK}:{self.web_port}/?token={self.token}"

    def command(self) -> list[str]:
        command = [
            sys.executable, "-m", "kanta_guard", "web" if self.web else "run",
            "--listen-host", LOOPBACK,
            "--listen-port", str(self.port),
            "--confdir", str(self.confdir),
            "--policy", str(self.policy),
            "--log", str(self.log),
            "--workers", "1",
        ]  # fmt: skip
        if self.web:
            command += ["--web-port", str(self.web_port), "--set", f"web_password={self.token}"]
        return command

    def spawn(self) -> None:
        """Start the guard's process (without waiting for it to listen).

        Call it before the demo starts any thread: on Linux the child asks the kernel for
        SIGTERM when the demo dies (``PR_SET_PDEATHSIG``), so a demo that is killed outright
        (SIGKILL: no clean-up of its own) still takes the guard with it; the call happens
        between fork and exec, where only a single-threaded parent is safe.
        """
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(), cwd=self.folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent(),
            )  # fmt: skip

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the guard listens (and its dashboard does, and it says it is ready)."""
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        ports = [self.port, self.web_port] if self.web else [self.port]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(
                    f"the guard exited with status {self.process.returncode} before it listened:"
                    f"\n{self.tail()}"
                )
            if all(_listening(p) for p in ports) and self._ready():
                return
            time.sleep(0.1)
        raise DemoError(f"the guard did not start within {timeout:.0f} s:\n{self.tail()}")

    def _ready(self) -> bool:
        """Whether the guard's status page says it is ready (a page that is no JSON: yes)."""
        try:
            connection = socket.create_connection((LOOPBACK, self.port), timeout=5)
        except OSError:
            return False
        try:
            connection.sendall(
                f"GET {_STATUS_URL} HTTP/1.1\r\nHost: kanta-guard.status\r\n"
                "Accept: application/json\r\nConnection: close\r\n\r\n".encode("ascii")
            )
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
        except OSError:
            return False
        finally:
            connection.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            return False
        try:
            status = json.loads(body)
        except ValueError:
            return True
        return not isinstance(status, dict) or bool(status.get("ready", True))

    def tail(self, lines: int = 15) -> str:
        """The last lines the guard printed (masked)."""
        try:
            text = self.output.read_text("utf-8", "replace")
        except OSError:
            return ""
        return mask_text("\n".join(text.splitlines()[-lines:]))

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM to the guard's process group, SIGKILL to whatever is left after ``grace``
        seconds; returns once the guard is reaped and the group is empty."""
        process = self.process
        if process is None:
            return
        group = process.pid  # start_new_session: the group id is the leader's pid
        _signal_group(group, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(group, signal.SIGKILL)
            process.wait(grace)
        # The leader is gone; a scan worker that did not stop with it is ended here.
        deadline = time.monotonic() + 2
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(group, signal.SIGKILL)


def _die_with_parent() -> Callable[[], None] | None:
    """What the child runs before exec so that it gets SIGTERM when this process dies
    (Linux ``prctl(PR_SET_PDEATHSIG)``); None elsewhere (the demo's own clean-up then stops
    the guard, as it does on every ordinary exit)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the call: nobody would signal
            os._exit(1)

    return set_death_signal


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM ends the demo as Ctrl-C does (in the main thread; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored while the guard is being stopped: a second Ctrl-C must
    not leave it running (in the main thread; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = [(s, signal.signal(s, signal.SIG_IGN)) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        yield
    finally:
        for signum, handler in previous:
            signal.signal(signum, handler)


def run_demo(options: DemoOptions, out: TextIO | None = None) -> int:
    """Run the demo; 0 when every message got the verdict it expects, 1 when one did not, 2
    when the demo could not start."""
    stream = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    temporary = options.workdir is None
    try:
        if options.workdir is None:
            folder = Path(tempfile.mkdtemp(prefix="kanta-guard-demo-"))
        else:
            folder = options.workdir
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        say(f"kanta-guard demo: error: cannot use {options.workdir or 'a temporary folder'}: "
            f"{exc.strerror or exc}")  # fmt: skip
        return 2
    guard: Guard | None = None
    endpoint: FakeKanta | None = None
    try:
        with _interruptible():
            try:
                endpoint = FakeKanta(host=LOOPBACK)  # bound now, served once the guard runs
                guard = Guard(folder, endpoint.port, options)
                tool = "mitmweb" if options.web else "mitmdump"
                say(f"kanta-guard demo: starting the guard ({tool})…")
                guard.spawn()
                endpoint.start()
                guard.wait_ready()
            except DemoError as exc:
                say(f"kanta-guard demo: error: {exc}")
                return 2
            except OSError as exc:  # the work folder's files, the endpoint's socket
                say(f"kanta-guard demo: error: {exc.strerror or exc} ({folder})")
                return 2
            except KeyboardInterrupt:
                say("kanta-guard demo: interrupted while starting")
                return 2
            _banner(say, guard, endpoint, folder, temporary, options)
            outcomes = _loop(say, guard, endpoint, options)
            say(f"kanta-guard demo: {summary(outcomes)}")
            say(f"kanta-guard demo: the fake endpoint received {endpoint.count} requests")
            return 0 if outcomes and all(o.expected for o in outcomes) else 1
    finally:
        if guard is not None:
            with _shielded():
                guard.stop()
        if endpoint is not None:
            endpoint.stop()
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)


def _banner(
    say: Callable[[str], None],
    guard: Guard,
    endpoint: FakeKanta,
    folder: Path,
    temporary: bool,
    options: DemoOptions,
) -> None:
    if options.web:
        say(f"  dashboard (mitmweb): {guard.dashboard}")
    say(f"  proxy:               {guard.proxy}  (explicit HTTP proxy; try: curl -x {guard.proxy} "
        f"{endpoint.url}/fhir/metadata)")  # fmt: skip
    say(f"  fake Kanta endpoint: {endpoint.url}  (SOAP: /soap/…, FHIR: /fhir/…)")
    kept = "removed when the demo stops" if temporary else "kept"
    say(f"  files:               {folder}  ({kept}: blocked.jsonl, guard.out, policy.toml)")
    if options.once:
        until = "the script has run once"
    elif options.duration is not None:
        until = f"{options.duration:g} s have passed"
    else:
        until = "Ctrl-C"
    say(f"  sending a message every {options.interval:g} s until {until}")
    say("")


def _loop(
    say: Callable[[str], None], guard: Guard, endpoint: FakeKanta, options: DemoOptions
) -> list[Outcome]:
    """Send the script (again and again unless ``once``) until the time is up or Ctrl-C."""
    script = messages()
    outcomes: list[Outcome] = []
    proxy = (LOOPBACK, guard.port)
    end = None if options.duration is None else time.monotonic() + options.duration
    round_number = 0
    try:
        while True:
            round_number += 1
            if round_number > 1:
                say(f"--- round {round_number}")
            for number, message in enumerate(script, 1):
                if end is not None and time.monotonic() >= end:
                    return outcomes
                outcome = send(message, proxy, endpoint.url)
                outcomes.append(outcome)
                say(outcome.line(number, len(script)))
                _pause(options.interval, end)
            if options.once:
                return outcomes
    except KeyboardInterrupt:
        say("kanta-guard demo: interrupted, stopping")
        return outcomes


def _pause(seconds: float, end: float | None) -> None:
    if end is not None:
        seconds = min(seconds, max(0.0, end - time.monotonic()))
    time.sleep(seconds)
