"""DICOM's network protocol as the guard reads it: upper-layer PDUs, DIMSE commands, one relay.

- :mod:`~kanta_guard.dimse.pdu`: the upper layer's PDUs (PS3.8 §9.3), cut from a byte stream,
  parsed and built;
- :mod:`~kanta_guard.dimse.commands`: command sets (PS3.7), read, and the guard's failure
  responses built;
- :mod:`~kanta_guard.dimse.relay`: one association: what passes, what waits for a verdict, what
  is answered or aborted.

Pure: no mitmproxy, no sockets. The proxy side is :mod:`kanta_guard.proxy.dimse`.
"""

from __future__ import annotations

from .commands import Command, CommandField, error_comment, failure_response
from .pdu import Abort, AssociateAC, AssociateRJ, AssociateRQ, PData, PduReader, ProtocolError
from .relay import DataSet, Limits, Output, Phase, Refusal, Relay

__all__ = [
    "Abort",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "Command",
    "CommandField",
    "DataSet",
    "Limits",
    "Output",
    "PData",
    "PduReader",
    "Phase",
    "ProtocolError",
    "Refusal",
    "Relay",
    "error_comment",
    "failure_response",
]
