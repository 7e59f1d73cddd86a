"""The pipeline: a request (or a file) in, one :class:`Report` out.

request → request line, URL, header and trailer fields → body: size check → Content-Encoding →
payload → the first parser that claims it → fields (to every detector) and nested payloads
(parsed in turn, depth-limited) → hits → findings (masked, keyed-hashed, under the policy) →
verdict. What the identity-code detector recognised and let pass (identity fields, valid test
codes) is noted on the way (``Report.recognised``), from what its screen and its detection
classify anyway.

Anything that cannot be fully read raises :class:`UnscannableError` somewhere below; it ends the
scan with an ``unscannable`` finding, which always blocks.

The output is bounded: the first ``model.MAX_FINDINGS`` findings that count are kept, the rest
only counted (``Report.omitted``) and ranked into the verdict; no finding is built for them
(masking and the keyed hash are most of a finding's cost).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .detectors import Detector, detectors_for
from .detectors.hetu import HetuDetector, Sightings
from .encoding import decode_content
from .errors import UnscannableError
from .idcode import clip, mask_any_form
from .masking import KeyedHasher
from .mediatype import parse_media_type
from .model import (
    MAX_COUNTED,
    MAX_FINDINGS,
    Action,
    CertificateItem,
    Context,
    Field,
    Finding,
    Hit,
    Party,
    Payload,
    Protocol,
    Report,
    Request,
    Role,
    Verdict,
)
from .parsers import PARSERS, Parser, ScanState
from .parsers.base import JOIN, BlobMemo, Item, decode_base64, sift
from .parsers.certificate import certificate_items, looks_like_certificate, pem_items
from .parsers.jose import jose_payloads
from .parsers.request import request_fields
from .parsers.text import clear_as_bytes, lines_only
from .policy import Policy
from .rules import UNSCANNABLE

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["MAX_CONTENT_TYPES", "Scanner", "protocol_of", "unscannable_report"]

_RANK = {Action.OFF: 0, Action.WARN: 1, Action.BLOCK: 2}
_VERDICT = {0: Verdict.PASS, 1: Verdict.WARN, 2: Verdict.BLOCK}


class _Tally:
    """What one scan has found so far: the findings kept, the rest counted, the fields read."""

    __slots__ = (
        "certificates",
        "dedupe",
        "fields",
        "findings",
        "keys",
        "notes",
        "omitted",
        "omitted_rank",
        "partial",
        "quiet_rank",
        "rank",
        "running",
    )

    def __init__(self, detectors: tuple[Detector, ...] = ()) -> None:
        self.findings: list[Finding] = []
        #: (rule, location, value hash) of the findings kept: another reading of the body
        #: (a second Content-Type) does not report the same place again.
        self.keys: set[tuple[str, str, str]] = set()
        self.omitted = 0
        self.omitted_rank = 0
        self.fields = 0
        self.dedupe = False
        self.rank = 0  # the highest action rank of a finding kept (2: one blocks)
        #: The detectors still asked about fields: past the cap, those whose rules cannot
        #: raise the verdict any more are left out (``Scanner._quiet``).
        self.running = detectors
        self.quiet_rank = 0  # the rank ``running`` was last chosen at
        #: True once a detector was left out: ``omitted`` is then a lower bound.
        self.partial = False
        #: The certificates found, judged when the whole request is read.
        self.certificates: list[CertificateItem] = []
        #: What the identity-code detector recognised and let pass (``Report.recognised``).
        self.notes = Sightings()

    @property
    def full(self) -> bool:
        """True once the cap is reached and something already blocks: only counting is left."""
        return len(self.findings) >= MAX_FINDINGS and max(self.rank, self.omitted_rank) == 2

    def add(self, finding: Finding) -> None:
        key = (finding.rule, finding.location, finding.value_hash)
        if self.dedupe and key in self.keys:
            return
        self.keys.add(key)
        self.findings.append(finding)
        self.rank = max(self.rank, _RANK[finding.action])


class Scanner:
    """Scans requests and files under one policy. Stateless between scans; safe to reuse."""

    def __init__(
        self,
        policy: Policy,
        hasher: KeyedHasher,
        *,
        parsers: tuple[Parser, ...] = PARSERS,
        detectors: tuple[Detector, ...] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.policy = policy
        self.registry = registry
        self._hasher = hasher
        self._parsers = parsers
        if detectors is None:
            detectors = detectors_for(policy, registry)
        # Detectors whose every rule is off are not run at all.
        self._detectors = tuple(
            d for d in detectors if any(policy.action(r.id) is not Action.OFF for r in d.rules)
        )
        self._systems = frozenset().union(*(d.systems for d in self._detectors))
        #: The detector that notes what it recognised (``Report.recognised``), if it runs.
        self._noter = next((d for d in self._detectors if isinstance(d, HetuDetector)), None)
        #: Detectors that judge parties (persons and organisations), not fields.
        self._judges = tuple(
            judge for d in self._detectors if (judge := getattr(d, "judge", None)) is not None
        )
        self._inert = BlobMemo()
        #: Whether a detector reads what markup splits as a reader joins it (a name in mixed
        #: content: ``Matti <b>Virtanen</b>``): ``ScanState.whole_elements``.
        self._whole_elements = any(getattr(d, "whole_elements", False) for d in self._detectors)
        #: Detectors that judge the certificates a request carries, once it is read.
        self._certificate_judges = tuple(
            judge
            for d in self._detectors
            if (judge := getattr(d, "judge_certificates", None)) is not None
        )
        #: Each detector's highest action rank over its rules (``_quiet``), by ``id``.
        self._ceilings = {
            id(d): max(_RANK[policy.action(r.id)] for r in d.rules) for d in self._detectors
        }
        #: The type of a payload found without one (``_plain``).
        self._untyped = parse_media_type(None)
        #: The detectors that count cheaply, by ``id``.
        self._cheap = frozenset(id(d) for d in self._detectors if getattr(d, "cheap_count", False))
        #: What counts past the findings cap: the detectors that count cheaply.
        self._counters: tuple[Callable[[Field], int], ...] = tuple(
            count
            for d in self._detectors
            if getattr(d, "cheap_count", False) and (count := getattr(d, "count", None))
        )

    def _screen(
        self, data: bytes, joined: bool = False, notes: Sightings | None = None
    ) -> frozenset[bytes] | None:
        """The needles of every detector (see ``Detector.screen``); None if one cannot tell.

        ``notes``: what the identity-code screen recognised is added to it only when the answer
        holds: when it is None, every field is read and the detector notes them instead.
        """
        needles: frozenset[bytes] = frozenset()
        noter = self._noter
        local = Sightings() if notes is not None and noter is not None else None
        for detector in self._detectors:
            if noter is not None and detector is noter:
                found = noter.screen(data, joined=joined, notes=local)
            else:
                found = detector.screen(data, joined=joined)
            if found is None:
                return None
            needles |= found
        if notes is not None and local is not None:
            notes.merge(local)
        return needles

    def _screen_joined(self, data: bytes) -> frozenset[bytes] | None:
        """``_screen`` of decoded text joined across markup (``Detector.screen``, ``joined``)."""
        return self._screen(data, joined=True)

    def _state(self, tally: _Tally) -> ScanState:
        """A fresh state for one scan, with this scanner's screens (noting into ``tally``) and
        memo."""
        return ScanState(
            self.policy.limits,
            partial(self._screen, notes=tally.notes),
            self._systems,
            self._inert,
            self._screen_joined,
            parties=bool(self._judges),
            whole_elements=self._whole_elements,
            certificates=bool(self._certificate_judges),
            dicom=self.policy.dicom,
        )

    # -- entry points ---------------------------------------------------------------------------

    def scan(self, request: Request) -> Report:
        """Scan a whole request: method, authority, URL, headers, trailers and body.

        A body declared with several ``Content-Type`` lines is scanned under each (a receiver
        may read either; deduplicated); several ``Content-Encoding`` lines are one list, in
        order (RFC 9110 §5.3: lines of a list field combine, comma-joined; §8.4), all undone.
        """
        tally = _Tally(self._detectors)
        state = self._state(tally)
        try:
            self._fields(request_fields(request, state), tally, state)
            if state.certificates:
                self._header_certificates(request, tally, state)
            types = _content_types(request)
            encodings = _header_values(request, "content-encoding")
            body = self._body(request.body, ", ".join(encodings) or None, state)
            for number, content_type in enumerate(types):
                if number:
                    state.charge(len(body), "body")  # every reading counts against the budget
                    tally.dedupe = True
                self._scan_decoded(body, content_type, tally, state)
            self._certificates(tally)
        except UnscannableError as exc:
            tally.findings.append(self._unscannable(exc))
        protocol = state.protocol or protocol_of(request)
        return self._report(tally, protocol, state)

    def scan_bytes(
        self, data: bytes, content_type: str | None = None, content_encoding: str | None = None
    ) -> Report:
        """Scan a body on its own (a file, a saved body); the type is sniffed when not given."""
        tally = _Tally(self._detectors)
        state = self._state(tally)
        try:
            body = self._body(data, content_encoding, state)
            self._scan_decoded(body, content_type, tally, state)
            self._certificates(tally)
        except UnscannableError as exc:
            tally.findings.append(self._unscannable(exc))
        return self._report(tally, state.protocol or Protocol.OTHER, state)

    # -- steps ----------------------------------------------------------------------------------

    def _scan_decoded(
        self, body: bytes, content_type: str | None, tally: _Tally, state: ScanState
    ) -> None:
        if body:
            payload = Payload(
                body, content_type, "", Context(Role.UNKNOWN), declared=content_type is not None
            )
            self._payload(payload, tally, state)

    def _body(self, body: bytes, content_encoding: str | None, state: ScanState) -> bytes:
        limits = self.policy.limits
        if len(body) > limits.max_body_bytes:
            raise UnscannableError(
                f"too large: body of {len(body)} bytes exceeds the {limits.max_body_bytes}-byte "
                "limit",
                "body",
            )
        if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
            body = decode_content(body, content_encoding, max_size=limits.max_decoded_bytes)
        state.charge(len(body), "body")
        return body

    def _payload(self, payload: Payload, tally: _Tally, state: ScanState) -> None:
        if payload.depth > self.policy.limits.max_depth:
            raise UnscannableError(
                f"content nested more than {self.policy.limits.max_depth} layers deep",
                mask_any_form(payload.location) or "body",
            )
        state.payloads += 1
        media = parse_media_type(payload.content_type)
        parser = next(p for p in self._parsers if p.claims(media, payload))
        self._fields(parser.parse(payload, media, state), tally, state)
        if parser.name not in _READS_ALL:
            # JOSE compact tokens in the payload's bytes: no parser of these sees one whole.
            # (The XML parser asks each text and attribute value itself: a document's bytes are
            # not searched again.)
            self._fields(jose_payloads(payload, state), tally, state)
        if state.certificates and parser.name not in ("certificate", "dicom"):
            # PEM blocks in the payload's bytes, whatever the parser: a block spans lines (the
            # text parser's fields) and may follow other text in a node or a string. (The DICOM
            # parser searches its own text values: its pixel data is no text.)
            self._fields(pem_items(payload, state), tally, state)

    def _fields(self, items: Iterable[Item], tally: _Tally, state: ScanState) -> None:
        noter, notes = self._noter, tally.notes
        items = iter(items)
        # (``_plain`` payloads, screened together: ``_batch``; text, and binary.)
        plain: list[Payload] = []
        blobs: dict[str, list[Payload]] = {}  # (by kind: see ``text.lines_only``)
        for item in items:
            if tally.full:
                self._batch(plain, tally, state)
                for same in blobs.values():
                    self._batch_blobs(same, tally, state)
                self._count_rest(item, items, tally, state)
                return
            if isinstance(item, Field):
                tally.fields += 1
                for detector in tally.running:
                    if tally.full:
                        # The cap is reached and the verdict is block: nothing can change it,
                        # so the rest is only counted, at a fraction of the cost, by the
                        # detectors that can count cheaply (identity codes: a flood of codes is
                        # what fills a report); the others' further hits are not counted
                        # (``Report.omitted`` is then a lower bound).
                        count = getattr(detector, "count", None)
                        cheap = getattr(detector, "cheap_count", False)
                        if count is not None and cheap and item.view_of is None:
                            tally.omitted += count(item)
                        continue
                    if noter is not None and detector is noter:
                        hits = noter.detect(item, notes)
                    else:
                        hits = detector.detect(item)
                    for hit in hits:
                        self._keep(hit, item.view_of, tally)
                        if tally.full:
                            if id(detector) not in self._cheap:
                                break  # (only the cheap counters count on: see above)
                        elif tally.partial and detector not in tally.running:
                            break  # (quiet now: the rest of this field's hits is not made)
            elif isinstance(item, Party):
                for judge in self._judges:
                    for hit in judge(item):
                        self._keep(hit, None, tally)
            elif isinstance(item, CertificateItem):
                tally.certificates.append(item)
            elif not item.data:
                continue
            elif (kind := self._plain(item, state)) == "text":
                plain.append(item)
                if len(plain) == _BATCH_SIZE:
                    self._batch(plain, tally, state)
            elif kind is not None:
                same = blobs.setdefault(kind, [])
                same.append(item)
                if len(same) == _BLOB_BATCH_SIZE:
                    self._batch_blobs(same, tally, state)
            else:
                self._payload(item, tally, state)
        self._batch(plain, tally, state)
        for same in blobs.values():
            self._batch_blobs(same, tally, state)

    def _plain(self, payload: Payload, state: ScanState) -> str | None:
        """Whether a payload found inside another may be screened with others, and how:
        "text" (``_batch``), a kind of binary (``_batch_blobs``, with others of that kind) or
        None (parsed alone). Small, untyped, and such that parsing it yields nothing but
        fields of its lines (the text parser's ``lines_only``), and the text parser claims
        it."""
        data = payload.data
        if (
            payload.content_type is not None
            or payload.declared
            or not 0 < payload.depth <= self.policy.limits.max_depth
            or len(data) > _BATCH_BYTES
        ):
            return None
        media = self._untyped
        room = max(state.limits.max_decoded_bytes - state.decoded_bytes, 0)
        kind = lines_only(payload, media, room)
        if kind is None:
            return None
        return (
            kind
            if next(p for p in self._parsers if p.claims(media, payload)).name == "text"
            else None
        )

    def _batch(self, plain: list[Payload], tally: _Tally, state: ScanState) -> None:
        """Parse the ``_plain`` payloads ``plain`` holds (and empty it), screened together:
        each alone costs a screen by every detector, tens of microseconds of fixed costs,
        which made a body of many decoded Base64 tokens scan at 0.3 MB/s.

        Their bytes joined by ``JOIN`` (a line of "#" between two line breaks) are a text
        whose lines are their lines; its screen (``Detector.screen``) names a needle in every
        field of it that could produce a hit, and each payload's fields (its lines, stretches
        over its line breaks) are fields of that text. So a payload in which no needle stands
        yields no hit: it is counted as scanned and not parsed. The others are parsed as they
        would be alone (all of them if the screen cannot tell, or names so many needles that
        finding them costs more). What the identity-code screen recognises is noted: the "#"
        line keeps a code from being read across two payloads (whitespace may separate a
        code's parts; ``010181`` ending one and ``-900C`` opening the next was noted as a test
        code no payload holds)."""
        if not plain:
            return
        batch = plain[:]
        plain.clear()
        joined = JOIN.join(p.data for p in batch)
        needles = self._screen(joined, notes=tally.notes)
        if needles is None or len(needles) > _BATCH_NEEDLES or len(batch) == 1:
            for payload in batch:
                self._payload(payload, tally, state)
            return
        holders = _holding(batch, joined, needles)
        for number, payload in enumerate(batch):
            if number in holders:
                self._payload(payload, tally, state)
            else:
                state.payloads += 1

    def _batch_blobs(self, blobs: list[Payload], tally: _Tally, state: ScanState) -> None:
        """Parse the binary ``_plain`` payloads ``blobs`` holds (and empty it), unless the
        screen of their bytes joined (``JOIN``) rules out every field of every reading of
        them (``clear_as_bytes``: what the text parser asks of each first): then each is
        counted as scanned. (Their readings are not their bytes, so a needle cannot tell which
        of them to read: all are parsed if the screen names any. Fewer at a time than text:
        random bytes often hold what the e-mail screen cannot tell.)"""
        if not blobs:
            return
        batch = blobs[:]
        blobs.clear()
        if len(batch) == 1:
            self._payload(batch[0], tally, state)
            return

        def clear(group: list[Payload]) -> bool:
            return clear_as_bytes(JOIN.join(p.data for p in group), state.screen)

        # (In halves where the whole is not ruled out: one chance "&#" in random bytes does
        # not send every other blob to the text parser.)
        live = sift(batch, clear)
        state.payloads += len(batch) - len(live)
        for payload in live:
            self._payload(payload, tally, state)

    def _count_rest(
        self, first: Item, items: Iterator[Item], tally: _Tally, state: ScanState
    ) -> None:
        """The rest of a payload once the cap is reached and the verdict is block: only the
        cheap counters run on its fields (see ``_fields``), in one tight loop, until
        ``MAX_COUNTED`` are counted; past that nothing more is read (each enclosing payload
        stops as well: the verdict cannot change, and the count is a lower bound)."""
        counters = self._counters
        for item in itertools.chain((first,), items):
            if tally.omitted >= MAX_COUNTED:
                return
            if isinstance(item, Field):
                tally.fields += 1
                if item.view_of is None:
                    for count in counters:
                        tally.omitted += count(item)
            elif isinstance(item, Party | CertificateItem):
                continue  # (the verdict is block already: nothing left to judge)
            elif item.data:
                self._payload(item, tally, state)

    def _header_certificates(self, request: Request, tally: _Tally, state: ScanState) -> None:
        """PEM certificates in header and trailer values (a client certificate a reverse proxy
        forwards: ``X-SSL-Client-Cert``, ``ssl-client-cert``, as written or percent-encoded),
        which the header fields' Base64 tokens do not hold whole."""
        for section, fields in (("header", request.headers), ("trailer", request.trailers)):
            for index, (name, value) in enumerate(fields):
                if len(value) < _SHORTEST_CERTIFICATE:
                    continue
                text = unquote(value) if "%" in value else value
                plain = name.isascii() and not any(c.isdigit() for c in name)
                where = f"{section}:{name}" if plain else f"{section}:{index}"
                if "BEGIN" in text:
                    payload = Payload(text.encode("utf-8", "surrogateescape"), "text/plain", where)
                    self._fields(pem_items(payload, state), tally, state)
                    continue
                # A bare Base64 DER certificate (no PEM armour): binary once decoded, so the
                # header parser, which follows Base64 only to text, does not.
                der = decode_base64(text.strip())
                if der is not None and looks_like_certificate(der):
                    self._fields(certificate_items(der, where + "!base64", Context()), tally, state)

    def _certificates(self, tally: _Tally) -> None:
        """Judge the certificates the request carried, each with the others as its possible
        intermediates (``CertificateItem``)."""
        if not tally.certificates:
            return
        for judge in self._certificate_judges:
            for hit in judge(tally.certificates):
                self._keep(hit, None, tally)

    def _keep(self, hit: Hit, view_of: str | None, tally: _Tally) -> None:
        """Turn a hit into a finding kept in the tally, or count it past the cap."""
        if len(tally.findings) >= MAX_FINDINGS:
            # Past the cap: counted and ranked, not built. (A hit of another reading of a
            # field, view_of, may repeat one kept: not counted.)
            rank = _RANK[self.policy.action(hit.rule)]
            if rank and view_of is None:
                tally.omitted += 1
            tally.omitted_rank = max(tally.omitted_rank, rank)
            self._quiet(tally)
            return
        finding = self._finding(hit)
        if finding is not None and not _reported(finding, view_of, tally.findings):
            tally.add(finding)

    def _quiet(self, tally: _Tally) -> None:
        """Past the cap, leave out the detectors whose every rule's action is at most the
        verdict so far: their further hits could only be counted, never change the verdict
        (a body of 60,000 distinct phone numbers under a policy that warns on them would
        otherwise cost a phone-number match each). ``Report.omitted`` is then a lower bound
        (``Report.omitted_partial``)."""
        rank = max(tally.rank, tally.omitted_rank)
        if rank <= tally.quiet_rank or rank == _RANK[Action.BLOCK]:
            return  # (a block: ``_Tally.full``, and only the cheap counters run on)
        tally.quiet_rank = rank
        ceilings = self._ceilings
        running = tuple(d for d in tally.running if ceilings[id(d)] > rank)
        if len(running) != len(tally.running):
            tally.running = running
            tally.partial = True

    # -- findings -------------------------------------------------------------------------------

    def _finding(self, hit: Hit) -> Finding | None:
        action = self.policy.action(hit.rule)
        if action is Action.OFF:
            return None
        return Finding(
            rule=hit.rule,
            action=action,
            location=clip(hit.field.location),
            role=hit.field.role,
            evidence=hit.masked,
            value_hash=self._hasher(hit.raw),
            explanation=hit.explanation,
        )

    @staticmethod
    def _unscannable(exc: UnscannableError) -> Finding:
        return Finding(
            rule=UNSCANNABLE.id,
            action=Action.BLOCK,
            location=clip(exc.location),
            role=Role.UNKNOWN,
            evidence="",
            value_hash="",
            explanation=clip(exc.reason),
        )

    @staticmethod
    def _report(tally: _Tally, protocol: Protocol, state: ScanState) -> Report:
        rank = max((_RANK[f.action] for f in tally.findings), default=0)
        return Report(
            verdict=_VERDICT[max(rank, tally.omitted_rank)],
            findings=tuple(tally.findings),
            protocol=protocol,
            fields_scanned=tally.fields,
            payloads_scanned=state.payloads,
            omitted=tally.omitted,
            omitted_partial=tally.partial,
            recognised=tally.notes.result(),
            resource=state.resource,
        )


#: Payloads screened together (``Scanner._batch``): at most this many bytes each, this many
#: at a time; past this many needles, each is parsed alone (finding them would cost more).
_BATCH_BYTES = 256
_BATCH_SIZE = 128
_BLOB_BATCH_SIZE = 16
_BATCH_NEEDLES = 16


def _holding(batch: list[Payload], joined: bytes, needles: frozenset[bytes]) -> set[int]:
    """The numbers of the payloads of ``batch`` in whose bytes (``joined``: joined by
    ``JOIN``) a needle stands, wholly or in part (a needle over a join is in both: more is
    read, never less)."""
    starts: list[int] = []
    at = 0
    for payload in batch:
        starts.append(at)
        at += len(payload.data) + len(JOIN)
    holders: set[int] = set()
    for needle in needles:
        if not needle:
            return set(range(len(batch)))
        at = joined.find(needle)
        while at != -1:
            first = bisect.bisect_right(starts, at) - 1
            last = bisect.bisect_right(starts, at + len(needle) - 1) - 1
            holders.update(range(first, last + 1))
            at = joined.find(needle, at + 1)
    return holders


#: Fewer characters than any certificate's Base64 (its DER is a few hundred bytes at least).
_SHORTEST_CERTIFICATE = 300

#: Parsers that find JOSE compact tokens in what they read themselves (see ``_payload``).
_READS_ALL = frozenset({"certificate", "xml", "container", "multipart", "dicom"})

#: Distinct Content-Type readings of one body scanned at most; more is no client's mistake but
#: a way to multiply the scan's cost: unscannable.
MAX_CONTENT_TYPES = 4


def _content_types(request: Request) -> list[str | None]:
    """Every distinct Content-Type the request declares (the same media type and parameters
    once), in order; ``[None]`` when it declares none."""
    distinct: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    for value in _header_values(request, "content-type"):
        media = parse_media_type(value)
        distinct.setdefault((media.type, tuple(sorted(media.params.items()))), value)
    if len(distinct) > MAX_CONTENT_TYPES:
        raise UnscannableError(
            f"{len(distinct)} different Content-Type headers (more than {MAX_CONTENT_TYPES})",
            "header:Content-Type",
        )
    return [*distinct.values()] or [None]


def _header_values(request: Request, name: str) -> list[str]:
    """The values of every header line of that name (case-insensitive), in order, stripped;
    empty ones left out."""
    lowered = name.lower()
    return [v.strip() for k, v in request.headers if k.lower() == lowered and v.strip()]


def _reported(finding: Finding, view_of: str | None, findings: list[Finding]) -> bool:
    """True if ``finding`` comes from another reading of a field (``Field.view_of``) and that
    field, or a node inside it (an element's text read joined: ``…/paragraph`` holds
    ``…/paragraph/text()``), already reported the same value under the same rule: one finding
    per place. Another reading of the same place (``…/@value!unescaped`` beside its
    ``…/@value!words``, two ways of undoing its escapes) counts as that place too."""
    if view_of is None:
        return False
    # A view of a view (a line's HTML reading rendered) is of the first reading's place too:
    # the readings' suffixes (``line 3!html``) are taken off one by one, not a location's.
    places = [clip(view_of)]
    base = view_of
    while True:
        head, bang, tail = base.rpartition("!")
        if not bang or ":" in tail or "/" in tail:
            break
        base = head
        places.append(clip(base))
    return any(
        f.rule == finding.rule
        and f.value_hash == finding.value_hash
        and any(
            f.location == place or f.location.startswith((place + "/", place + "!"))
            for place in places
        )
        for f in findings
    )


def unscannable_report(request: Request, reason: str, location: str = "body") -> Report:
    """A request refused unread (too large for the proxy, its scan failed or timed out)."""
    finding = Scanner._unscannable(UnscannableError(reason, location))
    return Report(verdict=Verdict.BLOCK, findings=(finding,), protocol=protocol_of(request))


def protocol_of(request: Request) -> Protocol:
    """The client's protocol when no payload revealed it (a GET, an unparsable body)."""
    content_type = (request.header("content-type") or "").lower()
    accept = (request.header("accept") or "").lower()
    if "application/soap+xml" in content_type:
        return Protocol.SOAP12
    if request.header("soapaction") is not None:
        return Protocol.SOAP11
    if "fhir+xml" in content_type or (not content_type and "fhir+xml" in accept):
        return Protocol.FHIR_XML
    if "fhir" in content_type or "fhir" in accept or "_format=json" in request.target:
        return Protocol.FHIR_JSON
    return Protocol.OTHER
