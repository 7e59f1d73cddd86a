"""Test helpers: fixture templates, real-range codes computed on the fly, request builders."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kanta_guard.policy import Policy

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def code(date: str, sign: str, number: int) -> str:
    """A valid code with the given date, century sign and individual number (DVV checksum)."""
    return f"{date}{sign}{number:03d}{_CHECK[int(date + f'{number:03d}') % 31]}"


#: Valid real-range codes (individual number 002-899): only ever used to prove they are blocked.
REAL = code("131052", "-", 308)
REAL_2 = code("010203", "A", 456)
#: Valid 900-series test codes.
TEST = "010181-900C"
TEST_CODES = {
    "patient": "020516C903K",
    "guardian": "010181-900C",
    "author": "231069-9711",
    "participant": "030875-999Y",
    "narrative": "010594Y9032",
    "observation": "020594X903P",
    "registry": "030594W903B",
    "subject": "040594V9030",
    "saml": "050594U903M",
    "contact": "010516B903X",
    "contained": "010181-900C",
}


def b64(data: str | bytes) -> str:
    """Base64 of text (UTF-8) or bytes."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def render(name: str, **values: str) -> str:
    """A fixture template with test codes everywhere but the placements given."""
    return Template((FIXTURES / name).read_text("utf-8")).substitute({**TEST_CODES, **values})


def cda(**values: str) -> str:
    """The minor-patient CDA document."""
    return render("cda_minor.xml", **values)


def soap_with_cda(cda_text: str | None = None, **values: str) -> str:
    """The HL7 V3 SOAP message carrying a CDA in Base64."""
    inner = cda_text if cda_text is not None else cda()
    return render("hl7v3_soap.xml", cda_b64=b64(inner), **values)


def bundle(
    binary: str = "Muistiinpano ilman tunnuksia", attachment: object = None, **values: str
) -> str:
    """The FHIR transaction Bundle; ``binary`` text and ``attachment`` JSON go in as Base64."""
    attachment = attachment if attachment is not None else {"note": "ei tunnuksia"}
    return render(
        "fhir_bundle.json",
        binary_b64=b64(binary),
        attachment_b64=b64(json.dumps(attachment)),
        **values,
    )


#: The personal-data rules (names, contacts, addresses): the identity-code tests turn them off,
#: so that a fixture's test names do not change the verdicts they are about.
PERSONAL_RULES = (
    "name.unregistered",
    "name.mismatch",
    "name.narrative",
    "email.personal",
    "phone.personal",
    "address.personal",
)


def identity_policy_text() -> str:
    """A policy file's text: the personal-data rules off, the rest as embedded."""
    rules = "\n".join(f'"{rule}" = "off"' for rule in PERSONAL_RULES)
    return f"[rules]\n{rules}\n"


def identity_policy() -> Policy:
    """The embedded default policy with the personal-data rules off: identity codes only."""
    from kanta_guard.policy import parse_policy

    return parse_policy(identity_policy_text(), "<identity-code rules only>")


def identity_policy_file(folder: Path) -> Path:
    """``identity_policy`` as a file in ``folder`` (for the proxy and the CLI)."""
    path = folder / "identity-policy.toml"
    path.write_text(identity_policy_text(), "utf-8")
    return path
