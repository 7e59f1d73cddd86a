"""End to end: the wheel, installed in a fresh virtual environment, runs ``scan``, ``run`` and
``web`` from a folder outside the checkout.

The wheel is built from a copy of the package sources (``pip wheel --no-deps``; without build
isolation when setuptools is importable, which needs no network), installed with ``--no-deps``
into a new venv, and the project's dependencies made visible to it by a ``.pth`` line naming
``.venv``'s site-packages (a plain path line: the editable install's finder there is not run).
What runs must be the installed package, never the checkout: ``kanta_guard.__file__`` says so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from helpers import REAL, cda

from .conftest import ROOT, Upstream, clean_env, free_port, listening, marker

pytestmark = pytest.mark.e2e

PACKAGE = ROOT / "kanta_guard"
#: What the wheel is built from: the package and the files its metadata names.
SOURCES = ("pyproject.toml", "README.md")
#: Output of a build that could not get its backend (no setuptools, no index): not our fault.
_NO_BACKEND = ("Cannot import build backend", "No matching distribution found for setuptools")


@dataclass(frozen=True)
class Installed:
    """A fresh venv with the wheel installed, and a work folder outside the checkout."""

    wheel: Path
    venv: Path
    work: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "kanta-guard"

    def env(self) -> dict[str, str]:
        env = clean_env(
            XDG_STATE_HOME=str(self.work / "state"),
            XDG_DATA_HOME=str(self.work / "data"),
            XDG_CONFIG_HOME=str(self.work / "config"),
            KANTA_GUARD_HASH_KEY="kanta-guard-wheel-test-key-0123456789",
            PYTHONUNBUFFERED="1",
        )
        env.pop("PYTHONPATH", None)  # nothing but the venv
        env.pop("VIRTUAL_ENV", None)
        return env

    def run(self, *argv: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in argv],
            cwd=self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _build(tmp: Path) -> Path:
    """The wheel, built from a copy of the sources (the checkout gets no build/ folder)."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        PACKAGE, src / "kanta_guard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    dist = tmp / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist)]
    if importlib.util.find_spec("setuptools") is not None:
        command.append("--no-build-isolation")
    done = subprocess.run(
        [*command, str(src)], capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(marker in output for marker in _NO_BACKEND):
            pytest.skip(f"no setuptools to build the wheel with: {output.strip()[-300:]}")
        pytest.fail(f"pip wheel failed:\n{output}")
    (wheel,) = dist.glob("kanta_guard-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built and installed into a new venv that sees the project's dependencies."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies from this venv: a path line only (its .pth files are not processed).
    Path(purelib, "zz_kanta_guard_test_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", "utf-8"
    )
    subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install",
            "--quiet", "--no-deps", "--no-index", str(wheel),
        ],
        check=True, timeout=120,
    )  # fmt: skip
    work = tmp / "work"
    work.mkdir()
    return Installed(wheel, venv, work)


def test_wheel_holds_every_package_file(installed: Installed) -> None:
    """Every file of the package (code and data, at any depth) is in the wheel."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"
    assert "kanta_guard/default_policy.toml" in names
    assert any(n.startswith("kanta_guard/data/") for n in names)


def test_the_installed_package_is_what_runs(installed: Installed) -> None:
    """``kanta_guard`` imports from the venv's site-packages, not the checkout; both
    ``kanta-guard --version`` and ``python -m kanta_guard --version`` answer."""
    where = installed.run(installed.python, "-c", "import kanta_guard; print(kanta_guard.__file__)")
    assert where.returncode == 0, where.stderr
    path = Path(where.stdout.strip()).resolve()
    assert path.is_relative_to(installed.venv.resolve()), path
    assert not path.is_relative_to(ROOT.resolve())
    for argv in (
        (installed.script, "--version"),
        (installed.python, "-m", "kanta_guard", "--version"),
    ):
        done = installed.run(*argv)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith("kanta-guard 0.")


def test_scan_from_the_wheel(installed: Installed) -> None:
    """``kanta-guard scan``: a clean file exits 0, a dirty one 1, the code masked."""
    (installed.work / "clean.xml").write_text(cda(), "utf-8")
    (installed.work / "dirty.xml").write_text(cda(patient=REAL), "utf-8")
    clean = installed.run(installed.script, "scan", "clean.xml")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    dirty = installed.run(installed.script, "scan", "--format", "json", "dirty.xml")
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert "hetu.real" in json.loads(dirty.stdout)["files"][0]["rules"]
    assert REAL not in dirty.stdout + dirty.stderr


#: Starts the installed ``kanta-guard`` with the arguments given.
Start = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def start(installed: Installed, request: pytest.FixtureRequest) -> Iterator[Start]:
    """A helper to start the installed guard; every process it started is stopped after."""
    processes: list[subprocess.Popen[bytes]] = []

    def starting(*argv: str) -> subprocess.Popen[bytes]:
        err = installed.work / f"{request.node.name}-{len(processes)}.stderr"
        with err.open("wb") as stderr:
            process = subprocess.Popen(
                [str(installed.script), *argv],
                cwd=installed.work, env=installed.env(), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr,
            )  # fmt: skip
        processes.append(process)
        return process

    yield starting
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)


def _wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode} before listening"
        if listening(port):
            return
        time.sleep(0.1)
    pytest.fail(f"nothing listened on {port} within {timeout} s")


def test_run_from_the_wheel(installed: Installed, start: Start, upstream: Upstream) -> None:
    """``kanta-guard run`` from the wheel: a clean request is forwarded, a dirty one blocked
    (403, logged in the per-user log), and the proxy stops on SIGTERM."""
    port = free_port()
    process = start("run", "--listen-port", str(port), "--workers", "1")
    _wait_listening(process, port)
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": f"http://127.0.0.1:{port}"}
    clean_path, dirty_path = marker("wheel-clean"), marker("wheel-dirty")
    clean = session.post(upstream.url(clean_path), data=cda(), timeout=30)
    dirty = session.post(upstream.url(dirty_path), data=cda(patient=REAL), timeout=30)
    assert clean.status_code == 200 and len(upstream.got(clean_path)) == 1
    assert dirty.status_code == 403 and upstream.got(dirty_path) == []
    assert REAL not in dirty.text
    log = installed.work / "state" / "kanta-guard" / "log" / "kanta-guard-blocked.jsonl"
    deadline = time.monotonic() + 5
    while dirty_path not in (log.read_text("utf-8") if log.exists() else ""):
        assert time.monotonic() < deadline, "the blocked request was not logged"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    ca = installed.work / "state" / "kanta-guard" / "ca" / "mitmproxy-ca-cert.pem"
    assert ca.is_file()


def test_plain_mitmdump_loads_the_shipped_script(
    installed: Installed, upstream: Upstream, tmp_path: Path
) -> None:
    """``mitmdump -s <installed kanta_guard/proxy/script.py>``: the addon ships in the package
    and blocks a dirty request on its own."""
    where = installed.run(
        installed.python, "-c", "import kanta_guard.proxy.script as s; print(s.__file__)"
    )
    script = Path(where.stdout.strip())
    assert script.is_relative_to(installed.venv), where.stdout + where.stderr
    port = free_port()
    err = tmp_path / "mitmdump.stderr"
    with err.open("wb") as stderr:
        process = subprocess.Popen(
            [
                str(installed.python), "-c",
                "import sys; from mitmproxy.tools.main import mitmdump; sys.exit(mitmdump())",
                "--listen-host", "127.0.0.1", "--listen-port", str(port),
                "--set", f"confdir={installed.work / 'mitmdump-conf'}",
                "--set", "kanta_guard_workers=0", "-s", str(script),
            ],
            cwd=installed.work, env=installed.env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        _wait_listening(process, port)
        session = requests.Session()
        session.trust_env = False
        session.proxies = {"http": f"http://127.0.0.1:{port}"}
        path = marker("wheel-script")
        dirty = session.post(upstream.url(path), data=cda(patient=REAL), timeout=30)
        assert dirty.status_code == 403, err.read_text("utf-8", "replace")
        assert upstream.got(path) == []
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def test_web_from_the_wheel(installed: Installed, start: Start) -> None:
    """``kanta-guard web`` from the wheel: mitmweb's dashboard port answers HTTP."""
    port, web_port = free_port(), free_port()
    process = start("web", "--listen-port", str(port), "--web-port", str(web_port))
    _wait_listening(process, web_port)
    session = requests.Session()
    session.trust_env = False
    answer = session.get(f"http://127.0.0.1:{web_port}/", timeout=30)
    assert answer.status_code in (200, 401, 403), answer.status_code
    assert process.poll() is None


def test_nothing_of_the_checkout_was_needed(installed: Installed) -> None:
    """The venv's only link to the checkout's .venv is the dependency path line: no path in
    the installed package's files points into the checkout."""
    site = next(installed.venv.glob("lib/python*/site-packages"))
    links = [p for p in site.glob("*.pth") if str(ROOT) in p.read_text("utf-8")]
    assert [p.name for p in links] == ["zz_kanta_guard_test_deps.pth"]
    assert os.path.isdir(site / "kanta_guard" / "data")
