"""End to end: the registry of test identities and the testing mode, through the real proxy.

Two guards serve the module, each started once: ``joint_guard`` (``kanta-guard run --registry
FILE --testing joint --case TC-101``: the command-line route) and ``web_guard`` (``kanta-guard
web`` whose policy names the registry and independent testing: the policy route, switched at run
time through mitmweb's PUT /options, its registry file edited while it runs). Both run the
embedded default rules (names included: with a registry they block), with one scan worker, so a
small request is judged on the proxy's thread and a large one by the worker; both must follow
the same registry and mode. Every request is a FHIR Patient carrying a test code under the
HETU OID and the name the registry holds for it (or an invented one for an unregistered code).
Only 900-series codes are sent; the real-range ``REAL`` appears only in a broken registry, to
prove it is never shown unmasked.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from helpers import FIXTURES, REAL

from .conftest import (
    LOOPBACK,
    GuardProxy,
    Upstream,
    free_port,
    listening,
    marker,
    requests_session,
    start_refused,
)

pytestmark = pytest.mark.e2e

REGISTRY = FIXTURES / "e2e_registry" / "registry.toml"
PASSWORD = "kanta-e2e-personal-password"
#: The registry's identities (tests/fixtures/e2e_registry/registry.toml) and two outsiders.
INDEPENDENT = "010181-900C"  # independent pool
JOINT_101 = "020516C903K"  # joint pool, case TC-101
JOINT_202 = "231069-9711"  # joint pool, case TC-202 only
ADDED = "030875-999Y"  # added to the registry while the guard runs
UNKNOWN = "010594Y9032"  # a valid 900-series code in no version of the registry
PEOPLE = {
    INDEPENDENT: ("Maija Liisa", "Testinen"),
    JOINT_101: ("Anna-Liisa", "Yhteinen"),
    JOINT_202: ("Arto Alvar", "Toistapuolinen"),
    ADDED: ("Hannu", "Lisätty"),
    UNKNOWN: ("Hannu", "Lisätty"),
}
ADDED_ENTRY = """
[[identity]]
code = "030875-999Y"
given = "Hannu"
family = "Lisätty"
pool = "independent"
"""
MASKED = "******-****"
FHIR_JSON = "application/fhir+json"
#: Past the guard's inline limit (8 KB): such a request is scanned by the worker process.
PADDING = "Testiteksti ilman tunnisteita. " * 400
WAIT = 10.0  # seconds: a bounded wait for what the guard does every REGISTRY_POLL (1 s)


# --- helpers --------------------------------------------------------------------------------------


def patient(code: str, large: bool = False) -> bytes:
    """A FHIR Patient with ``code`` under the HETU OID and the name registered for it."""
    given, family = PEOPLE[code]
    document: dict[str, object] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.246.21", "value": code}],
        "name": [{"family": family, "given": given.split()}],
    }
    if large:
        div = f'<div xmlns="http://www.w3.org/1999/xhtml">{PADDING}</div>'
        document["text"] = {"status": "generated", "div": div}
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def send(
    guard: GuardProxy, upstream: Upstream, code: str, large: bool = False
) -> tuple[requests.Response, str, bytes]:
    """POST a Patient with ``code`` through ``guard``: (answer, the request's path, its body)."""
    path = marker("personal")
    body = patient(code, large)
    with requests_session(guard) as client:
        response = client.post(
            upstream.url(path), data=body, headers={"Content-Type": FHIR_JSON}, timeout=30
        )
    return response, path, body


def wait_for(condition: Callable[[], object], timeout: float = WAIT) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` passes; whether it became true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def assert_passed(guard: GuardProxy, upstream: Upstream, code: str, large: bool = False) -> None:
    """The request with ``code`` reaches the upstream byte for byte and leaves no record."""
    response, path, body = send(guard, upstream, code, large)
    assert response.status_code == 200, response.text[:600]
    assert "X-Kanta-Guard" not in response.headers
    got = upstream.got(path)
    assert len(got) == 1 and got[0].body == body
    assert not guard.wait_records(lambda r: str(r.get("path", "")).startswith(path), timeout=0.3)


def assert_blocked(
    guard: GuardProxy, upstream: Upstream, code: str, rule: str, large: bool = False
) -> dict[str, object]:
    """The request with ``code`` is answered 403 naming ``rule`` only, the test code shown as
    evidence (900-series: no personal data) and the person's names nowhere; nothing reaches
    the upstream; its one log record names the rule. Returns the record."""
    response, path, _ = send(guard, upstream, code, large)
    assert response.status_code == 403, response.text[:600]
    assert response.headers.get("X-Kanta-Guard") == "blocked"
    assert response.headers.get("X-Kanta-Guard-Rules") == rule
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics = [str(issue.get("diagnostics", "")) for issue in outcome["issue"]]
    assert any(d.startswith(f"{rule}:") and f"evidence {code}" in d for d in diagnostics)
    for name in PEOPLE[code]:
        assert name not in response.text
    assert upstream.got(path) == []
    records = guard.wait_records(lambda r: str(r.get("path", "")).startswith(path))
    assert len(records) == 1, records
    entry = records[0]
    assert entry["verdict"] == "block" and entry["rules"] == [rule]
    findings = entry["findings"]
    assert isinstance(findings, list)
    assert [f["rule"] for f in findings] == [rule]
    assert findings[0]["location"] == "/identifier/0/value"
    assert str(findings[0]["value_hash"]).startswith("hmac:")
    assert findings[0]["evidence"] == code
    logged = json.dumps(entry, ensure_ascii=False)
    assert not any(name in logged for name in PEOPLE[code])
    return entry


def assert_unknown(guard: GuardProxy, upstream: Upstream, code: str) -> None:
    """The request with an unregistered ``code`` is answered 403 with ``registry.unknown_code``
    among its rules (the name rule may fire beside it), masked; nothing reaches the upstream."""
    response, path, _ = send(guard, upstream, code)
    assert response.status_code == 403, response.text[:600]
    assert "registry.unknown_code" in response.headers["X-Kanta-Guard-Rules"].split(",")
    assert f"evidence {code}" in response.text  # a test code: shown
    assert upstream.got(path) == []
    records = guard.wait_records(lambda r: str(r.get("path", "")).startswith(path))
    assert len(records) == 1
    rules = records[0]["rules"]
    assert isinstance(rules, list) and "registry.unknown_code" in rules


def web_port(guard: GuardProxy) -> int:
    """The port of the guard's mitmweb (set by the ``web_guard`` fixture)."""
    return int(guard.web_port)  # type: ignore[attr-defined]


def put_options(guard: GuardProxy, **options: str) -> requests.Response:
    """PUT /options on the guard's mitmweb, authenticated (bearer password, XSRF pair)."""
    token = uuid.uuid4().hex
    return requests.put(
        f"http://{LOOPBACK}:{web_port(guard)}/options",
        json=options,
        headers={
            "Authorization": f"Bearer {PASSWORD}",
            "X-XSRFToken": token,
            "Cookie": f"_mitmproxy_xsrf={token}",
        },
        timeout=10,
    )


def set_mode(guard: GuardProxy, mode: str, case: str = "") -> None:
    """Put the guard in ``mode`` (and ``case``) at run time: mitmweb answers once the change
    is applied, and the guard's policy record then names the mode in force."""
    response = put_options(guard, kanta_guard_mode=mode, kanta_guard_case=case)
    assert response.status_code == 200, response.text[:300]
    expected = f"joint ({case})" if mode == "joint" else "independent"
    assert wait_for(lambda: guard.events("policy")[-1]["mode"] == expected), guard.output()


def registry_event(guard: GuardProxy, change: str, since: int) -> dict[str, object]:
    """The first ``{"event": "registry", "change": change}`` record after the first ``since``
    registry records, waiting (bounded) for the guard's next polls."""
    found: list[dict[str, object]] = []

    def arrived() -> bool:
        found[:] = [e for e in guard.events("registry")[since:] if e["change"] == change]
        return bool(found)

    assert wait_for(arrived), f"no registry {change} record:\n{guard.output()[-3000:]}"
    return found[0]


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step, so the guard's poll never reads half a file."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# --- the guards -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def joint_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProxy]:
    """``kanta-guard run`` in joint testing of TC-101, registry and mode given as flags."""
    workdir = tmp_path_factory.mktemp("personal-joint")
    policy = workdir / "policy.toml"
    policy.write_text("# the embedded default policy\n", encoding="utf-8")
    guard = GuardProxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--policy", str(policy), "--workers", "1",
            "--registry", str(REGISTRY), "--testing", "joint", "--case", "TC-101",
        ],
    )  # fmt: skip
    guard.start()
    yield guard
    guard.stop()


@pytest.fixture(scope="module")
def web_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProxy]:
    """``kanta-guard web`` whose policy names a registry (a copy the tests edit) and
    independent testing."""
    workdir = tmp_path_factory.mktemp("personal-web")
    (workdir / "registry.toml").write_text(REGISTRY.read_text("utf-8"), encoding="utf-8")
    policy = workdir / "policy.toml"
    policy.write_text(
        '[registry]\nfile = "registry.toml"\n\n[testing]\nmode = "independent"\n',
        encoding="utf-8",
    )
    port = free_port()
    guard = GuardProxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--policy", str(policy), "--workers", "1",
            "--set", f"web_port={port}", "--set", f"web_password={PASSWORD}",
        ],
        tool="web",
    )  # fmt: skip
    guard.web_port = port  # type: ignore[attr-defined]
    guard.start()
    assert wait_for(lambda: listening(port)), guard.output()
    assert wait_for(lambda: guard.events("policy")), guard.output()
    yield guard
    guard.stop()


# --- the cross-use block in both modes -----------------------------------------------------------

SIZES = pytest.mark.parametrize("large", [False, True], ids=["inline", "worker"])


@SIZES
@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (INDEPENDENT, None),
        (JOINT_101, "registry.wrong_pool"),
        (JOINT_202, "registry.wrong_pool"),
    ],
    ids=["independent-code", "joint-code", "joint-code-other-case"],
)
def test_independent_mode(
    web_guard: GuardProxy, upstream: Upstream, code: str, rule: str | None, large: bool
) -> None:
    """In independent testing an independent code passes and a joint code (of any case) is
    blocked as from the other pool."""
    set_mode(web_guard, "independent")
    if rule is None:
        assert_passed(web_guard, upstream, code, large)
    else:
        assert_blocked(web_guard, upstream, code, rule, large)


@SIZES
@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (JOINT_101, None),
        (INDEPENDENT, "registry.wrong_pool"),
        (JOINT_202, "registry.wrong_case"),
    ],
    ids=["joint-code-its-case", "independent-code", "joint-code-other-case"],
)
def test_joint_mode(
    joint_guard: GuardProxy, upstream: Upstream, code: str, rule: str | None, large: bool
) -> None:
    """In joint testing of TC-101 (``--testing joint --case TC-101``) a TC-101 code passes, an
    independent code is blocked as from the other pool, a joint code of another case as outside
    its cases."""
    if rule is None:
        assert_passed(joint_guard, upstream, code, large)
    else:
        assert_blocked(joint_guard, upstream, code, rule, large)


def test_joint_mode_started_from_flags(joint_guard: GuardProxy) -> None:
    """The flags' registry and mode are what the guard announces at start."""
    assert wait_for(lambda: joint_guard.events("policy"))
    start = joint_guard.events("policy")[0]
    assert start["change"] == "start"
    assert start["mode"] == "joint (TC-101)"
    assert start["registry"] == str(REGISTRY)
    assert start["identities"] == 3


def test_unregistered_code_blocked_in_both_modes(
    web_guard: GuardProxy, joint_guard: GuardProxy, upstream: Upstream
) -> None:
    """A 900-series code not in the registry is blocked whatever the mode."""
    set_mode(web_guard, "independent")
    for guard in (web_guard, joint_guard):
        assert_unknown(guard, upstream, UNKNOWN)


# --- the mode switched at run time ----------------------------------------------------------------


def test_mode_switch_at_run_time(web_guard: GuardProxy, upstream: Upstream) -> None:
    """PUT /options kanta_guard_mode/kanta_guard_case changes the verdict of the same request
    at once (on the proxy's thread and in the worker), with no restart; each change is logged."""
    assert web_guard.process is not None
    pid = web_guard.process.pid
    set_mode(web_guard, "independent")
    for large in (False, True):
        assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_pool", large)

    set_mode(web_guard, "joint", "TC-101")
    for large in (False, True):
        assert_passed(web_guard, upstream, JOINT_101, large)
        assert_blocked(web_guard, upstream, INDEPENDENT, "registry.wrong_pool", large)

    set_mode(web_guard, "joint", "TC-202")
    for large in (False, True):
        assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_case", large)
        assert_passed(web_guard, upstream, JOINT_202, large)

    set_mode(web_guard, "independent")
    for large in (False, True):
        assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_pool", large)
        assert_passed(web_guard, upstream, INDEPENDENT, large)
    assert web_guard.process.poll() is None and web_guard.process.pid == pid


def test_joint_mode_without_case_refused_at_run_time(
    web_guard: GuardProxy, upstream: Upstream
) -> None:
    """PUT kanta_guard_mode=joint with no case is refused (400) and the mode in force stays."""
    set_mode(web_guard, "independent")
    before = len(web_guard.events("policy"))
    response = put_options(web_guard, kanta_guard_mode="joint", kanta_guard_case="")
    assert response.status_code == 400, response.text[:300]
    assert "test case" in response.text
    assert len(web_guard.events("policy")) == before
    assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_pool")
    assert_passed(web_guard, upstream, INDEPENDENT)


# --- the registry reloaded while the guard runs ---------------------------------------------------


def test_registry_reload(web_guard: GuardProxy, upstream: Upstream) -> None:
    """An identity added to the registry file passes after the next poll; a broken version is
    refused, said so in the log and the proxy's output (masked, naming the file and line), and
    the last good version stays in force."""
    set_mode(web_guard, "independent")
    registry = web_guard.workdir / "registry.toml"
    original = registry.read_text("utf-8")
    assert_unknown(web_guard, upstream, ADDED)
    try:
        since = len(web_guard.events("registry"))
        write_atomically(registry, original + ADDED_ENTRY)
        registry_event(web_guard, "reloaded", since)
        assert web_guard.events("policy")[-1]["identities"] == 4
        for large in (False, True):
            assert_passed(web_guard, upstream, ADDED, large)

        # A broken version: a real person's code on the last line of a new entry.
        broken = original + ADDED_ENTRY + f'\n[[identity]]\ncode = "{REAL}"\n'
        broken += 'given = "Ville"\nfamily = "Oikea"\npool = "independent"\n'
        bad_line = broken.splitlines().index(f'code = "{REAL}"') + 1
        refused = len(web_guard.events("registry"))
        write_atomically(registry, broken)
        event = registry_event(web_guard, "refused", refused)
        reason = str(event["reason"])
        assert f"{registry}, line {bad_line}" in reason and MASKED in reason
        assert wait_for(
            lambda: "the registry in force stays (4 test identities)" in web_guard.output()
        )
        output = web_guard.output()
        assert f"{registry}, line {bad_line}" in output
        # The last good version stays in force: its codes pass, an unknown code still blocks.
        for large in (False, True):
            assert_passed(web_guard, upstream, ADDED, large)
            assert_passed(web_guard, upstream, INDEPENDENT, large)
            assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_pool", large)
        assert_unknown(web_guard, upstream, UNKNOWN)
        # Refused once per version, not at every poll.
        time.sleep(1.5)
        assert len(web_guard.events("registry")) == refused + 1
        # Never the real code unmasked: not in the log, not in the proxy's output.
        assert REAL not in web_guard.log.read_text("utf-8")
        assert REAL not in web_guard.output()
    finally:
        since = len(web_guard.events("registry"))
        write_atomically(registry, original)
        # The next test starts from the original (no assertion here: it would hide the error).
        wait_for(
            lambda: any(e["change"] == "reloaded" for e in web_guard.events("registry")[since:])
        )


def test_registry_file_removed_keeps_last_good(web_guard: GuardProxy, upstream: Upstream) -> None:
    """A registry file that disappears is refused like a broken one (the last good version
    stays); put back, it is reloaded."""
    set_mode(web_guard, "independent")
    registry = web_guard.workdir / "registry.toml"
    original = registry.read_text("utf-8")
    try:
        since = len(web_guard.events("registry"))
        registry.unlink()
        event = registry_event(web_guard, "refused", since)
        assert f"cannot read registry file {registry}" in str(event["reason"])
        assert_passed(web_guard, upstream, INDEPENDENT)
        assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_pool")
    finally:
        since = len(web_guard.events("registry"))
        write_atomically(registry, original)
    registry_event(web_guard, "reloaded", since)
    assert_passed(web_guard, upstream, INDEPENDENT, large=True)


def test_registry_option_at_run_time(web_guard: GuardProxy, upstream: Upstream) -> None:
    """PUT kanta_guard_registry switches to another registry (its pools apply at once); a bad
    one is refused (400, naming its file and line, masked) and the registry in force stays."""
    set_mode(web_guard, "independent")
    other = web_guard.workdir / "other-registry.toml"
    # The TC-101 code registered as an independent one in this other registry.
    other.write_text(
        REGISTRY.read_text("utf-8").replace(
            'pool = "joint"\ncases = ["TC-101"]', 'pool = "independent"'
        ),
        encoding="utf-8",
    )
    bad = web_guard.workdir / "bad-registry.toml"
    bad.write_text(
        f'[[identity]]\ncode = "{REAL}"\ngiven = "Ville"\nfamily = "Oikea"\npool = "independent"\n',
        encoding="utf-8",
    )
    try:
        response = put_options(web_guard, kanta_guard_registry=str(bad))
        assert response.status_code == 400
        assert f"{bad}, line 2" in response.text and REAL not in response.text
        assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_pool")

        response = put_options(web_guard, kanta_guard_registry=str(other))
        assert response.status_code == 200, response.text[:300]
        assert wait_for(lambda: web_guard.events("policy")[-1]["registry"] == str(other))
        for large in (False, True):
            assert_passed(web_guard, upstream, JOINT_101, large)
    finally:
        response = put_options(web_guard, kanta_guard_registry="")
    assert response.status_code == 200, response.text[:300]
    assert_blocked(web_guard, upstream, JOINT_101, "registry.wrong_pool")
    assert REAL not in web_guard.output() and REAL not in web_guard.log.read_text("utf-8")


def test_dropping_the_registry_at_run_time_is_a_weakening(
    web_guard: GuardProxy, upstream: Upstream
) -> None:
    """A run-time policy without a registry enforces less (no pool, case or unknown-code
    checks): without ``allow_weakening`` it is refused and cross-use stays blocked."""
    set_mode(web_guard, "independent")
    active = web_guard.workdir / "policy.toml"
    rules = ("name.unregistered", "name.mismatch", "name.narrative", "phone.personal")
    fixed = "\n".join(f'"{rule}" = "block"' for rule in (*rules, "address.personal"))
    without = web_guard.workdir / "no-registry-policy.toml"
    without.write_text(f"[rules]\n{fixed}\n", encoding="utf-8")
    try:
        response = put_options(web_guard, kanta_guard_policy=str(without))
        blocked = send(web_guard, upstream, JOINT_101)[0].status_code
    finally:
        put_options(web_guard, kanta_guard_policy=str(active))
    assert response.status_code == 400, "a policy without the registry was accepted"
    assert blocked == 403


# --- a bad registry at start-up -------------------------------------------------------------------


def _bad_registry(folder: Path, kind: str) -> tuple[Path, int]:
    """A registry file with one bad entry of ``kind``: (its path, the line the error names)."""
    code = REAL if kind == "real-code" else INDEPENDENT  # a real person's, or a duplicate
    entry = f'code = "{code}"'
    bad = REGISTRY.read_text("utf-8") + f"\n[[identity]]\n{entry}\n"
    bad += 'given = "Ville"\nfamily = "Oikea"\npool = "independent"\n'
    lines = bad.splitlines()
    line = len(lines) - lines[::-1].index(entry)  # the new entry's code line (1-based)
    path = folder / "bad-registry.toml"
    path.write_text(bad, encoding="utf-8")
    return path, line


@pytest.mark.parametrize(
    ("kind", "route"),
    [("real-code", "flag"), ("duplicate", "policy")],
    ids=["real-code-by-flag", "duplicate-by-policy"],
)
def test_bad_registry_stops_start_up(tmp_path: Path, kind: str, route: str) -> None:
    """A bad registry (by ``--registry`` or the policy's [registry] file) stops ``kanta-guard
    run`` with exit 2 and a message naming the file and line: no traceback, never a real code."""
    path, line = _bad_registry(tmp_path, kind)
    policy = tmp_path / "policy.toml"
    if route == "policy":
        policy.write_text(f'[registry]\nfile = "{path.name}"\n', encoding="utf-8")
        args = ["--policy", str(policy)]
    else:
        policy.write_text("", encoding="utf-8")
        args = ["--policy", str(policy), "--registry", str(path)]
    guard = GuardProxy(tmp_path / "guard", tmp_path / "blocked.jsonl", args)
    result = start_refused(guard)
    assert not result.listened
    assert result.returncode == 2, result.output
    assert f"{path}, line {line}" in result.stderr
    assert result.stderr.startswith("kanta-guard: error: ")
    assert "Traceback" not in result.output
    assert REAL not in result.output
    if kind == "real-code":
        assert MASKED in result.stderr and "real person" in result.stderr
    else:
        assert "duplicate code" in result.stderr


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ("family=Yhteinen&given=Anna-Liisa", None),  # TC-101's registered identity
        ("family=Korhonen&given=Liisa", "name.unregistered"),
        (f"identifier=urn:oid:1.2.246.21|{JOINT_101}&family=Korhonen", "name.mismatch"),
    ],
    ids=["registered", "unregistered", "real-name-on-test-code"],
)
def test_fhir_search_by_name(
    joint_guard: GuardProxy, upstream: Upstream, query: str, rule: str | None
) -> None:
    """A FHIR search for a person by name (``GET …/Patient?family=…&given=…``: the parts in
    separate parameters) is judged as the person it describes: a registered identity's name
    passes byte for byte, any other name is stopped and never reaches Kanta, masked."""
    path = marker("search") + "/Patient?" + query
    with requests_session(joint_guard) as client:
        response = client.get(upstream.url(path), timeout=30)
    if rule is None:
        assert response.status_code == 200, response.text[:600]
        assert len(upstream.got(path.partition("?")[0])) == 1
        return
    assert response.status_code == 403, response.text[:600]
    assert rule in response.headers["X-Kanta-Guard-Rules"].split(",")
    assert "Korhonen" not in response.text and "Liisa" not in response.text
    assert upstream.got(path.partition("?")[0]) == []
    records = joint_guard.wait_records(lambda r: rule in r.get("rules", []))
    assert records and "Korhonen" not in json.dumps(records, ensure_ascii=False)


@pytest.mark.parametrize(
    ("body", "media", "rule"),
    [
        (
            '{"resourceType":"Observation","status":"final","code":{"text":"x"},'
            '"valueString":"yhteys {who}&#64;gmail.com"}',
            "application/fhir+json",
            "email.personal",
        ),
        (
            '<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text '
            'value="x"/></code><valueString value="Potilas {who}%20{family} kävi"/></Observation>',
            "application/fhir+xml",
            "name.narrative",
        ),
        (
            '<DocumentReference xmlns="http://hl7.org/fhir"><status value="current"/><content>'
            '<attachment><title value="{who}_{family}_lahete.pdf"/></attachment></content>'
            "</DocumentReference>",
            "application/fhir+xml",
            "name.narrative",
        ),
    ],
    ids=["json-escaped-email", "xml-escaped-name", "xml-file-name"],
)
def test_escaped_and_joined_personal_data(
    joint_guard: GuardProxy, upstream: Upstream, body: str, media: str, rule: str
) -> None:
    """A real person's e-mail address or name escaped inside a JSON string or an XML attribute
    (which no parser undoes, but a page showing it does), or joined into a file name, is
    stopped before Kanta and shown masked; the same with a registered test identity's name
    and a reserved domain arrives byte for byte."""
    real = body.replace("{who}", "liisa.korhonen" if "@" in body or "&#64;" in body else "Liisa")
    real = real.replace("{family}", "Korhonen")
    path = marker("escaped") + "/" + rule
    with requests_session(joint_guard) as client:
        response = client.post(
            upstream.url(path), data=real.encode(), headers={"Content-Type": media}, timeout=30
        )
    assert response.status_code == 403, response.text[:600]
    assert rule in response.headers["X-Kanta-Guard-Rules"].split(",")
    assert "Korhonen" not in response.text and "korhonen" not in response.text
    assert upstream.got(path) == []
    records = joint_guard.wait_records(lambda r: str(r.get("path", "")).startswith(path))
    assert records and "orhonen" not in json.dumps(records, ensure_ascii=False)
    given, family = PEOPLE[JOINT_101]
    clean = body.replace("{who}", "maija" if "&#64;" in body else given)
    clean = clean.replace("{family}", family).replace("gmail.com", "example.com")
    twin = marker("escaped-twin") + "/" + rule
    with requests_session(joint_guard) as client:
        response = client.post(
            upstream.url(twin), data=clean.encode(), headers={"Content-Type": media}, timeout=30
        )
    assert response.status_code == 200, response.text[:600]
    got = upstream.got(twin)
    assert len(got) == 1 and got[0].body == clean.encode()
