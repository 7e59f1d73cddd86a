"""Parsers: each claims the payloads it understands and yields their fields lazily.

The registry is an explicit ordered tuple: the first parser that claims a payload reads it, and
the text parser, last, claims everything, so nothing is skipped for being unfamiliar.
"""

from __future__ import annotations

from .base import Item, Parser, ScanState
from .certificate import CertificateParser
from .container import ContainerParser
from .dicom import DicomParser
from .form import FormParser
from .json import JsonParser
from .multipart import MultipartParser
from .ndjson import NdjsonParser
from .request import header_fields, url_fields
from .text import TextParser
from .xml import XmlParser

__all__ = [
    "PARSERS",
    "CertificateParser",
    "ContainerParser",
    "DicomParser",
    "FormParser",
    "Item",
    "JsonParser",
    "MultipartParser",
    "NdjsonParser",
    "Parser",
    "ScanState",
    "TextParser",
    "XmlParser",
    "header_fields",
    "url_fields",
]

PARSERS: tuple[Parser, ...] = (
    MultipartParser(),
    FormParser(),
    # Before the container parser: a DICOM Part 10 file's 128-byte preamble may be a TIFF
    # header (a legal "dual-personality" file), which the container parser would claim.
    DicomParser(),
    # Before XML, JSON and text: they would read a zip, a PDF or a gzip as a document or lines.
    ContainerParser(),
    # Before the text parser, which would read a DER certificate as an inert blob.
    CertificateParser(),
    XmlParser(),
    NdjsonParser(),
    JsonParser(),
    TextParser(),
)
