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
