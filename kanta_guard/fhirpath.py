"""FHIRPath for the guard's locations in a FHIR body, for ``OperationOutcome.issue.expression``.

FHIR R4 ``OperationOutcome.issue.expression`` is "a simple subset of FHIRPath limited to element
names, repetition indicators and the default child accessor", rooted at the resource the client
sent (https://hl7.org/fhir/R4/operationoutcome-definitions.html#OperationOutcome.issue.expression);
``issue.location`` (deprecated, XPath) keeps the guard's own location. The guard locates fields
by JSON pointer (RFC 6901) in FHIR JSON and by an XPath of local names in FHIR XML
(``parsers/json.py``, ``parsers/xml.py``); this module turns either into that FHIRPath:

- ``/entry/0/resource/identifier/0/value`` in a Bundle →
  ``Bundle.entry[0].resource.identifier[0].value``
- ``/Bundle/entry[1]/resource/Patient/identifier[2]/value/@value`` →
  ``Bundle.entry[0].resource.identifier[1].value`` (XPath positions count from 1, FHIRPath
  indexes from 0; the element naming a contained resource's type is not a FHIR element; ``@value``
  is the primitive itself; an XPath without a position had one element of that name)
- a value decoded from inside an element (``…/data!base64…``) → that element: the client fixes it
  there; a JSON key (``…#key``) → the object holding it; JSON ``_name`` (a primitive's id and
  extensions) → ``name``; the XHTML under ``text.div`` → ``text.div``.

Element names are kept as written: a choice type stays ``valueString`` (FHIRPath's ``value``
would need the structure definitions). A step that is no FHIR element name (a key with spaces,
or one that is itself an identity code) ends the path at the element before it. A location that
is not in the FHIR resource of the body (a URL, a header, a multipart part, another reading of
the body) has no FHIRPath: None.
"""

from __future__ import annotations

import re

__all__ = ["from_json_pointer", "from_xpath"]

#: A FHIR element name (FHIR R4 §2.1.0.1 "Element names": letters and digits, starting with a
#: letter; JSON adds a leading ``_`` for a primitive's id and extensions).
_ELEMENT = re.compile(r"_?[a-z][A-Za-z0-9]*")
#: A FHIR resource type name (UpperCamel), as in ``resourceType`` and XML element names.
_RESOURCE = re.compile(r"[A-Z][A-Za-z0-9]*")
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")
#: An XPath step as the XML parser writes it: a local name and a position where siblings repeat.
_XPATH_STEP = re.compile(r"([A-Za-z_][\w.\-]*)(?:\[([1-9][0-9]{0,8})\])?")


def _within(location: str) -> str:
    """The part of a location inside the body's document: up to a nested reading (``!``)."""
    return location.split("!", 1)[0]


def from_json_pointer(location: str, resource: str) -> str | None:
    """The FHIRPath of a JSON pointer location in a FHIR JSON body whose ``resourceType`` is
    ``resource``; None when the location is not in it.

    >>> from_json_pointer("/entry/0/resource/identifier/0/value", "Bundle")
    'Bundle.entry[0].resource.identifier[0].value'
    >>> from_json_pointer("header:X-Patient", "Patient") is None
    True
    """
    if not _RESOURCE.fullmatch(resource):
        return None
    within = _within(location)
    key = within.endswith("#key")
    within = within.removesuffix("#key")
    if not within.startswith("/") and within != "":
        return None
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in within.split("/")[1:]]
    if key and tokens:
        tokens.pop()  # the finding is the member's name: the object holding it is the element
    path = resource
    named = False  # the last step is an element (an index may follow it)
    for token in tokens:
        if _INDEX.fullmatch(token):
            if not named:
                break
            path += f"[{token}]"
            named = False
        elif _ELEMENT.fullmatch(token) and token != "resourceType":
            path += "." + token.removeprefix("_")
            named = True
        else:
            break
    return path


def from_xpath(location: str, resource: str = "") -> str | None:
    """The FHIRPath of an XPath location in a FHIR XML body (its root element is the resource
    type, and must be ``resource`` when one is given); None when the location is not in it.

    >>> from_xpath("/Patient/identifier[2]/value/@value")
    'Patient.identifier[1].value'
    """
    within = _within(location)
    if not within.startswith("/"):
        return None
    steps = within[1:].split("/")
    root = _XPATH_STEP.fullmatch(steps[0])
    if root is None or root.group(2) or not _RESOURCE.fullmatch(root.group(1)):
        return None
    if resource and root.group(1) != resource:
        return None
    path = root.group(1)
    previous = ""
    for step in steps[1:]:
        if step.startswith("@"):
            name = step[1:]
            if name != "value" and _ELEMENT.fullmatch(name):
                path += "." + name  # an attribute of FHIR XML: ``id``, an extension's ``url``
            break
        match = _XPATH_STEP.fullmatch(step)
        if match is None:
            break  # ``text()``, ``comment()``: a node inside XHTML, or no element of FHIR
        name, position = match.group(1), match.group(2)
        if _RESOURCE.fullmatch(name) and previous in _RESOURCE_HOLDERS:
            previous = name  # a resource's type wrapping it inside ``resource``, ``contained``
            continue
        if not _ELEMENT.fullmatch(name):
            break
        path += "." + name + (f"[{int(position) - 1}]" if position else "")
        if previous == "text" and name == "div":
            break  # the narrative's XHTML: not FHIR elements below it
        previous = name
    return path


#: Elements whose content is a whole resource, written in XML inside an element named by its
#: type (FHIR R4 XML §2.6.2: ``Bundle.entry.resource``, ``Bundle.entry.response.outcome``,
#: ``DomainResource.contained``, ``Parameters.parameter.resource``).
_RESOURCE_HOLDERS = frozenset({"resource", "outcome", "contained"})
