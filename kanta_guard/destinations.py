"""Allowed upstream hosts: which destinations test traffic may go to, and how a host is read.

The policy's ``[upstream] hosts`` lists host names, ``*.domain`` wildcards, IP addresses and CIDR
ranges (each optionally with ``:port``); a request to any other host is refused before a
connection is opened (rule ``upstream.not-allowed``). Pure: no mitmproxy, no resolver.

A host is judged the way the network will take it, not as it is spelled:

- case, one trailing dot (``localhost.``) and IDNA are undone: Unicode labels are read with
  Python's IDNA 2003 codec (what ``socket.getaddrinfo`` applies to a ``str`` host: nameprep maps
  fullwidth letters, ideographic full stops) and with UTS #46 / IDNA 2008 (the ``idna`` package,
  what browsers and curl send); a host passes only if **every** reading passes;
- IPv4 in the forms the C library's ``inet_aton`` takes (``2130706433``, ``0177.0.0.1``,
  ``0x7f.1``, ``127.1``: RFC 6943 §3.1.1) is read as the address it names, so that a spelling
  can neither hide another address nor be refused as a loopback one;
- an IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is judged as the IPv4 address it reaches;
  an IPv6 zone (``%lo``) does not change the address;
- anything else that is not a valid DNS name (a space, ``%``, ``@``, an all-digit last label
  such as ``127.0.0.1.``) is unreadable, and an unreadable host is never allowed.

Every step is linear in the host's length, which is capped (:data:`MAX_HOST`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import idna

__all__ = [
    "DEFAULT_HOSTS",
    "MAX_HOST",
    "Destinations",
    "Entry",
    "HostReading",
    "parse_entry",
    "read_host",
    "split_authority",
]

#: The embedded default (``default_policy.toml`` repeats it): Kela's client test domain, the
#: public FHIR sandboxes (``kanta.md``, "Hosts") and loopback.
DEFAULT_HOSTS: tuple[str, ...] = (
    "*.at.kanta.fi",
    "fhirsandbox.kanta.fi",
    "fhirsandbox2.kanta.fi",
    "localhost",
    "127.0.0.0/8",
    "::1",
)

#: Longest host text read (RFC 1035 §2.3.4 allows 253 octets for a name; the rest is slack for
#: brackets, zones and IDNA). A longer one is unreadable.
MAX_HOST = 1024

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A DNS label as resolvers take it: letters, digits, hyphens (RFC 1123 §2.1) and the underscore
# some service names carry; no hyphen at either end.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_DIGITS = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"[0-7]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_PORT = re.compile(r"[0-9]{1,5}")
# The dots IDNA 2003 separates labels with (RFC 3490 §3.1): full stop, ideographic full stop,
# fullwidth full stop, halfwidth ideographic full stop.
_DOTS = re.compile("[.\u3002\uff0e\uff61]")


@dataclass(frozen=True, slots=True)
class HostReading:
    """One way a host reaches the network: a DNS name (A-labels, lower case, no trailing dot)
    or an IP address (never both)."""

    name: str | None = None
    address: _Address | None = None

    def __str__(self) -> str:
        return self.name if self.name is not None else str(self.address)


def read_host(host: str) -> tuple[HostReading, ...]:
    """Every way ``host`` (no port, IPv6 with or without brackets) can reach the network.

    Empty when it cannot be read as a host at all. Distinct readings are returned once each.

    >>> [str(r) for r in read_host("LOCALHOST.")]
    ['localhost']
    >>> [str(r) for r in read_host("0177.0.0.1")]
    ['127.0.0.1']
    >>> read_host("127.0.0.1.")
    ()
    """
    if not host or len(host) > MAX_HOST:
        return ()
    if ":" in host or host.startswith("["):
        address = _ipv6(host)
        return (HostReading(address=address),) if address is not None else ()
    readings: list[HostReading] = []
    for ascii_form in _ascii_forms(host):
        reading = _classify(ascii_form)
        if reading is None:
            return ()  # one reading that is no host: the resolver's may be that one
        if reading not in readings:
            readings.append(reading)
    return tuple(readings)


def split_authority(authority: str) -> tuple[str, int | None]:
    """``host[:port]`` as in a Host header, ``:authority`` or CONNECT target (RFC 3986 §3.2.2:
    an IPv6 literal in brackets): (host without brackets, port or None). ValueError for anything
    else (userinfo, a path, an empty or out-of-range port, an unbracketed IPv6 literal)."""
    if not authority or len(authority) > MAX_HOST:
        raise ValueError("empty or overlong authority")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError("unclosed IPv6 bracket")
        host, rest = authority[1:end], authority[end + 1 :]
        if not host:
            raise ValueError("empty IPv6 literal")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError("text after the IPv6 literal")
        return host, _port(rest[1:])
    if authority.count(":") > 1:
        raise ValueError("an IPv6 literal must be in brackets")
    host, colon, port = authority.partition(":")
    if not host or any(c in host for c in "@/?#[] \t\\"):
        raise ValueError("not a host")
    return host, (_port(port) if colon else None)


@dataclass(frozen=True, slots=True)
class Entry:
    """One allowed destination: an exact name, a ``*.domain`` wildcard (any name below
    ``domain``, not ``domain`` itself) or an IP network (a single address is a /32 or /128);
    names and wildcards may carry a port."""

    text: str
    name: str | None = None
    suffix: str | None = None
    network: _Network | None = None
    port: int | None = None

    def matches(self, reading: HostReading, port: int | None) -> bool:
        """Whether ``reading`` on ``port`` is this destination."""
        if self.port is not None and port != self.port:
            return False
        if reading.address is not None:
            net = self.network
            return (
                net is not None
                and reading.address.version == net.version
                and (reading.address in net)
            )
        name = reading.name
        if name is None:
            return False
        if self.name is not None:
            return name == self.name
        return self.suffix is not None and name.endswith("." + self.suffix)

    def covers(self, other: Entry) -> bool:
        """Whether everything ``other`` allows, this entry allows too."""
        if self.port is not None and other.port != self.port:
            return False
        if other.network is not None:
            net = self.network
            return (
                net is not None
                and other.network.version == net.version
                and other.network.subnet_of(net)  # type: ignore[arg-type]
            )
        if self.name is not None:
            return other.name == self.name
        if self.suffix is None:
            return False
        below = other.name if other.name is not None else other.suffix
        return below is not None and (
            below.endswith("." + self.suffix) or (other.suffix == self.suffix)
        )


def parse_entry(text: str) -> Entry:
    """An entry of ``[upstream] hosts``; ValueError saying what is wrong with it.

    Entries are written as a reader expects to see them: a name (Unicode labels are turned into
    A-labels), ``*.domain``, an IP address in its usual form (``127.0.0.1``, ``::1``), a CIDR
    range with no host bits set (``127.0.0.0/8``), and for names and addresses an optional
    ``:port`` (``[::1]:8443`` for IPv6). ``inet_aton`` spellings are refused here: they are
    read in requests, not written in a policy.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("an empty entry")
    if any(c.isspace() for c in text):
        raise ValueError("an entry holds whitespace")
    if "://" in text:
        raise ValueError("write the host (fhirsandbox.kanta.fi), not a URL")
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a CIDR range ({exc})") from None
        _no_mapped(network.network_address)
        return Entry(text=str(network), network=network)
    host, port = _entry_authority(text)
    if host.startswith("*"):
        if not host.startswith("*.") or "*" in host[2:]:
            raise ValueError("a wildcard is written *.domain, with * as its whole first label")
        domain = _entry_name(host[2:])
        if "." not in domain:
            raise ValueError(f"*.{domain} would allow a whole top-level domain")
        return Entry(text=_with_port(f"*.{domain}", port), suffix=domain, port=port)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        _no_mapped(address)
        network = ipaddress.ip_network(address)
        shown = f"[{address}]" if address.version == 6 and port is not None else str(address)
        return Entry(text=_with_port(shown, port), network=network, port=port)
    name = _entry_name(host)
    return Entry(text=_with_port(name, port), name=name, port=port)


class Destinations:
    """The allowed upstream hosts of a policy: judges a host (and port) a request goes to.

    Immutable, comparable and picklable by its entries (the scan workers receive the policy).
    """

    __slots__ = ("_allowed_hosts", "_names", "_networks", "_suffixes", "entries")

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries: tuple[Entry, ...] = tuple(dict.fromkeys(entries))
        #: Hosts (with ports) already judged allowed: every request of a session names the
        #: same few, and reading a host costs microseconds (bounded; refusals not kept).
        self._allowed_hosts: dict[tuple[str, int | None], None] = {}
        names: dict[str, list[Entry]] = {}
        suffixes: dict[str, list[Entry]] = {}
        networks: list[Entry] = []
        for entry in self.entries:
            if entry.name is not None:
                names.setdefault(entry.name, []).append(entry)
            elif entry.suffix is not None:
                suffixes.setdefault(entry.suffix, []).append(entry)
            else:
                networks.append(entry)
        self._names, self._suffixes, self._networks = names, suffixes, tuple(networks)

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Destinations:
        """From entry texts; ValueError naming the first bad entry (``'x y': ...``)."""
        entries = []
        for text in texts:
            try:
                entries.append(parse_entry(text))
            except ValueError as exc:
                raise ValueError(f"{text!r}: {exc}") from None
        return cls(entries)

    @property
    def texts(self) -> tuple[str, ...]:
        """The entries as written canonically (the policy's digest is taken over these)."""
        return tuple(entry.text for entry in self.entries)

    def allows(self, host: str, port: int | None = None) -> bool:
        """Whether every reading of ``host`` (on ``port``) is an allowed destination."""
        return self.judge(host, port) is None

    def judge(self, host: str, port: int | None = None) -> str | None:
        """None when ``host`` (on ``port``) is allowed; else one sentence saying why not.

        The sentence quotes the host as given (callers mask it before it is shown: a host name
        can carry an identity code) and, where it differs, how it was read.
        """
        if (host, port) in self._allowed_hosts:
            return None
        why = self._judge(host, port)
        if why is None:
            if len(self._allowed_hosts) >= 4096:
                self._allowed_hosts.clear()
            self._allowed_hosts[host, port] = None
        return why

    def _judge(self, host: str, port: int | None) -> str | None:
        readings = read_host(host)
        shown = host if len(host) <= 80 else host[:77] + "..."
        if port is None:
            where = shown
        else:
            where = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"
        if not readings:
            return (
                f"the upstream host {where!r} cannot be read as a host name or IP address, "
                "so it is not among the allowed upstream hosts"
            )
        for reading in readings:
            if not self._allowed(reading, port):
                read_as = f" (read as {reading})" if str(reading) != host else ""
                return (
                    f"the upstream host {where!r}{read_as} is not among the allowed upstream "
                    "hosts of the policy ([upstream] hosts)"
                )
        return None

    def not_covered(self, other: Destinations) -> list[str]:
        """The entries of ``other`` that allow something this one does not (a weakening)."""
        return [
            entry.text
            for entry in other.entries
            if not any(mine.covers(entry) for mine in self.entries)
        ]

    def _allowed(self, reading: HostReading, port: int | None) -> bool:
        name = reading.name
        if name is not None:
            if any(e.matches(reading, port) for e in self._names.get(name, ())):
                return True
            dot = name.find(".")
            while dot >= 0:  # each proper suffix once: linear in the name's labels
                suffix = name[dot + 1 :]
                if any(e.matches(reading, port) for e in self._suffixes.get(suffix, ())):
                    return True
                dot = name.find(".", dot + 1)
            return False
        return any(e.matches(reading, port) for e in self._networks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Destinations) and self.entries == other.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"Destinations({list(self.texts)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return (Destinations.parse, (self.texts,))


# -- reading hosts ---------------------------------------------------------------------------------


def _ascii_forms(host: str) -> list[str]:
    """The ASCII forms of a host: itself when ASCII, else its IDNA 2003 and UTS #46 readings
    (those that succeed; none: unreadable)."""
    if host.isascii():
        return [host.lower()]
    forms = []
    with contextlib.suppress(UnicodeError):
        # What getaddrinfo() does with a str host (encodings.idna: nameprep, RFC 3490).
        forms.append(host.encode("idna").decode("ascii").lower())
    try:
        trailing = bool(_DOTS.fullmatch(host[-1]))
        body = host[:-1] if trailing else host
        uts46 = idna.encode(body, uts46=True, transitional=False).decode("ascii").lower()
        forms.append(uts46 + ("." if trailing else ""))
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    return forms


def _classify(text: str) -> HostReading | None:
    """An ASCII host: an IPv4 address (any ``inet_aton`` spelling) or a DNS name; None if
    neither."""
    address = _inet_aton(text)
    if address is not None:
        return HostReading(address=address)
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return None
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if _DIGITS.fullmatch(labels[-1]):
        return None  # an all-digit top label: no DNS name (RFC 3696 §2), no address either
    return HostReading(name=name)


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``text`` names as ``inet_aton`` reads it (1 to 4 parts, each decimal,
    octal with a leading 0 or hex with 0x; the last part fills the remaining bytes), or None."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            digits, base, alphabet = part[2:], 16, _HEX
        elif len(part) > 1 and part.startswith("0"):
            digits, base, alphabet = part[1:], 8, _OCTAL
        else:
            digits, base, alphabet = part, 10, _DIGITS
        # (Checked before int(), which would also take a sign, underscores and whitespace.)
        if len(digits) > 12 or not alphabet.fullmatch(digits):
            return None
        values.append(int(digits, base))
    *head, last = values
    if any(value > 255 for value in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _ipv6(text: str) -> _Address | None:
    """An IPv6 literal (brackets and a zone allowed); IPv4-mapped ones as their IPv4 address."""
    if text.startswith("["):
        if not text.endswith("]"):
            return None
        text = text[1:-1]
    if not text.isascii():
        return None
    text = text.split("%", 1)[0]  # a zone picks the interface, not the address
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    mapped = address.ipv4_mapped
    return mapped if mapped is not None else address


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise ValueError("not a port (1-65535)")
    return int(text)


# -- parsing entries -------------------------------------------------------------------------------


def _entry_authority(text: str) -> tuple[str, int | None]:
    """An entry's host and port: ``::1`` (IPv6 without a port) is taken whole."""
    if not text.startswith("[") and text.count(":") > 1:
        return text, None
    try:
        return split_authority(text)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _entry_name(text: str) -> str:
    """A host name of an entry in the canonical form requests are compared in."""
    readings = read_host(text)
    if len(readings) != 1 or readings[0].name is None:
        if readings and readings[0].address is not None:
            raise ValueError("write an IP address in its usual form (127.0.0.1, ::1)")
        raise ValueError(
            "not a host name, *.domain wildcard, IP address or CIDR range"
            if not readings
            else "its Unicode labels read differently under IDNA 2003 and IDNA 2008"
        )
    return readings[0].name


def _no_mapped(address: _Address) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise ValueError("an IPv4-mapped IPv6 address is judged as IPv4: write it as IPv4")


def _with_port(text: str, port: int | None) -> str:
    return text if port is None else f"{text}:{port}"
