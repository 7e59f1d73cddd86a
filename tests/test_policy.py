"""Tests for kanta_guard.policy: the embedded default, overrides, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanta_guard import Action, PolicyError, default_policy, load_policy
from kanta_guard.policy import parse_policy, weakenings
from kanta_guard.rules import RULES


def test_default_is_safe() -> None:
    """The embedded default blocks real and malformed codes and warns on malformed test codes."""
    policy = default_policy()
    assert policy.action("hetu.real") is Action.BLOCK
    assert policy.action("hetu.malformed") is Action.BLOCK
    assert policy.action("hetu.malformed_test") is Action.WARN
    assert policy.action("unscannable") is Action.BLOCK
    assert set(policy.actions) == {spec.id for spec in RULES}


def test_override_keeps_the_rest() -> None:
    """A user file changes only the keys it names."""
    policy = parse_policy('[rules]\n"hetu.malformed_test" = "off"\n[limits]\nmax_depth = 3\n')
    assert policy.action("hetu.malformed_test") is Action.OFF
    assert policy.action("hetu.real") is Action.BLOCK
    assert policy.limits.max_depth == 3
    assert policy.limits.max_parts == default_policy().limits.max_parts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[rules]\n"hetu.realz" = "block"\n', "<policy>, line 2: unknown rule id 'hetu.realz'"),
        ('[rules]\n\n"hetu.real" = "deny"\n', "line 3: rule 'hetu.real' has action 'deny'"),
        ('[rules]\nunscannable = "warn"\n', "line 2: rule 'unscannable' cannot be set"),
        ("[limits]\nmax_depth = 0\n", "line 2: limits.max_depth must be a positive integer"),
        ("[limits]\nmax_depth = true\n", "line 2: limits.max_depth must be a positive integer"),
        ('[limits]\nmax_depth = "8"\n', "line 2: limits.max_depth must be a positive integer"),
        ("[limits]\nmax_body_bytes = 100\nmax_decoded_bytes = 10\n", "line 3: limits.max_decoded"),
        ("[limits]\nspeed = 1\n", "line 2: unknown key limits.speed"),
        ("[logs]\npath = 'x'\n", "line 1: unknown section [logs]"),
        ('[log]\npath = ""\n', "line 2: log.path must not be empty"),
        ("[rules\n", "not valid TOML"),
        ('[log]\nrequired = "yes"\n', "line 2: log.required must be true or false"),
        ("[runtime]\nallow_weakening = 1\n", "line 2: runtime.allow_weakening must be true"),
        ("[runtime]\nlive = true\n", "line 2: unknown key runtime.live"),
        ('[rules]\n"protocol.refused" = "off"\n', "rule 'protocol.refused' cannot be set"),
        ('[rules]\n"guard.unavailable" = "warn"\n', "rule 'guard.unavailable' cannot be set"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    """Every invalid policy raises PolicyError whose message names the line and the problem."""
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert message in str(info.value)


def test_load_policy_file(tmp_path: Path) -> None:
    """A policy file is read from disk; a missing one is a PolicyError naming the path."""
    path = tmp_path / "policy.toml"
    path.write_text('[rules]\n"hetu.real" = "warn"\n', "utf-8")
    assert load_policy(path).action("hetu.real") is Action.WARN
    assert load_policy(None).source == "<embedded default>"
    with pytest.raises(PolicyError, match=r"cannot read policy file .*missing\.toml"):
        load_policy(tmp_path / "missing.toml")


def test_policy_pickles_for_the_workers() -> None:
    """A policy crosses to the scan workers by pickle, unchanged and still read-only."""
    import pickle

    policy = parse_policy('[rules]\n"hetu.malformed_test" = "off"\n[limits]\nmax_depth = 3\n')
    again = pickle.loads(pickle.dumps(policy))
    assert again == policy
    assert again.action("hetu.malformed_test") is Action.OFF and again.limits.max_depth == 3
    with pytest.raises(TypeError):
        again.actions["hetu.real"] = Action.OFF  # type: ignore[index]


def test_digest_follows_what_is_enforced() -> None:
    """The digest is the same for the same effective policy and changes with any setting."""
    assert default_policy().digest == parse_policy('[rules]\n"hetu.real" = "block"\n').digest
    assert default_policy().digest.startswith("sha256:")
    assert default_policy().digest != parse_policy("[limits]\nmax_depth = 3\n").digest
    assert default_policy().digest != parse_policy("[log]\nrequired = false\n").digest


@pytest.mark.parametrize(
    ("text", "weaker"),
    [
        ('[rules]\n"hetu.real" = "warn"\n', ["rule 'hetu.real' block -> warn"]),
        ('[rules]\n"hetu.malformed_test" = "off"\n', ["rule 'hetu.malformed_test' warn -> off"]),
        ("[limits]\nmax_depth = 20\n", ["limits.max_depth 8 -> 20"]),
        ("[log]\nrequired = false\n", ["log.required true -> false"]),
        ("[runtime]\nallow_weakening = true\n", ["runtime.allow_weakening false -> true"]),
        ('[rules]\n"hetu.malformed_test" = "block"\n', []),  # stricter
        ("[limits]\nmax_depth = 3\n", []),  # stricter
    ],
)
def test_weakenings(text: str, weaker: list[str]) -> None:
    """What a new policy enforces less strictly than the default is listed; stricter is not."""
    assert weakenings(default_policy(), parse_policy(text)) == weaker


def test_runtime_and_log_defaults_are_safe() -> None:
    """The default requires its log and does not allow weakening at run time."""
    policy = default_policy()
    assert policy.log.required is True
    assert policy.runtime.allow_weakening is False


# -- registry, testing mode, contacts (issue 8) -------------------------------------------------


def test_without_a_registry_names_phones_addresses_warn_and_emails_block() -> None:
    policy = default_policy()
    assert policy.registry is None and str(policy.testing) == "independent"
    for rule_id in ("name.unregistered", "name.mismatch", "phone.personal", "address.personal"):
        assert policy.action(rule_id) is Action.WARN
    assert policy.action("email.personal") is Action.BLOCK


def test_a_registry_makes_the_personal_data_rules_block(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text('[registry]\nfile = "ids.toml"\n[rules]\n"phone.personal" = "warn"\n')
    policy = load_policy(file)
    assert policy.registry == tmp_path / "ids.toml"  # beside the policy file
    assert policy.action("name.unregistered") is Action.BLOCK
    assert policy.action("address.personal") is Action.BLOCK
    assert policy.action("phone.personal") is Action.WARN  # set by the policy itself
    back = policy.with_registry(None)
    assert back.action("name.unregistered") is Action.WARN
    assert back.digest != policy.digest


def test_joint_testing_needs_a_case() -> None:
    policy = parse_policy('[testing]\nmode = "joint"\ncase = "TC-7"\n')
    assert policy.testing.joint and policy.testing.case == "TC-7"
    with pytest.raises(PolicyError, match=r"line 2.*joint testing needs a test case"):
        parse_policy('[testing]\nmode = "joint"\n')
    with pytest.raises(PolicyError, match="neither independent nor joint"):
        parse_policy('[testing]\nmode = "yhteis"\n')
    with pytest.raises(PolicyError, match=r"unknown key testing\.pool"):
        parse_policy('[testing]\npool = "joint"\n')


def test_contacts_are_validated() -> None:
    policy = parse_policy(
        '[contacts]\nemails = ["a@example.org"]\naddress_patterns = ["Testi.*"]\n'
    )
    assert policy.contacts.emails == ("a@example.org",)
    with pytest.raises(PolicyError, match=r"contacts\.phones must be a list of strings"):
        parse_policy('[contacts]\nphones = "040"\n')
    with pytest.raises(PolicyError, match="address_patterns"):
        parse_policy('[contacts]\naddress_patterns = ["("]\n')


def test_testing_mode_survives_pickling_for_the_workers() -> None:
    import pickle

    policy = parse_policy('[testing]\nmode = "joint"\ncase = "TC-7"\n').with_registry(
        Path("/tmp/x.toml")
    )
    again = pickle.loads(pickle.dumps(policy))
    assert again == policy and again.digest == policy.digest


# -- allowed upstream hosts and trust anchors (issue 9) -----------------------------------------


def test_default_upstream_hosts_and_no_anchors() -> None:
    """The embedded default allows the Kanta test and sandbox hosts and loopback; no anchors."""
    from kanta_guard.destinations import DEFAULT_HOSTS

    policy = default_policy()
    assert policy.upstream.texts == DEFAULT_HOSTS
    assert policy.upstream.allows("x.at.kanta.fi", 443)
    assert not policy.upstream.allows("kanta.fi", 443)
    assert policy.certificates.anchors is None


def test_upstream_hosts_replace_the_default() -> None:
    """A policy's list replaces the default's, normalised as requests are."""
    policy = parse_policy('[upstream]\nhosts = ["LocalHost.", "*.AT.kanta.fi:443", "10.0.0.0/8"]\n')
    assert policy.upstream.texts == ("localhost", "*.at.kanta.fi:443", "10.0.0.0/8")
    assert not policy.upstream.allows("127.0.0.1", 80)
    assert parse_policy("[upstream]\nhosts = []\n").upstream.texts == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[upstream]\nhosts = [\n  "localhost",\n  "bad host",\n]\n',
            "p.toml, line 4: upstream.hosts entry 'bad host': an entry holds whitespace",
        ),
        (
            "[upstream]\nhosts = ['localhost', '127.0.0.1/8']\n",
            "p.toml, line 2: upstream.hosts entry '127.0.0.1/8': not a CIDR range",
        ),
        (
            '[rules]\n"hetu.real" = "block"\n\n[upstream]\n# the hosts\nhosts = [\n'
            '    "fhirsandbox.kanta.fi",\n    "*.fi",\n]\n',
            "p.toml, line 8: upstream.hosts entry '*.fi'",
        ),
        (
            '[upstream]\nhosts = ["0177.0.0.1"]\n',
            "p.toml, line 2: upstream.hosts entry '0177.0.0.1': write an IP address",
        ),
        ('[upstream]\nhosts = "localhost"\n', "p.toml, line 2: upstream.hosts must be a list"),
        ("[upstream]\nhosts = [1]\n", "p.toml, line 2: upstream.hosts must be a list of strings"),
        ('[upstream]\nallow = ["x"]\n', "p.toml, line 2: unknown key upstream.allow"),
        ("[certificates]\nanchors = 1\n", "p.toml, line 2: certificates.anchors must be a string"),
        ('[certificates]\nroots = "x"\n', "p.toml, line 2: unknown key certificates.roots"),
        ('[certs]\nanchors = "x"\n', "p.toml, line 1: unknown section [certs]"),
    ],
)
def test_upstream_and_certificate_errors_name_the_line(text: str, message: str) -> None:
    """A bad entry or key of the new sections stops start-up naming the file and line."""
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.toml")
    assert message in str(info.value)


def test_a_host_with_a_code_is_masked_in_the_error() -> None:
    """An invalid entry is quoted masked: a host name can carry an identity code."""
    from helpers import REAL

    with pytest.raises(PolicyError) as info:
        parse_policy(f'[upstream]\nhosts = ["{REAL} .kanta.fi"]\n')
    assert REAL not in str(info.value) and "line 2" in str(info.value)


def test_anchors_are_taken_from_the_policy_folder(tmp_path: Path) -> None:
    """A relative anchors folder is beside the policy file; an absolute one stays."""
    file = tmp_path / "policy.toml"
    file.write_text('[certificates]\nanchors = "anchors"\n', "utf-8")
    assert load_policy(file).certificates.anchors == tmp_path / "anchors"
    file.write_text(f'[certificates]\nanchors = "{tmp_path / "elsewhere"}"\n', "utf-8")
    assert load_policy(file).certificates.anchors == tmp_path / "elsewhere"


def test_new_sections_are_in_the_digest_and_survive_pickling(tmp_path: Path) -> None:
    """Hosts and anchors change the digest, and cross to the scan workers unchanged."""
    import pickle

    hosts = parse_policy('[upstream]\nhosts = ["localhost"]\n')
    anchors = parse_policy('[certificates]\nanchors = "/etc/kanta-anchors"\n')
    digests = {default_policy().digest, hosts.digest, anchors.digest}
    assert len(digests) == 3
    # The same effective list, spelled otherwise, is the same policy.
    assert parse_policy('[upstream]\nhosts = ["LOCALHOST."]\n').digest == hosts.digest
    for policy in (hosts, anchors):
        again = pickle.loads(pickle.dumps(policy))
        assert again == policy and again.digest == policy.digest
        assert again.upstream.allows("localhost", 1) == policy.upstream.allows("localhost", 1)


@pytest.mark.parametrize(
    ("old", "new", "weaker"),
    [
        # A host the old list did not allow is a weakening; a narrower list is not.
        ("", '[upstream]\nhosts = ["localhost", "evil.example"]\n', True),
        ("", '[upstream]\nhosts = ["localhost"]\n', False),
        ('[upstream]\nhosts = ["localhost:8443"]\n', '[upstream]\nhosts = ["localhost"]\n', True),
        ('[upstream]\nhosts = ["127.0.0.0/8"]\n', '[upstream]\nhosts = ["127.0.0.2"]\n', False),
        # Any change of the trust anchors: which certificates pass depends on the files.
        ('[certificates]\nanchors = "/a"\n', "", True),
        ('[certificates]\nanchors = "/a"\n', '[certificates]\nanchors = "/b"\n', True),
        ("", '[certificates]\nanchors = "/a"\n', True),
        ('[certificates]\nanchors = "/a"\n', '[certificates]\nanchors = "/a"\n', False),
    ],
)
def test_upstream_and_anchor_weakenings(old: str, new: str, weaker: bool) -> None:
    """More allowed hosts, or other anchors, enforce less; fewer hosts do not."""
    found = weakenings(parse_policy(old), parse_policy(new))
    assert bool(found) is weaker, found
    assert all(f.startswith(("upstream.hosts", "certificates.anchors")) for f in found)


def test_default_policy_file_lists_the_default_hosts() -> None:
    """default_policy.toml and destinations.DEFAULT_HOSTS say the same."""
    import tomllib
    from importlib import resources

    from kanta_guard.destinations import DEFAULT_HOSTS

    text = resources.files("kanta_guard").joinpath("default_policy.toml").read_text("utf-8")
    data = tomllib.loads(text)
    assert tuple(data["upstream"]["hosts"]) == DEFAULT_HOSTS
    assert data["certificates"] == {"anchors": ""}
