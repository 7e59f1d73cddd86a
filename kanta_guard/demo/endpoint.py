"""A fake Kanta test endpoint for the demo: HL7 V3 over SOAP and FHIR R4 JSON, on loopback.

It answers the way a test service would, closely enough for a system under test to carry on:

- ``POST`` of a SOAP envelope (1.1 or 1.2) holding an HL7 V3 message (a CDA inside, inline or
  Base64) to any path but ``/fhir``: an HL7 V3 accept acknowledgement (``MCCI_IN000002UV01``,
  ``acknowledgement/@typeCode="CA"``) naming the message it acknowledges, in an envelope of the
  request's SOAP version; a body that is no SOAP envelope gets a SOAP 1.2 Sender fault (400);
- ``POST /fhir/<Type>`` of a FHIR JSON resource: 201 with the resource back, given an id and
  ``meta.versionId``/``lastUpdated``, and a ``Location`` (FHIR R4 RESTful API, "create");
  ``PUT /fhir/<Type>/<id>``: 200 (201 when new) with the next version ("update"); ``GET`` of a
  stored resource, or ``/fhir/metadata``; anything else an ``OperationOutcome``.

It reads XML with the same hardened lxml settings as the guard (no DTD, no entities, no network)
and keeps only the last :data:`KEEP` requests, so it stays small however long the demo runs.
Every answer carries ``X-Fake-Kanta: demo``: a client can tell it from the guard's own answer.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

__all__ = ["ANSWER_HEADER", "KEEP", "MAX_BODY", "FakeKanta", "Received"]

#: The header every answer of the fake endpoint carries (name, value).
ANSWER_HEADER = ("X-Fake-Kanta", "demo")
#: How many received requests (and stored FHIR resources) are kept: the oldest go first.
KEEP = 1000
#: The largest request body read; a larger one is answered 413 unread.
MAX_BODY = 16 * 1024 * 1024

_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"  # SOAP 1.1 §4.1.2
_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"  # SOAP 1.2 Part 1 §5.1
_HL7 = "urn:hl7-org:v3"
_SOAP_TYPES = {_SOAP11: "text/xml; charset=utf-8", _SOAP12: "application/soap+xml; charset=utf-8"}
_FHIR_TYPE = "application/fhir+json; charset=utf-8"
#: The fake service's own device id (an OID under Kela's arc, as Kanta's receiver devices have).
_DEVICE = "1.2.246.10.2462460.19.1"


@dataclass(frozen=True, slots=True)
class Received:
    """One request the endpoint answered: what came and what went back."""

    method: str
    path: str
    kind: str  # "soap", "fhir" or "other"
    status: int
    body_size: int


class FakeKanta(ThreadingHTTPServer):
    """The fake endpoint on 127.0.0.1 (port 0: any free one); use as a context manager."""

    daemon_threads = True

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__((host, port), _Handler)
        self.host = host
        self._lock = threading.Lock()
        self._received: deque[Received] = deque(maxlen=KEEP)
        self._count = 0
        self._resources: dict[tuple[str, str], dict[str, Any]] = {}
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="fake-kanta", daemon=True
        )  # (a short poll interval: stop() returns at once)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The endpoint's base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def count(self) -> int:
        """How many requests it has answered since it started."""
        with self._lock:
            return self._count

    def received(self) -> list[Received]:
        """The last :data:`KEEP` requests answered, oldest first."""
        with self._lock:
            return list(self._received)

    def start(self) -> FakeKanta:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (harmless when never started)."""
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()

    def __enter__(self) -> FakeKanta:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, received: Received) -> None:
        with self._lock:
            self._received.append(received)
            self._count += 1

    def store(self, kind: str, rid: str | None, resource: dict[str, Any]) -> tuple[int, str]:
        """Keep a FHIR resource as the next version of ``kind/rid`` (a new id when None):
        (its version, its id)."""
        with self._lock:
            rid = rid or str(uuid.uuid4())
            old = self._resources.pop((kind, rid), None)
            version = int(old["meta"]["versionId"]) + 1 if old else 1
            meta = dict(resource.get("meta") or {})
            meta.update(versionId=str(version), lastUpdated=_now())
            self._resources[(kind, rid)] = {**resource, "id": rid, "meta": meta}
            while len(self._resources) > KEEP:  # the oldest (dicts keep insertion order)
                del self._resources[next(iter(self._resources))]
            return version, rid

    def resource(self, kind: str, rid: str) -> dict[str, Any] | None:
        with self._lock:
            return self._resources.get((kind, rid))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeKanta
    server_version = "fake-kanta/1"

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        if "://" in path:  # absolute-form (a client that talks to it as a proxy)
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        fhir = path == "/fhir" or path.startswith("/fhir/")
        body = self._body()
        if body is None:
            answer = _outcome(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too-costly", "body too large")
            kind = "other"
        elif fhir:
            answer, kind = _fhir(self.server, self.command, path[len("/fhir") :], body), "fhir"
        elif self.command == "POST":
            answer, kind = _soap(body), "soap"
        else:
            answer = _outcome(HTTPStatus.NOT_FOUND, "not-found", f"nothing at {path}")
            kind = "other"
        status, headers, payload = answer
        self.server.record(Received(self.command, path, kind, status, len(body or b"")))
        self.send_response(status)
        for name, value in (*headers, ANSWER_HEADER, ("Content-Length", str(len(payload)))):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes | None:
        """The request body (Content-Length framing, as the proxy forwards it); None if it is
        over MAX_BODY (the connection is closed then, the body left unread)."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo prints one line per message itself."""


_Answer = tuple[int, tuple[tuple[str, str], ...], bytes]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# --- SOAP / HL7 V3 --------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    """lxml hardened as the guard uses it (kanta.md, "XML safety with lxml")."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False
    )


def _soap(body: bytes) -> _Answer:
    """An HL7 V3 accept acknowledgement of the message in a SOAP envelope, or a Sender fault."""
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError:
        return _fault("the body is not well-formed XML")
    soap_ns = str(etree.QName(root).namespace)
    if etree.QName(root).localname != "Envelope" or soap_ns not in _SOAP_TYPES:
        return _fault("the body is not a SOAP 1.1 or 1.2 envelope")
    bodies = root.findall(f"{{{soap_ns}}}Body")
    message = next(iter(bodies[0]), None) if bodies else None
    if message is None or not isinstance(message.tag, str):
        return _fault("the SOAP Body holds no HL7 V3 message")
    interaction = etree.QName(message).localname
    target = message.find(f"{{{_HL7}}}id")
    target_root = target.get("root", "") if target is not None else ""
    envelope = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="{soap_ns}">
  <soap:Body>
    <MCCI_IN000002UV01 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
      <id root="{_DEVICE}.{uuid.uuid4().int % 10**12}"/>
      <creationTime value="{datetime.datetime.now(datetime.UTC):%Y%m%d%H%M%S}"/>
      <interactionId root="2.16.840.1.113883.1.6" extension="MCCI_IN000002UV01"/>
      <processingCode code="T"/>
      <processingModeCode code="T"/>
      <acceptAckCode code="NE"/>
      <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"/></receiver>
      <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE">
        <id root="{_DEVICE}"/></device></sender>
      <acknowledgement typeCode="CA">
        <targetMessage><id root={quoteattr(target_root)}/></targetMessage>
        <acknowledgementDetail typeCode="I">
          <text>fake Kanta test endpoint (kanta-guard demo): {escape(interaction)} accepted</text>
        </acknowledgementDetail>
      </acknowledgement>
    </MCCI_IN000002UV01>
  </soap:Body>
</soap:Envelope>
"""
    return HTTPStatus.OK, (("Content-Type", _SOAP_TYPES[soap_ns]),), envelope.encode("utf-8")


def _fault(reason: str) -> _Answer:
    """A SOAP 1.2 Sender fault (SOAP 1.2 Part 2 §7.4.1.2: a Sender fault is HTTP 400)."""
    text = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="{_SOAP12}">
  <env:Body>
    <env:Fault>
      <env:Code><env:Value>env:Sender</env:Value></env:Code>
      <env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason>
    </env:Fault>
  </env:Body>
</env:Envelope>
"""
    return HTTPStatus.BAD_REQUEST, (("Content-Type", _SOAP_TYPES[_SOAP12]),), text.encode("utf-8")


# --- FHIR R4 --------------------------------------------------------------------------------------


def _fhir(server: FakeKanta, method: str, rest: str, body: bytes) -> _Answer:
    """FHIR R4 RESTful create, update and read, on ``rest`` (the path after ``/fhir``)."""
    parts = [p for p in rest.split("/") if p]
    if method == "GET":
        return _read(server, parts)
    if not 1 <= len(parts) <= 2 or (method == "POST") != (len(parts) == 1):
        return _outcome(HTTPStatus.BAD_REQUEST, "not-supported", f"{method} /fhir{rest}")
    try:
        resource = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _outcome(HTTPStatus.BAD_REQUEST, "structure", "the body is not JSON")
    if not isinstance(resource, dict) or resource.get("resourceType") != parts[0]:
        return _outcome(HTTPStatus.BAD_REQUEST, "invalid", f"the body is not a {parts[0]} resource")
    if method == "PUT" and resource.get("id") not in (None, parts[1]):
        return _outcome(HTTPStatus.BAD_REQUEST, "invalid", "the resource id is not the URL's")
    version, rid = server.store(parts[0], parts[1] if method == "PUT" else None, resource)
    stored = server.resource(parts[0], rid) or {}
    status = HTTPStatus.CREATED if version == 1 else HTTPStatus.OK
    location = f"/fhir/{parts[0]}/{rid}/_history/{version}"
    headers = (
        ("Content-Type", _FHIR_TYPE),
        ("Location", location),
        ("ETag", f'W/"{version}"'),
    )
    return status, headers, _json(stored)


def _read(server: FakeKanta, parts: list[str]) -> _Answer:
    if parts == ["metadata"]:
        return HTTPStatus.OK, (("Content-Type", _FHIR_TYPE),), _json(_capabilities())
    found = server.resource(parts[0], parts[1]) if len(parts) == 2 else None
    if found is None:
        return _outcome(HTTPStatus.NOT_FOUND, "not-found", "no such resource")
    return HTTPStatus.OK, (("Content-Type", _FHIR_TYPE),), _json(found)


def _capabilities() -> dict[str, Any]:
    """A minimal CapabilityStatement: what this fake answers."""
    interactions = [{"code": c} for c in ("create", "update", "read")]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _now()[:10],
        "kind": "instance",
        "software": {"name": "fake Kanta test endpoint (kanta-guard demo)"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{"mode": "server", "resource": [{"type": t, "interaction": interactions} for t in (
            "Patient", "Observation", "Condition", "Encounter", "DocumentReference"
        )]}],
    }  # fmt: skip


def _outcome(status: int, code: str, text: str) -> _Answer:
    """An OperationOutcome with one issue (FHIR R4 issue-type ``code``)."""
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return status, (("Content-Type", _FHIR_TYPE),), _json(outcome)


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")
