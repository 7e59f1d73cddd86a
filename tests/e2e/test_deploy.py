"""End to end, as far as the machine allows: the example deployment of ``deploy/``.

No docker daemon is assumed. What runs here is what the containers would run, on loopback: two
real guards (``python -m kanta_guard run``, metrics on ports of their own), Debian's real
``haproxy`` with ``deploy/haproxy.cfg`` (the committed file, its addresses rewritten to loopback
and nothing else), and Debian's real ``prometheus`` with ``deploy/prometheus.yml`` (its targets
rewritten). ``deploy/compose.yaml`` is checked as YAML (with ``docker compose config`` too where
docker can run it). A part whose program is missing is skipped, saying which.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import REAL, cda

from .conftest import (
    LOOPBACK,
    ROOT,
    STOP_TIMEOUT,
    GuardProxy,
    Upstream,
    clean_env,
    free_port,
    listening,
    marker,
)

pytestmark = pytest.mark.e2e

DEPLOY = ROOT / "deploy"
HAPROXY = shutil.which("haproxy") or next(
    (p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None
)
PROMETHEUS = shutil.which("prometheus")
XML = {"Content-Type": "application/xml"}


def loopback_haproxy(text: str, port: int, guards: list[tuple[int, int]]) -> str:
    """``deploy/haproxy.cfg`` on loopback: the front end on ``port``, server ``guard-N`` at
    its (proxy port, metrics port), no Docker DNS. Everything else is the committed file."""
    text = re.sub(r"(?m)^resolvers docker\n(?:[ \t]+\S.*\n)*", "", text)
    text = text.replace(" resolvers docker", "")
    text = re.sub(r"(?m)^(\s*bind )\S+", rf"\g<1>{LOOPBACK}:{port}", text, count=1)
    for n, (proxy_port, metrics_port) in enumerate(guards, start=1):
        text, count = re.subn(
            rf"(?m)^(\s*server guard-{n}) guard-{n}:8080 (check) port 9464",
            rf"\1 {LOOPBACK}:{proxy_port} \2 port {metrics_port}",
            text,
        )
        assert count == 1, f"deploy/haproxy.cfg has no line for guard-{n}"
    assert "guard-1:" not in text and "127.0.0.11" not in text
    return text


def loopback_prometheus(text: str, targets: list[str]) -> str:
    """``deploy/prometheus.yml`` with the guards' loopback metrics ports and a 1 s interval."""
    text = text.replace("scrape_interval: 15s", "scrape_interval: 1s")
    for n, target in enumerate(targets, start=1):
        assert f"guard-{n}:9464" in text, f"deploy/prometheus.yml has no target guard-{n}"
        text = text.replace(f"guard-{n}:9464", target)
    return text


def direct(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request on a connection of its own, ignoring the environment's proxy settings
    (HAProxy balances connections; a ``no_proxy`` must not send a request around it)."""
    with requests.Session() as session:
        session.trust_env = False
        return session.request(method, url, timeout=15, **kwargs)


def metric(port: int, name: str, labels: str = "") -> float:
    """One sample of a guard's metrics (0 when absent)."""
    text = direct("GET", f"http://{LOOPBACK}:{port}/metrics").text
    match = re.search(rf"(?m)^{re.escape(name + labels)} (\S+)$", text)
    return float(match.group(1)) if match else 0.0


def passed(port: int) -> float:
    return metric(port, "kanta_guard_requests_total", '{verdict="pass"}')


def blocked(port: int) -> float:
    return metric(port, "kanta_guard_requests_total", '{verdict="block"}')


class Process:
    """A program run for a test, its output in a file, stopped at the end."""

    def __init__(self, command: list[str], workdir: Path, name: str) -> None:
        self.output = workdir / f"{name}.out"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def text(self) -> str:
        return self.output.read_text("utf-8", "replace")

    def wait_listening(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"exited with {self.process.returncode}:\n{self.text()[-3000:]}")
            if listening(port):
                return
            time.sleep(0.1)
        pytest.fail(f"did not listen on {port}:\n{self.text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


@dataclass
class DeployedGuard(GuardProxy):
    """A guard as the compose file runs it: the CA in a folder shared with the others, its
    metrics on a port of its own (``--set kanta_guard_metrics``)."""

    ca: Path | None = None
    metrics_port: int = 0

    @property
    def confdir(self) -> Path:
        return self.ca or self.workdir / "confdir"


@pytest.fixture(scope="module")
def guards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[DeployedGuard]]:
    """Two guards: one CA (the first creates it), one hash key, a log each, a metrics port each."""
    shared = tmp_path_factory.mktemp("deploy-ca")
    started: list[DeployedGuard] = []
    for n in (1, 2):
        workdir = tmp_path_factory.mktemp(f"deploy-guard-{n}")
        metrics = free_port()
        guard = DeployedGuard(
            workdir,
            workdir / "blocked.jsonl",
            ["--workers", "1", "--set", f"kanta_guard_metrics={LOOPBACK}:{metrics}"],
            ca=shared,
            metrics_port=metrics,
        )
        guard.start()
        started.append(guard)
    yield started
    for guard in started:
        guard.stop()


def test_committed_haproxy_config_is_valid() -> None:
    """``haproxy -c`` accepts deploy/haproxy.cfg as committed (the guards' names unresolvable
    here are warnings: Docker's DNS resolves them in the compose network)."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run does)")
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout + checked.stderr


def test_compose_file_describes_two_guards_haproxy_and_prometheus() -> None:
    """deploy/compose.yaml is YAML naming two guards built from deploy/Dockerfile, HAProxy and
    Prometheus with the committed configuration files mounted, a shared CA and a log each."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: compose.yaml unchecked")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    services = compose["services"]
    assert set(services) == {"guard-1", "guard-2", "haproxy", "prometheus"}
    for name in ("guard-1", "guard-2"):
        guard = services[name]
        assert guard["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        mounts = {m.split(":")[1]: m.split(":")[0] for m in guard["volumes"]}
        assert mounts["/etc/kanta-guard/ca"] == "ca"
        assert "KANTA_GUARD_HASH_KEY" in guard["environment"]
    assert services["guard-1"]["volumes"] != services["guard-2"]["volumes"]  # a log each
    assert services["guard-2"]["depends_on"]["guard-1"]["condition"] == "service_healthy"
    mounted = [v.split(":")[0] for s in ("haproxy", "prometheus") for v in services[s]["volumes"]]
    for source in mounted:
        if source.startswith("./"):
            assert (DEPLOY / source).is_file(), source
    assert (DEPLOY / "Dockerfile").is_file()
    dockerfile = (DEPLOY / "Dockerfile").read_text("utf-8")
    assert "kanta_guard_metrics=0.0.0.0:9464" in dockerfile and "EXPOSE 8080 9464" in dockerfile


def test_compose_config_with_docker() -> None:
    """``docker compose config`` accepts the file, where docker compose can run here."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        pytest.skip("docker has no compose plugin here: compose.yaml checked as YAML only")
    checked = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=clean_env(KANTA_GUARD_HASH_KEY="x" * 32),
    )
    assert checked.returncode == 0, checked.stderr


def test_haproxy_spreads_requests_over_both_guards(
    guards: list[DeployedGuard], upstream: Upstream, tmp_path: Path
) -> None:
    """Through HAProxy (the committed config on loopback) requests reach the upstream by both
    guards in turn; a dirty one is blocked whichever guard gets it; when one guard stops, the
    other takes every request."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run does)")
    front = free_port()
    ports = [(g.port, g.metrics_port) for g in guards]
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        loopback_haproxy((DEPLOY / "haproxy.cfg").read_text("utf-8"), front, ports), "utf-8"
    )
    checked = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    haproxy = Process([HAPROXY, "-db", "-f", str(config)], tmp_path, "haproxy")
    try:
        haproxy.wait_listening(front)
        metrics = [g.metrics_port for g in guards]
        before = [passed(p) for p in metrics], [blocked(p) for p in metrics]
        proxies = {"http": f"http://{LOOPBACK}:{front}"}
        path = marker("deploy")
        # Each request on a connection of its own: HAProxy balances connections.
        for n in range(6):
            answer = direct("POST", upstream.url(f"{path}/{n}"), data=cda(), headers=XML,
                            proxies=proxies)  # fmt: skip
            assert answer.status_code == 200, answer.text[:300]
        for n in range(2):
            answer = direct("POST", upstream.url(f"{path}/dirty{n}"), data=cda(patient=REAL),
                            headers=XML, proxies=proxies)  # fmt: skip
            assert answer.status_code == 403
        grown = [passed(p) - b for p, b in zip(metrics, before[0], strict=True)]
        stopped = [blocked(p) - b for p, b in zip(metrics, before[1], strict=True)]
        assert grown == [3, 3], f"round robin should give each guard 3 of 6: {grown}"
        assert stopped == [1, 1], stopped
        assert len(upstream.got(path)) == 6 and not upstream.got(f"{path}/dirty")
        # One guard stops: the health check (and redispatch) sends everything to the other.
        guards[1].stop()
        for n in range(4):
            answer = direct("POST", upstream.url(f"{path}/after{n}"), data=cda(), headers=XML,
                            proxies=proxies)  # fmt: skip
            assert answer.status_code == 200
        assert len(upstream.got(f"{path}/after")) == 4
    finally:
        haproxy.stop()
        if guards[1].process is not None and guards[1].process.poll() is not None:
            guards[1].start()  # for the Prometheus test, which scrapes both


def test_health_check_takes_a_guard_that_is_not_ready_out(
    guards: list[DeployedGuard], upstream: Upstream, tmp_path: Path
) -> None:
    """A guard that refuses all traffic (its log cannot be written: kanta_guard_ready 0) fails
    HAProxy's check and is taken out of rotation: every request then goes to the ready one."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run does)")
    broken = DeployedGuard(
        tmp_path / "broken",
        Path("/dev/full"),  # opens, but no write succeeds: the guard refuses everything
        ["--workers", "0", "--set", f"kanta_guard_metrics={LOOPBACK}:{(m := free_port())}"],
        ca=guards[0].ca,
        metrics_port=m,
    )
    broken.start()
    try:
        deadline = time.monotonic() + 10
        while metric(m, "kanta_guard_ready", "") != 0.0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric(m, "kanta_guard_ready") == 0.0
        front = free_port()
        pairs = [(guards[0].port, guards[0].metrics_port), (broken.port, m)]
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            loopback_haproxy((DEPLOY / "haproxy.cfg").read_text("utf-8"), front, pairs), "utf-8"
        )
        haproxy = Process([HAPROXY, "-db", "-f", str(config)], tmp_path, "haproxy")
        try:
            haproxy.wait_listening(front)
            deadline = time.monotonic() + 20
            while "guard-2 is DOWN" not in haproxy.text() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "guard-2 is DOWN" in haproxy.text(), haproxy.text()[-2000:]
            path = marker("deploy-health")
            for n in range(4):
                answer = direct("POST", upstream.url(f"{path}/{n}"), data=cda(), headers=XML,
                                proxies={"http": f"http://{LOOPBACK}:{front}"})  # fmt: skip
                assert answer.status_code == 200, answer.text[:300]
            assert len(upstream.got(path)) == 4
        finally:
            haproxy.stop()
    finally:
        broken.stop()


def test_prometheus_scrapes_both_guards(guards: list[DeployedGuard], tmp_path: Path) -> None:
    """The committed prometheus.yml (targets on loopback) scrapes both guards: its HTTP API
    returns kanta_guard_requests_total from both targets, and both are up."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; .ci/run does)")
    targets = [f"{LOOPBACK}:{g.metrics_port}" for g in guards]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        loopback_prometheus((DEPLOY / "prometheus.yml").read_text("utf-8"), targets), "utf-8"
    )
    port = free_port()
    prometheus = Process(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={LOOPBACK}:{port}",
        ],
        tmp_path,
        "prometheus",
    )
    try:
        prometheus.wait_listening(port)
        query = urllib.parse.quote("kanta_guard_requests_total")
        deadline = time.monotonic() + 45
        seen: set[str] = set()
        up: dict[str, str] = {}
        while time.monotonic() < deadline:
            answer = direct("GET", f"http://{LOOPBACK}:{port}/api/v1/query?query={query}")
            ups_answer = direct("GET", f"http://{LOOPBACK}:{port}/api/v1/query?query=up")
            if answer.status_code != 200 or ups_answer.status_code != 200:
                # (Listening is not ready: Prometheus answers 503 until its storage is open.)
                time.sleep(0.5)
                continue
            seen = {r["metric"]["instance"] for r in answer.json()["data"]["result"]}
            ups = ups_answer.json()["data"]["result"]
            up = {r["metric"]["instance"]: r["value"][1] for r in ups}
            if seen == set(targets) and all(up.get(t) == "1" for t in targets):
                break
            time.sleep(0.5)
        assert seen == set(targets), (
            f"scraped {seen}, wanted {targets}:\n{prometheus.text()[-2000:]}"
        )
        assert all(up[t] == "1" for t in targets), up
        verdicts = direct(
            "GET",
            f"http://{LOOPBACK}:{port}/api/v1/query",
            params={"query": "sum by (verdict) (kanta_guard_requests_total)"},
        ).json()["data"]["result"]
        assert {r["metric"]["verdict"] for r in verdicts} == {"pass", "warn", "block"}
        assert REAL not in json.dumps(verdicts)
    finally:
        prometheus.stop()
