"""Tests for kanta_guard.destinations: how a host is read, and which hosts the policy allows."""

from __future__ import annotations

import pickle
import time

import pytest

from kanta_guard import destinations
from kanta_guard.destinations import (
    DEFAULT_HOSTS,
    Destinations,
    parse_entry,
    read_host,
    split_authority,
)

DEFAULT = Destinations.parse(DEFAULT_HOSTS)


def readings(host: str) -> list[str]:
    return [str(r) for r in read_host(host)]


@pytest.mark.parametrize(
    ("host", "read_as"),
    [
        ("localhost", ["localhost"]),
        ("LocalHost", ["localhost"]),  # case
        ("localhost.", ["localhost"]),  # one trailing dot: the FQDN form
        ("fhirsandbox.kanta.fi", ["fhirsandbox.kanta.fi"]),
        ("127.0.0.1", ["127.0.0.1"]),
        ("2130706433", ["127.0.0.1"]),  # one decimal number (inet_aton)
        ("0177.0.0.1", ["127.0.0.1"]),  # octal: not 177.0.0.1
        ("0x7f.0.0.1", ["127.0.0.1"]),  # hex
        ("0X7F000001", ["127.0.0.1"]),
        ("127.1", ["127.0.0.1"]),  # two parts: the last fills three bytes
        ("127.0.1", ["127.0.0.1"]),
        ("0x08080808", ["8.8.8.8"]),  # a loopback-looking spelling hiding another address
        ("010.010.010.010", ["8.8.8.8"]),
        ("::1", ["::1"]),
        ("[::1]", ["::1"]),
        ("0:0:0:0:0:0:0:1", ["::1"]),
        ("::1%lo", ["::1"]),  # a zone picks the interface, not the address
        ("::ffff:127.0.0.1", ["127.0.0.1"]),  # IPv4-mapped: reaches the IPv4 address
        ("::ffff:7f00:1", ["127.0.0.1"]),
        ("::ffff:8.8.8.8", ["8.8.8.8"]),
        ("ＬＯＣＡＬＨＯＳＴ", ["localhost"]),  # fullwidth: getaddrinfo's IDNA maps it
        ("fhirsandbox。kanta。fi", ["fhirsandbox.kanta.fi"]),  # ideographic full stops
        ("１２７.０.０.１", ["127.0.0.1"]),  # fullwidth digits become an address
        ("bücher.example", ["xn--bcher-kva.example"]),  # IDNA: compared as A-labels
        ("lоcalhost", ["xn--lcalhost-nbh"]),  # a Cyrillic о: another name entirely
        ("_sip.at.kanta.fi", ["_sip.at.kanta.fi"]),
    ],
)
def test_hosts_are_read_as_the_network_takes_them(host: str, read_as: list[str]) -> None:
    """Case, trailing dot, IDNA and every inet_aton spelling are undone before judging."""
    assert readings(host) == read_as


@pytest.mark.parametrize(
    "host",
    [
        "",
        "local host",  # whitespace
        "localhost..",
        "a..b",
        "127.0.0.1.",  # an all-digit top label: neither an address nor a DNS name
        "256.0.0.1",
        "1.2.3.4.5",
        "0400.0.0.1",  # octal past 255
        "4294967296",  # past 32 bits
        "+127.0.0.1",  # int() would take the sign
        "1_27.0.0.1",  # ... and underscores
        "127.0.0.08",  # 8 is no octal digit
        "evil.com%2f",
        "user@localhost",
        "-localhost",
        "[::1",
        "::ffff:0177.0.0.1",  # a leading zero in an embedded IPv4: ambiguous
        "x" * 64 + ".fi",  # a label over 63
        "a." * 600,  # past MAX_HOST
        "xn--\udcff.fi",
    ],
)
def test_unreadable_hosts_have_no_reading(host: str) -> None:
    """What is not a host name or IP address has no reading, and so is never allowed."""
    assert read_host(host) == ()
    assert not DEFAULT.allows(host, 443)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "127.0.0.1",
        "127.0.0.2",
        "127.255.255.254",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "ｌｏｃａｌｈｏｓｔ",
        "fhirsandbox.kanta.fi",
        "FHIRSANDBOX2.KANTA.FI.",
        "x.at.kanta.fi",
        "a.b.c.at.kanta.fi",  # a wildcard allows any depth below its domain
    ],
)
def test_default_allows_kanta_test_hosts_and_loopback(host: str) -> None:
    """The embedded default: the Kanta test and sandbox hosts and loopback, however spelled."""
    assert DEFAULT.judge(host, 443) is None


@pytest.mark.parametrize(
    "host",
    [
        "at.kanta.fi",  # a wildcard is not its own domain
        "kanta.fi",
        "www.kanta.fi",  # production
        "fhirsandbox.kanta.fi.evil.example",
        "evilat.kanta.fi",  # the wildcard's dot is part of it
        "x.at.kanta.fi.evil.example",
        "fhirsandbox3.kanta.fi",
        "0x08080808",
        "8.8.8.8",
        "::ffff:8.8.8.8",
        "0.0.0.0",  # reaches loopback on Linux, but it is no loopback address
        "::",
        "::2",
        "fe80::1",
        "lоcalhost",  # Cyrillic о
        "localhost.localdomain",
        "foo.localhost",
        "128.0.0.1",
    ],
)
def test_default_refuses_every_other_host(host: str) -> None:
    """Anything else is refused, with a reason that quotes the host and how it was read."""
    why = DEFAULT.judge(host, 443)
    assert why is not None and "not among the allowed upstream hosts" in why


def test_reason_says_how_a_host_was_read() -> None:
    """A host spelled otherwise than read is shown both ways; an IPv6 host with its port."""
    why = DEFAULT.judge("0x08080808", 80)
    assert why is not None and "'0x08080808:80'" in why and "read as 8.8.8.8" in why
    why = DEFAULT.judge("fe80::1", 443)
    assert why is not None and "'[fe80::1]:443'" in why


@pytest.mark.parametrize(
    ("authority", "split"),
    [
        ("localhost", ("localhost", None)),
        ("localhost:8443", ("localhost", 8443)),
        ("[::1]", ("::1", None)),
        ("[::1]:443", ("::1", 443)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
    ],
)
def test_split_authority(authority: str, split: tuple[str, int | None]) -> None:
    """host[:port] as a Host header, :authority or CONNECT target carries it."""
    assert split_authority(authority) == split


@pytest.mark.parametrize(
    "authority",
    [
        "",
        "::1",  # unbracketed IPv6
        "localhost:",
        "localhost:0",
        "localhost:65536",
        "localhost:+80",
        "localhost:80x",
        "user@localhost",
        "localhost/path",
        "[::1]x",
        "[::1",
        "[]:80",
        "local host",
    ],
)
def test_split_authority_refuses_what_is_no_authority(authority: str) -> None:
    """Userinfo, paths, odd ports and unbracketed IPv6 are no host[:port]."""
    with pytest.raises(ValueError):
        split_authority(authority)


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("localhost", "localhost"),
        ("LocalHost.", "localhost"),
        ("*.AT.kanta.fi", "*.at.kanta.fi"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("0:0::1", "::1"),
        ("127.0.0.0/8", "127.0.0.0/8"),
        ("fd00::/8", "fd00::/8"),
        ("localhost:8443", "localhost:8443"),
        ("*.at.kanta.fi:443", "*.at.kanta.fi:443"),
        ("[::1]:8443", "[::1]:8443"),
        ("127.0.0.1:80", "127.0.0.1:80"),
    ],
)
def test_entries_are_written_canonically(entry: str, text: str) -> None:
    """Policy entries are normalised as requests are, and kept in that form."""
    assert parse_entry(entry).text == text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("", "empty"),
        ("local host", "whitespace"),
        (" localhost", "whitespace"),
        ("*", "wildcard"),
        ("*.fi", "whole top-level domain"),
        ("foo.*.fi", "wildcard"),
        ("*foo.kanta.fi", "wildcard"),
        ("127.0.0.1/8", "host bits"),
        ("300.0.0.0/8", "CIDR"),
        ("0177.0.0.1", "usual form"),
        ("2130706433", "usual form"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("localhost:0", "port"),
        ("localhost:http", "port"),
        ("user@localhost", "not a host"),
        ("http://localhost", "not a URL"),
        ("127.0.0.1.", "not a host name"),
    ],
)
def test_invalid_entries_say_why(entry: str, message: str) -> None:
    """A bad entry is a ValueError saying what is wrong (the policy adds file and line)."""
    with pytest.raises(ValueError, match=message):
        parse_entry(entry)


def test_ports_restrict_an_entry() -> None:
    """An entry with a port allows only that port; one without, any port."""
    allowed = Destinations.parse(["localhost:8443", "*.at.kanta.fi:443", "[::1]:9000", "::2"])
    assert allowed.allows("localhost", 8443) and not allowed.allows("localhost", 8444)
    assert allowed.allows("x.at.kanta.fi", 443) and not allowed.allows("x.at.kanta.fi", 80)
    assert allowed.allows("::1", 9000) and not allowed.allows("::1", 443)
    assert allowed.allows("::2", 1) and allowed.allows("::2", 65535)
    assert not allowed.allows("localhost", None)  # a port that is not known is no match


def test_an_empty_list_allows_nothing() -> None:
    """``hosts = []`` is valid: every request is refused."""
    assert not Destinations.parse([]).allows("localhost", 80)


def test_every_reading_must_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that IDNA 2003 and IDNA 2008 read differently passes only if both are allowed."""
    # ß: IDNA 2003 maps it to "ss", IDNA 2008 keeps it (xn--zca).
    assert readings("straße.example") == ["strasse.example", "xn--strae-oqa.example"]
    only_2003 = Destinations.parse(["strasse.example"])
    both = Destinations.parse(["strasse.example", "xn--strae-oqa.example"])
    assert not only_2003.allows("straße.example", 443)
    assert both.allows("straße.example", 443)
    with pytest.raises(ValueError, match="read differently"):
        parse_entry("straße.example")


def test_covers_decides_weakenings() -> None:
    """``not_covered`` lists what a new list allows that the old one does not."""
    old = Destinations.parse(["*.kanta.fi", "127.0.0.0/8", "localhost:8443"])
    new = Destinations.parse(
        [
            "x.kanta.fi",  # below the wildcard
            "*.at.kanta.fi",  # a narrower wildcard
            "*.kanta.fi",  # the same
            "127.0.0.1",  # inside the range
            "127.1.0.0/16",
            "localhost:8443",
            "localhost",  # any port: more than 8443
            "kanta.fi",  # the wildcard's own domain
            "10.0.0.0/8",
            "::1",
        ]
    )
    assert old.not_covered(new) == ["localhost", "kanta.fi", "10.0.0.0/8", "::1"]
    assert new.not_covered(old) == ["127.0.0.0/8"]  # new allows only parts of it


def test_equality_hash_and_pickle() -> None:
    """Destinations compare by their entries and cross to the scan workers by pickle."""
    again = pickle.loads(pickle.dumps(DEFAULT))
    assert again == DEFAULT and hash(again) == hash(DEFAULT)
    assert again.texts == DEFAULT_HOSTS
    assert Destinations.parse(["localhost", "LOCALHOST"]).texts == ("localhost",)
    assert "localhost" in repr(DEFAULT)


def test_parse_names_the_bad_entry() -> None:
    """Destinations.parse says which entry is wrong."""
    with pytest.raises(ValueError, match=r"'a b': an entry holds whitespace"):
        Destinations.parse(["localhost", "a b"])


def test_reading_is_linear() -> None:
    """A long host (up to the cap) and a long list of labels cost time linear in their length."""

    def cost(n: int) -> float:
        host = "a." * n + "fi"
        start = time.perf_counter()
        for _ in range(200):
            DEFAULT.judge(host, 443)
        return time.perf_counter() - start

    small, large = cost(60), cost(480)
    assert large < small * 8 * 3  # 8x the input: well under quadratic


def test_all_is_complete() -> None:
    """__all__ names exactly the module's public names."""
    public = {
        name
        for name, value in vars(destinations).items()
        if not name.startswith("_")
        and getattr(value, "__module__", destinations.__name__) == destinations.__name__
        and (callable(value) or name.isupper())
    }
    assert set(destinations.__all__) == public
