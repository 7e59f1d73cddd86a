"""Recorded traffic for ``scan``: HAR files read into the pipeline's requests, one by one.

A supplier checks a whole test campaign afterwards: every request a recording holds becomes a
:class:`~kanta_guard.model.Request` and is judged by :meth:`Scanner.scan
<kanta_guard.pipeline.Scanner.scan>`, the method the proxy's HTTP guard calls, so the URL, the
headers and the body are judged as they would have been live. This module reads HAR 1.2
(http://www.softwareishard.com/blog/har-12-spec/); mitmproxy flow files are read by
:mod:`kanta_guard.proxy.flowfile` (only the proxy package imports mitmproxy) into the same
:class:`Recorded` values.

What a HAR loses, the scan does not pretend to have: a request whose body the HAR omitted
(``bodySize`` or ``Content-Length`` says there was one, ``postData`` holds none) or cut short
(fewer bytes than ``bodySize``), a multipart body kept only as ``params``, or Base64 that does
not decode is a :class:`Recorded` with an ``error``, counted unreadable, never passed. A HAR is
one JSON document: it is parsed whole (``json.loads``: memory of a few times the file's size),
then its entries are turned into requests one at a time.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from .idcode import clip, mask_any_form
from .mediatype import parse_media_type
from .model import Request

__all__ = [
    "FLOW_SUFFIXES",
    "HAR_SUFFIXES",
    "Recorded",
    "RecordingError",
    "flow_sniff_offset",
    "har_entry",
    "read_har",
    "shown_url",
]

#: File names read as HAR (HAR 1.2 is JSON; a ``.json`` file is scanned as a JSON body).
HAR_SUFFIXES = (".har",)
#: File names read as mitmproxy flow files (``mitmdump -w``); others are sniffed
#: (:func:`flow_sniff_offset`).
FLOW_SUFFIXES = (".flow", ".flows", ".mitm")

#: The longest URL shown in a result's name (masked first, then cut).
_URL_SHOWN = 200
#: A tnetstring's length prefix (mitmproxy's flow format): at most 12 digits, then ``:``.
_TNETSTRING_HEAD = re.compile(rb"([1-9][0-9]{0,11}|0):")


class RecordingError(Exception):
    """A file that is not the recording it was taken for (not a HAR, a corrupt or truncated
    flow file): an error for that file, after the requests read before it (if any)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request of a recording, ready to scan, or why it cannot be judged.

    ``number`` counts the recording's entries (or flows) from 1. ``request`` is the request as
    sent; ``data`` instead holds what the client of a non-HTTP flow (TCP, UDP, DNS) sent, to be
    scanned as a file; neither when ``error`` says why the recording does not hold it whole.
    ``method`` and ``url`` are as recorded (raw: show them only through :meth:`name`).
    """

    number: int
    method: str
    url: str
    request: Request | None = None
    data: bytes | None = None
    error: str = ""

    def name(self) -> str:
        """``#N METHOD URL`` with the URL masked (:func:`shown_url`), for a result's path."""
        return f"#{self.number} {clip(self.method, 20)} {shown_url(self.url)}".rstrip()


def shown_url(url: str) -> str:
    """A recorded URL as output may show it: the scheme, authority and path with identity
    codes masked in every form (also percent-encoded), each query value replaced by ``…``
    (a value may be a name or an e-mail address, which masking does not cover), no fragment;
    cut to 200 characters."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an invalid port or IPv6 literal: the URL up to its query
        return clip(url.split("?", 1)[0].split("#", 1)[0], _URL_SHOWN)
    query = "&".join(
        f"{pair.partition('=')[0]}=…" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    head = f"{parts.scheme}://{parts.netloc}" if parts.scheme or parts.netloc else ""
    text = head + parts.path + (f"?{query}" if query else "")
    return clip(text, _URL_SHOWN)


def flow_sniff_offset(head: bytes) -> int | None:
    """Where a file starting with ``head`` (its first 13 bytes or more) must hold ``}`` to be a
    mitmproxy flow file, or None when it does not start like one.

    A flow file is a sequence of tnetstring dictionaries (``N:``, N bytes, then ``}``): a
    random file that starts with digits and a colon and has ``}`` exactly there is unlikely.
    """
    match = _TNETSTRING_HEAD.match(head)
    return match.end() + int(match.group(1)) if match else None


def read_har(data: bytes) -> Iterator[Recorded]:
    """Every request of a HAR file's bytes, in order.

    Raises :class:`RecordingError` when the bytes are not a HAR (not JSON, no ``log.entries``
    list): then no request of it is yielded. An entry that cannot be read is a
    :class:`Recorded` with an ``error``.
    """
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(f"not a HAR file: {_json_error(exc)}") from None
    except RecursionError:
        raise RecordingError("not a HAR file: JSON nested too deeply") from None
    log = document.get("log") if isinstance(document, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise RecordingError("not a HAR file: no log.entries list")
    for number, entry in enumerate(entries, 1):
        yield har_entry(number, entry)


def har_entry(number: int, entry: object) -> Recorded:
    """The request of one HAR entry (``log.entries[number - 1]``)."""
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict):
        return Recorded(number, "", "", error="the HAR entry has no request")
    method = request.get("method")
    url = request.get("url")
    if not isinstance(method, str) or not isinstance(url, str) or not method:
        return Recorded(number, "", "", error="the HAR entry's request has no method or URL")
    try:
        headers = _har_pairs(request.get("headers", []), "headers")
        parts = urlsplit(url)
        target = _target(parts.path, parts.query, request.get("queryString", []), method, url)
        body, headers = _har_body(request, headers)
    except _Incomplete as exc:
        return Recorded(number, method, url, error=str(exc))
    except ValueError:  # urlsplit: an invalid port or IPv6 literal (its message quotes it)
        return Recorded(number, method, url, error="the URL cannot be read (its port or address)")
    pseudo = dict((k.lower(), v) for k, v in headers if k.startswith(":"))
    authority = pseudo.get(":authority") or _authority(parts.netloc)
    return Recorded(
        number,
        method,
        url,
        Request(
            method=method,
            target=target,
            # HTTP/2 pseudo-headers (Chrome lists them) are not header fields: mitmproxy keeps
            # them apart too, and :authority is the authority.
            headers=tuple((k, v) for k, v in headers if not k.startswith(":")),
            body=body,
            host=parts.hostname or "",
            authority=authority,
        ),
    )


class _Incomplete(Exception):
    """The HAR does not hold this request whole (the reason is the message)."""


def _json_error(exc: UnicodeDecodeError | json.JSONDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 at byte {exc.start}"
    return f"JSON parse error at line {exc.lineno} column {exc.colno}: {exc.msg}"


def _har_pairs(items: object, what: str) -> list[tuple[str, str]]:
    """HAR ``[{name, value}]`` as pairs, in order."""
    if not isinstance(items, list):
        raise _Incomplete(f"the request's {what} are not a list")
    pairs = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        value = item.get("value", "") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(value, str):
            raise _Incomplete(f"a request {what[:-1]} without a name or a text value")
        pairs.append((name, value))
    return pairs


def _target(path: str, query: str, query_string: object, method: str, url: str) -> str:
    """The request target as sent: the URL's path and query (the fragment is never sent).

    ``queryString`` is the query parsed again, so the URL's own query wins; a HAR writer that
    kept the parameters only there gets them back, form-encoded."""
    if method.upper() == "CONNECT":
        return urlsplit(url).netloc or path
    target = path or "/"
    if query:
        return f"{target}?{query}"
    pairs = _har_pairs(query_string, "queryString entries") if query_string else []
    return f"{target}?{urlencode(pairs, quote_via=quote)}" if pairs else target


def _authority(netloc: str) -> str:
    """host[:port] of a URL's authority (user information is not sent in HTTP)."""
    return netloc.rpartition("@")[2]


def _har_body(
    request: Mapping[str, object], headers: list[tuple[str, str]]
) -> tuple[bytes, list[tuple[str, str]]]:
    """The body of a HAR request, and the headers it is to be judged with.

    ``postData.text`` is text (HAR 1.2), unless a writer marked it Base64 (``encoding`` or
    ``_encoding``, as ``content.encoding`` is for responses): then the bytes as recorded. Text
    is encoded in the charset the Content-Type declares, where it can be. A text body under a
    ``Content-Encoding`` is the content already decoded (compressed bytes do not survive as JSON
    text; mitmproxy's and the browsers' HAR export write the decoded text): the header is then
    dropped, else the scan would try to decompress plain text and fail.
    """
    size = request.get("bodySize")
    declared = size if isinstance(size, int) and size > 0 else None
    length = _content_length(headers)
    post = request.get("postData")
    if post is None:
        if declared or length:
            raise _Incomplete(
                f"the HAR omits the body ({declared or length} bytes were sent): "
                "it cannot be judged"
            )
        return b"", headers
    if not isinstance(post, dict):
        raise _Incomplete("the request's postData is not an object")
    text = post.get("text")
    encoding = post.get("encoding", post.get("_encoding"))
    if text is None:
        return _from_params(post, headers, declared or length)
    if not isinstance(text, str):
        raise _Incomplete("the request's postData.text is not text")
    if isinstance(encoding, str) and encoding.lower() == "base64":
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _Incomplete("the request's Base64 postData does not decode") from None
        wire = True
    elif encoding not in (None, ""):
        raise _Incomplete(f"the request's postData has an unknown encoding {clip(str(encoding))}")
    else:
        body = _encoded(text, headers, post.get("mimeType"))
        wire = False
    encoded = [v for k, v in headers if k.lower() == "content-encoding" and v.strip()]
    coded = any(v.strip().lower() != "identity" for v in encoded)
    if coded and not wire:
        headers = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
    expected = declared or length
    if expected and len(body) < expected and (wire or not coded):
        raise _Incomplete(
            f"the HAR holds {len(body)} of the body's {expected} bytes: it was cut short, "
            "so it cannot be judged"
        )
    return body, headers


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length" and value.strip().isdigit():
            return int(value.strip()) or None
    return None


def _encoded(text: str, headers: list[tuple[str, str]], mime: object) -> bytes:
    """HAR text as the bytes sent: in the declared charset where it encodes, else UTF-8."""
    declared = next((v for k, v in headers if k.lower() == "content-type"), None)
    content_type = declared if declared is not None else mime if isinstance(mime, str) else ""
    charset = parse_media_type(content_type).params.get("charset")
    if charset:
        try:
            return text.encode(charset)
        except (LookupError, UnicodeEncodeError):
            pass
    try:
        # A writer that decoded bytes leniently (mitmproxy: surrogate escapes) gets them back.
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _from_params(
    post: Mapping[str, object], headers: list[tuple[str, str]], expected: int | None
) -> tuple[bytes, list[tuple[str, str]]]:
    """A body kept only as ``params``: a URL-encoded form is rebuilt from them; any other
    (multipart: file parts keep a name, not their bytes) cannot be judged."""
    mime = post.get("mimeType")
    media = parse_media_type(mime if isinstance(mime, str) else "")
    params = post.get("params")
    if media.type == "application/x-www-form-urlencoded" and isinstance(params, list):
        body = urlencode(_har_pairs(params, "params"), quote_via=quote).encode("utf-8")
        return body, headers
    if not params and not expected:
        return b"", headers
    raise _Incomplete(
        f"the HAR keeps the {mask_any_form(media.type) or 'body'} only as params, "
        "not its bytes: it cannot be judged"
    )
