"""``kanta-guard demo``: a fake Kanta test endpoint, the guard in front of it, and a scripted
system under test, all on loopback, so a newcomer sees the guard block within a minute.

- :mod:`~kanta_guard.demo.endpoint`: the fake endpoint (SOAP 1.2 HL7 V3 acknowledgements, FHIR
  R4 create and update), a stdlib HTTP server;
- :mod:`~kanta_guard.demo.script`: the messages the system under test sends (clean ones with
  900-series test identities, dirty ones with a real-range code, a real-looking name and phone,
  a personal e-mail, a production certificate) and how one is sent through the proxy;
- :mod:`~kanta_guard.demo.session`: the three started together and stopped together.

Nothing here imports mitmproxy: the guard runs as ``python -m kanta_guard web`` in a process
group of its own.
"""

from __future__ import annotations

from .endpoint import FakeKanta
from .script import Message, Outcome, messages, registry_text, send
from .session import DemoOptions, run_demo

__all__ = [
    "DemoOptions",
    "FakeKanta",
    "Message",
    "Outcome",
    "messages",
    "registry_text",
    "run_demo",
    "send",
]
