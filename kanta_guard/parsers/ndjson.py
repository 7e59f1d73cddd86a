"""NDJSON parser: newline-delimited JSON, a document per line (FHIR Bulk Data export and import).

``application/x-ndjson``, ``application/fhir+ndjson`` (FHIR Bulk Data Access IG, "Output File
Format"), JSON Lines. Each line is handed to the JSON parser as a declared JSON document of its
own, located ``line[N]`` (so its fields are ``line[N]:/pointer``): a line that is not JSON is
unscannable, as a declared JSON body is. Empty lines (and a last line break) are skipped, as the
NDJSON specification allows; a line ends at LF, its CR removed (ndjson-spec §3.2).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..charset import readings
from ..mediatype import MediaType
from ..model import Payload
from .base import Item, ScanState

__all__ = ["NdjsonParser"]


class NdjsonParser:
    """Splits NDJSON into its lines, each a JSON payload; register it before the JSON parser."""

    name = "ndjson"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return media.is_ndjson

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        data = payload.data
        charset = media.params.get("charset")
        if charset is not None or data[:1] in (b"\xff", b"\xfe", b"\x00") or data[1:2] == b"\x00":
            # Not UTF-8 as sent (RFC 8259 §8.1 asks UTF-8; a client may still label another):
            # split the first reading's lines, re-encoded, so every line is read in that charset.
            # Other readings of the whole body are not split again: each line's JSON parse
            # reads its own bytes in UTF-8 and, with its BOM or NUL pattern, in UTF-16/32.
            text, _ = readings(data, charset, strict=True)[0]
            data = text.encode("utf-8", "surrogatepass")
        prefix = payload.location + ":" if payload.location else ""
        start = 0
        number = 0
        while start < len(data):
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
            number += 1
            line = data[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip(b" \t"):
                continue
            # (Not charged against the decoded-bytes budget: a line is a slice of the body,
            # already charged, not more content.)
            yield Payload(
                line,
                "application/json",
                f"{prefix}line[{number}]",
                payload.owner,
                depth=payload.depth + 1,
                declared=True,
            )
