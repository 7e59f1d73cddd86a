"""Tests of kanta_guard.eventlog: the record of a blocked request and the rotating log."""

from __future__ import annotations

import errno
import json
import re
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from kanta_guard.errors import PolicyError
from kanta_guard.eventlog import EventLog, LogRotationError, make_record, read_records
from kanta_guard.model import Action, Finding, Protocol, Report, Role, Verdict

# Real-range code (valid checksum, individual number 025): appears here only to prove it is masked.
LEAK = "050775-0251"

REAL = Finding(
    rule="hetu.real",
    action=Action.BLOCK,
    location="/ClinicalDocument/recordTarget/patientRole/id[1]/@extension",
    role=Role.PATIENT,
    evidence="******-****",
    value_hash="hmac:0123456789abcdef",
    explanation="a real personal identity code",
)
OFF = Finding("hetu.off_rule", Action.OFF, "/off", Role.UNKNOWN, "******-****", "hmac:0", "off")
REPORT = Report(Verdict.BLOCK, (REAL, OFF), Protocol.SOAP11)
WHEN = datetime(2025, 3, 4, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))


def record(
    *,
    client: str | None = "10.0.0.7:51234",
    method: str = "POST",
    path: str = "/services/pt",
    time: datetime | None = WHEN,
) -> dict[str, object]:
    return make_record(
        REPORT,
        flow_id="3f2a9c1e-0d4b-4c3e-9a55-0b7e6d1f2a33",
        client=client,
        method=method,
        host="kanta.example",
        path=path,
        time=time,
    )


def test_record_shape() -> None:
    """A record has the documented keys, UTC time with Z, and the findings that count."""
    assert record() == {
        "time": "2025-03-04T05:08:09.123Z",
        "flow_id": "3f2a9c1e-0d4b-4c3e-9a55-0b7e6d1f2a33",
        "client": "10.0.0.7:51234",
        "method": "POST",
        "host": "kanta.example",
        "path": "/services/pt",
        "verdict": "block",
        "rules": ["hetu.real"],
        "findings": [
            {
                "rule": "hetu.real",
                "action": "block",
                "role": "patient",
                "location": REAL.location,
                "evidence": "******-****",
                "value_hash": "hmac:0123456789abcdef",
                "explanation": "a real personal identity code",
            }
        ],
    }


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05.000Z"),
        (datetime(2025, 1, 2, 3, 4, 5), "2025-01-02T03:04:05.000Z"),  # naive: taken as UTC
        (
            datetime(2025, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-3))),
            "2025-01-02T02:00:00.000Z",
        ),
    ],
)
def test_record_time_is_utc(time: datetime, expected: str) -> None:
    """The time is ISO 8601 in UTC with a Z, whatever zone it was given in."""
    assert record(time=time)["time"] == expected


def test_record_time_defaults_to_now() -> None:
    """Without a time the record is stamped now, in UTC."""
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    stamp = record(time=None)["time"]
    assert isinstance(stamp, str) and stamp.endswith("Z")
    assert datetime.fromisoformat(stamp[:-1]) >= before


def test_record_without_client() -> None:
    """An unknown client is null."""
    assert record(client=None)["client"] is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/Patient?identifier={LEAK}", "/Patient?identifier=******-****"),
        # the code follows the letter C of %7C: masked in the raw path
        (
            f"/Patient?identifier=urn%3Aoid%3A1.2.246.21%7C{LEAK}",
            "/Patient?identifier=urn%3Aoid%3A1.2.246.21%7C******-****",
        ),
        ("/Patient?identifier=050775%2D0251", "/Patient?identifier=******-****"),
        # decoding glues the code to the letter A: masked before decoding
        (f"/p/{LEAK}%41", "/p/******-****%41"),
        ("/Patient?name=Meik%C3%A4l%C3%A4inen", "/Patient?name=Meik%C3%A4l%C3%A4inen"),
    ],
)
def test_record_path_is_masked(path: str, expected: str) -> None:
    """Codes in the path are masked, also percent-encoded ones; a clean path is kept raw."""
    assert record(path=path)["path"] == expected


def test_record_masks_every_field() -> None:
    """A code that slipped into any field of the request or the findings is masked."""
    leaky = Finding("hetu.real", Action.BLOCK, f"url:{LEAK}", Role.URL, LEAK, "hmac:1", LEAK)
    made = make_record(
        Report(Verdict.BLOCK, (leaky,)),
        flow_id=LEAK,
        client=LEAK,
        method=LEAK,
        host=f"{LEAK}.example",
        path=LEAK,
        time=WHEN,
    )
    text = json.dumps(made, ensure_ascii=False)
    assert "050775" not in text and "******-****" in text


def test_write_and_read(tmp_path: Path) -> None:
    """Each record is one compact JSON line, written through at once, read back in order."""
    path = tmp_path / "log" / "blocked.jsonl"  # the parent is created
    log = EventLog(path)
    log.write(record())
    log.write(record(method="PUT"))
    lines = path.read_text("utf-8").splitlines()  # readable before close: flushed
    assert len(lines) == 2 and ": " not in lines[0] and ", " not in lines[0].split('"findings"')[0]
    log.close()
    assert [r["method"] for r in read_records(path)] == ["POST", "PUT"]
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_write_masks_the_line(tmp_path: Path) -> None:
    """A record not made by make_record is still masked when written."""
    path = tmp_path / "blocked.jsonl"
    with EventLog(path) as log:
        log.write({"note": f"see {LEAK}", "path": f"/x?{LEAK}"})
    assert "050775" not in path.read_text("utf-8")
    assert read_records(path) == [{"note": "see ******-****", "path": "/x?******-****"}]


def test_line_separators_stay_inside_the_record(tmp_path: Path) -> None:
    """U+2028, U+0085 and the like (left unescaped by ensure_ascii=False) do not split records."""
    path = tmp_path / "blocked.jsonl"
    with EventLog(path) as log:
        log.write({"text": "a\u2028b\u0085c\nd\re"})
        log.write({"text": "Ä"})
    assert read_records(path) == [{"text": "a\u2028b\u0085c\nd\re"}, {"text": "Ä"}]
    assert len(path.read_bytes().split(b"\n")) == 3


def test_append_across_restart(tmp_path: Path) -> None:
    """A second EventLog on the same path appends to what the first wrote."""
    path = tmp_path / "blocked.jsonl"
    with EventLog(path) as first:
        first.write({"n": 1})
    with EventLog(path) as second:
        second.write({"n": 2})
    assert read_records(path) == [{"n": 1}, {"n": 2}]


def _numbers(path: Path) -> list[int]:
    return [int(str(r["n"])) for r in read_records(path)] if path.exists() else []


@pytest.mark.parametrize(
    ("backups", "files"),
    [
        # each line is {"n":N,"pad":"xxxxxxxxxx"} + newline = 27 bytes; 100 bytes hold 3 lines
        (2, {"": [9], ".1": [6, 7, 8], ".2": [3, 4, 5]}),  # 0-2 dropped with the oldest backup
        (5, {"": [9], ".1": [6, 7, 8], ".2": [3, 4, 5], ".3": [0, 1, 2]}),
        (0, {"": [9]}),  # no backups: the file starts afresh
    ],
)
def test_rotation(tmp_path: Path, backups: int, files: dict[str, list[int]]) -> None:
    """At max_bytes the file is shifted to .1, .1 to .2 and so on; the oldest is dropped."""
    path = tmp_path / "blocked.jsonl"
    with EventLog(path, max_bytes=100, backups=backups) as log:
        for n in range(10):
            log.write({"n": n, "pad": "x" * 10})
    found = {p.name.removeprefix(path.name): _numbers(p) for p in tmp_path.iterdir()}
    assert found == files
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())


def test_oversized_record_is_written_alone(tmp_path: Path) -> None:
    """A record larger than max_bytes is still written, into a file of its own."""
    path = tmp_path / "blocked.jsonl"
    with EventLog(path, max_bytes=50, backups=3) as log:
        log.write({"n": 0})
        log.write({"n": 1, "pad": "x" * 100})
        log.write({"n": 2})
    assert (_numbers(path), _numbers(tmp_path / "blocked.jsonl.1")) == ([2], [1])
    assert _numbers(tmp_path / "blocked.jsonl.2") == [0]


def test_failed_rotation_keeps_the_record(tmp_path: Path) -> None:
    """A failed rotation raises LogRotationError (errno kept), yet the record still goes in."""
    path = tmp_path / "blocked.jsonl"
    (tmp_path / "blocked.jsonl.1" / "occupied").mkdir(parents=True)  # path cannot become path.1
    with EventLog(path, max_bytes=30, backups=1) as log:
        log.write({"n": 0})
        for n in (1, 2):  # each write tries the rotation again
            with pytest.raises(LogRotationError) as raised:
                log.write({"n": n, "pad": "x" * 20})
            assert raised.value.errno == errno.EISDIR
    assert _numbers(path) == [0, 1, 2]


def test_no_rotation_when_max_bytes_is_zero(tmp_path: Path) -> None:
    """max_bytes=0 never rotates."""
    path = tmp_path / "blocked.jsonl"
    with EventLog(path, max_bytes=0) as log:
        for n in range(50):
            log.write({"n": n, "pad": "x" * 100})
    assert _numbers(path) == list(range(50))
    assert [p.name for p in tmp_path.iterdir()] == ["blocked.jsonl"]


def test_threads_do_not_interleave(tmp_path: Path) -> None:
    """Records written from many threads at once each stay whole, none lost across rotations."""
    path = tmp_path / "blocked.jsonl"
    log = EventLog(path, max_bytes=4000, backups=100)

    def writer(t: int) -> None:
        for i in range(50):
            log.write({"n": t * 1000 + i, "pad": "y" * 40})

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    numbers = [n for p in tmp_path.iterdir() for n in _numbers(p)]
    assert sorted(numbers) == sorted(t * 1000 + i for t in range(8) for i in range(50))


def test_write_after_close(tmp_path: Path) -> None:
    """Writing to a closed log raises ValueError; closing twice is harmless."""
    log = EventLog(tmp_path / "blocked.jsonl")
    log.close()
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.write({"n": 1})


@pytest.mark.parametrize(
    "where",
    [
        "under-a-file/blocked.jsonl",  # the parent is a regular file
        "a-directory",  # the log path is a directory
    ],
)
def test_unopenable_path_is_a_policy_error(tmp_path: Path, where: str) -> None:
    """A path that cannot be opened stops start-up with a PolicyError naming the path."""
    (tmp_path / "under-a-file").write_text("")
    (tmp_path / "a-directory").mkdir()
    path = tmp_path / where
    with pytest.raises(PolicyError, match=re.escape(str(path))):
        EventLog(path)


@pytest.mark.parametrize(("max_bytes", "backups"), [(-1, 5), (100, -1)])
def test_negative_limits_are_a_policy_error(tmp_path: Path, max_bytes: int, backups: int) -> None:
    """A negative size or backup count is a configuration error."""
    with pytest.raises(PolicyError, match="negative"):
        EventLog(tmp_path / "blocked.jsonl", max_bytes=max_bytes, backups=backups)


@pytest.mark.parametrize(
    ("content", "error"),
    [(b'{"n":1}\nnot json\n', ValueError), (b'{"n":1}\n[1,2]\n', TypeError)],
)
def test_read_records_rejects_bad_lines(
    tmp_path: Path, content: bytes, error: type[Exception]
) -> None:
    """A line that is not a JSON object is an error naming the line, not silently skipped."""
    path = tmp_path / "blocked.jsonl"
    path.write_bytes(content)
    with pytest.raises(error, match=":2:"):
        read_records(path)


def test_record_lists_at_most_the_cap() -> None:
    """A record lists at most MAX_FINDINGS findings and counts the rest (the report's omitted
    ones too): one record stays small, whatever the rotation size."""
    from kanta_guard.model import MAX_FINDINGS

    big = Report(Verdict.BLOCK, (REAL,) * (MAX_FINDINGS + 3), Protocol.OTHER, omitted=1000)
    made = make_record(big, flow_id="f", client=None, method="POST", host="h", path="/")
    assert isinstance(made["findings"], list) and len(made["findings"]) == MAX_FINDINGS
    assert made["findings_omitted"] == 1003
    assert len(json.dumps(made)) < 64 * 1024
    assert "findings_omitted" not in record()


def _personal(location: str, rule: str = "name.unregistered") -> Finding:
    return Finding(rule, Action.BLOCK, location, Role.PATIENT, "L**** K*******", "hmac:1", "x")


@pytest.mark.parametrize(
    ("path", "location", "expected"),
    [
        (
            "/fhir/Patient?family=Korhonen&given=Liisa",
            "url:query",
            "/fhir/Patient?withheld-by-kanta-guard",
        ),
        (
            "/Patient?email=liisa.korhonen%40gmail.com",
            "url:query:email",
            "/Patient?withheld-by-kanta-guard",
        ),
        ("/people/Liisa%20Korhonen/x", "url:path[2]", "/people/withheld-by-kanta-guard/x"),
        ("/a/Liisa%20Korhonen?x=1", "url", "/withheld-by-kanta-guard"),
        ("/a?b=1", "body", "/a?b=1"),  # a finding elsewhere: the path as it was
    ],
)
def test_record_path_withholds_what_masking_cannot_hide(
    path: str, location: str, expected: str
) -> None:
    """A name, an e-mail address or a phone number found in the URL is not logged: masking
    hides identity codes only, so the part of the path it stood in is withheld (the query, a
    segment, or the whole path), as mitmweb's redaction withholds it (found by the end-to-end
    test of a FHIR search by name: the record's path held the searched person's name)."""
    report = Report(Verdict.BLOCK, (_personal(location),), Protocol.FHIR_JSON)
    logged = make_record(report, flow_id="f", client=None, method="GET", host="h", path=path)
    assert logged["path"] == expected
    assert "Korhonen" not in json.dumps(logged)


def test_record_path_keeps_a_code_finding_masked_in_place() -> None:
    """Identity codes are masked where they stand: their findings withhold nothing."""
    report = Report(Verdict.BLOCK, (_personal("url:query:identifier", "hetu.real"),), None)
    logged = make_record(
        report, flow_id="f", client=None, method="GET", host="h", path=f"/P?identifier={LEAK}"
    )
    assert logged["path"] == "/P?identifier=******-****"


@pytest.mark.parametrize(
    "encode",
    [
        lambda code: code.encode().hex(),
        lambda code: __import__("base64").urlsafe_b64encode(code.encode()).decode().rstrip("="),
    ],
    ids=["hex", "base64url"],
)
def test_an_encoded_code_in_the_path_is_withheld_from_the_record(
    encode: Callable[[str], str],
) -> None:
    """A code the guard found decoded (Base64url, hex) in a path segment or a query value:
    masking does not see it as written, so the part is withheld from the record (it was
    written as sent: decodable by anyone who reads the log)."""
    from kanta_guard import KeyedHasher, Request, Scanner
    from kanta_guard.policy import load_policy

    token = encode(LEAK)
    path = f"/fhir/Binary/{token}?q={token}"
    report = Scanner(load_policy(None), KeyedHasher(b"k" * 32)).scan(Request("GET", path, (), b""))
    assert report.verdict is Verdict.BLOCK
    made = make_record(report, flow_id="1", client=None, method="GET", host="kanta.test", path=path)
    assert token not in json.dumps(made)
    assert made["path"] == "/fhir/Binary/withheld-by-kanta-guard?withheld-by-kanta-guard"


def test_an_encoded_code_in_the_host_is_withheld_from_the_record() -> None:
    """A code in hex in the Host line: the record's host is withheld (masking does not see it);
    a plain one is masked and the host kept."""
    from kanta_guard import KeyedHasher, Request, Scanner
    from kanta_guard.policy import load_policy

    scanner = Scanner(load_policy(None), KeyedHasher(b"k" * 32))
    host = f"{LEAK.encode().hex()}.kanta.test"
    report = scanner.scan(Request("GET", "/x", (("Host", host),), b""))
    assert report.verdict is Verdict.BLOCK
    made = make_record(report, flow_id="1", client=None, method="GET", host=host, path="/x")
    assert made["host"] == "withheld-by-kanta-guard"
    plain = f"{LEAK}.kanta.test"
    report = scanner.scan(Request("GET", "/x", (("Host", plain),), b""))
    made = make_record(report, flow_id="1", client=None, method="GET", host=plain, path="/x")
    assert made["host"] == "******-****.kanta.test"
