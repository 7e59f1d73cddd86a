"""Tests of kanta_guard.certs.judge and .markers: test, production or unknown, with trust
anchors (RFC 5280 path validation) and without (the default rules), on generated hierarchies
and on the real DVV/VRK certificates and signed corpus documents; the cache; safe messages."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import certgen
import pytest
from cryptography import x509 as cx509

from kanta_guard.certs import (
    Anchors,
    CertificateError,
    CertJudge,
    CertKind,
    CertRole,
    CertRules,
    Judgement,
    card_marker,
    is_test_card,
    load_certificate,
)
from kanta_guard.errors import PolicyError

H = certgen.hierarchy("test")
P = certgen.hierarchy("production")
AT = datetime(2026, 6, 1, tzinfo=UTC)
DEFAULT = CertJudge()
ANCHORED = CertJudge(Anchors.of([H.root.der]))

_ACME_ROOT = certgen.root("Acme Root CA", "Acme Oy")
_ACME_CA = certgen.ca(_ACME_ROOT, "Acme Issuing CA", "Acme Oy", policies=())
_ORDINARY_CARD = certgen.card(H.intermediate, "Esimerkki", "Erkki", "123456789")
_ACME_SUB = certgen.ca(H.intermediate, "Acme Sub CA", "Acme Oy", policies=())
_RAW_VALUES = ("Esimerkki", "Erkki", "123456789")


def _safe(judgement: Judgement) -> None:
    """No field of a judgement carries the ordinary card holder's name or number."""
    for value in _RAW_VALUES:
        assert value not in repr(judgement), value


# -- without anchors: the default rules ----------------------------------------------------

DEFAULT_CASES = [
    ("test service with its intermediate", H.service, [H.intermediate], CertKind.TEST),
    ("test card alone (issuer named)", H.card, [], CertKind.TEST),
    ("test intermediate", H.intermediate, [], CertKind.TEST),
    ("test root", H.root, [], CertKind.TEST),
    ("production service", P.service, [P.intermediate], CertKind.PRODUCTION),
    ("production card", P.card, [], CertKind.PRODUCTION),
    ("production root", P.root, [], CertKind.PRODUCTION),
    ("unknown CA", certgen.service(_ACME_CA, policies=()), [_ACME_CA], CertKind.UNKNOWN),
    # Inferred rule (kanta.md): a policy under 1.2.246.517.99. marks test on its own.
    ("test policy, unknown CA", certgen.service(_ACME_CA), [], CertKind.TEST),
    # The markers come from the chain by name: a CA under the test CA makes a test leaf.
    (
        "unknown CA under the test CA",
        certgen.service(_ACME_SUB, policies=()),
        [_ACME_SUB],
        CertKind.TEST,
    ),
    # Markers disagree: a test issuer with a production policy is not a test certificate.
    (
        "test issuer, production policy",
        certgen.service(H.intermediate, policies=(certgen.PRODUCTION_SERVICE_POLICY,)),
        [H.intermediate],
        CertKind.PRODUCTION,
    ),
    ("card from a test CA without a test name", _ORDINARY_CARD, [H.intermediate], CertKind.UNKNOWN),
]


@pytest.mark.parametrize(
    ("case", "leaf", "intermediates", "kind"), DEFAULT_CASES, ids=[c[0] for c in DEFAULT_CASES]
)
def test_default_rules(
    case: str, leaf: certgen.Issued, intermediates: list[certgen.Issued], kind: CertKind
) -> None:
    """Without anchors the markers decide; nothing is verified."""
    judgement = DEFAULT.judge(leaf.der, [c.der for c in intermediates], at=AT)
    assert judgement.kind is kind, judgement.reason
    assert not judgement.verified
    assert judgement.sha256 == load_certificate(leaf.der).sha256
    _safe(judgement)


def test_unknown_says_how_to_add_an_anchor() -> None:
    """An UNKNOWN verdict tells the tester what to do about it."""
    judgement = DEFAULT.judge(certgen.service(_ACME_CA, policies=()).der, at=AT)
    assert "trust anchors folder" in judgement.reason and "Acme Issuing CA" in judgement.reason


def test_disagreeing_markers_say_which() -> None:
    """A test name with a production policy: PRODUCTION, naming both."""
    leaf = certgen.service(H.intermediate, policies=(certgen.PRODUCTION_SERVICE_POLICY,))
    reason = DEFAULT.judge(leaf.der, at=AT).reason
    assert "policy 1.2.246.517.1.10.10.2" in reason and "test markers" in reason


def test_card_without_test_name_says_why() -> None:
    """A card from a test CA needs a SPECIMEN/Tes/999 marker too, and the reason says so."""
    judgement = DEFAULT.judge(_ORDINARY_CARD.der, at=AT)
    assert judgement.role is CertRole.CARD and "test-card marker" in judgement.reason
    assert "E******** E****" in judgement.subject


def test_issuer_pinned_by_dn_is_production() -> None:
    """A certificate whose issuer DN is a pinned production CA's subject is production even
    with every name rule gone (the pin alone decides)."""
    real_root = cx509.load_der_x509_certificate(
        certgen.shared_cert("production-DVV-Gov-Root-CA-G3-RSA.der")
    )
    fake = certgen._build(
        certgen.dn(cn="x", o="Someone Oy"),
        certgen.new_key(),
        real_root.subject,
        certgen.new_key(),
        ca=False,
        path_length=None,
        policies=(),
        key_usage=("digital_signature",),
        not_before=datetime(2022, 1, 1, tzinfo=UTC),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
    )
    rules = dataclasses.replace(
        CertRules.default(),
        production_organizations=frozenset(),
        production_ca_names=frozenset(),
    )
    judgement = CertJudge(rules=rules).judge(fake.der, at=AT)
    assert judgement.kind is CertKind.PRODUCTION
    assert "pinned production CA 'DVV Gov. Root CA - G3 RSA'" in judgement.reason


# -- with anchors: path validation ---------------------------------------------------------


def test_chain_to_the_anchor_is_test_and_verified() -> None:
    """Leaf and intermediate from the message, the root an anchor: TEST, verified."""
    judgement = ANCHORED.judge(H.service.der, [H.intermediate.der], at=AT)
    assert judgement.kind is CertKind.TEST and judgement.verified and not judgement.expired
    assert "VRK TEST Root CA - G9" in judgement.reason


def test_intermediate_from_the_anchors_folder() -> None:
    """The message may leave the intermediate out when the anchors folder has it."""
    judge = CertJudge(Anchors.of([H.root.der, H.intermediate.der]))
    judgement = judge.judge(H.card.der, at=AT)
    assert judgement.kind is CertKind.TEST and judgement.verified


def test_missing_intermediate_is_unknown() -> None:
    """No intermediate anywhere: the chain does not verify, the test CA's name is no proof."""
    judgement = ANCHORED.judge(H.service.der, at=AT)
    assert judgement.kind is CertKind.UNKNOWN and not judgement.verified
    assert "no chain of issuers" in judgement.reason and "no proof" in judgement.reason


def test_forgery_naming_the_test_ca_is_unknown() -> None:
    """A forged intermediate with the test CA's name (and a root of the anchor's name), with
    or without the genuine intermediate beside it: UNKNOWN."""
    fake_ca, fake_leaf = certgen.forgery(H)
    for intermediates in ([fake_ca.der], [fake_ca.der, H.intermediate.der]):
        judgement = ANCHORED.judge(fake_leaf.der, intermediates, at=AT)
        assert judgement.kind is CertKind.UNKNOWN and not judgement.verified
    # Without anchors the same forgery passes on names: why anchors matter.
    assert DEFAULT.judge(fake_leaf.der, [fake_ca.der], at=AT).kind is CertKind.TEST


def test_leaf_signed_by_another_key_is_unknown() -> None:
    """The issuer named right but the signature made by another key."""
    forged = certgen.service(H.intermediate, signer=certgen.new_key())
    judgement = ANCHORED.judge(forged.der, [H.intermediate.der], at=AT)
    assert judgement.kind is CertKind.UNKNOWN
    assert "signature in the chain does not verify" in judgement.reason


@pytest.mark.parametrize(
    ("when", "phrase"),
    [
        (datetime(2030, 1, 1, tzinfo=UTC), "expired 2021-01-01"),
        (datetime(2019, 6, 1, tzinfo=UTC), "not valid before 2020-01-01"),
    ],
)
def test_outside_validity_still_verifies_and_is_reported(when: datetime, phrase: str) -> None:
    """Expiry is reported, not blocking: validated at a moment inside the validity."""
    old = certgen.service(
        H.intermediate,
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
        not_after=datetime(2021, 1, 1, tzinfo=UTC),
    )
    judgement = ANCHORED.judge(old.der, [H.intermediate.der], at=when)
    assert judgement.kind is CertKind.TEST and judgement.verified and judgement.expired
    assert phrase in judgement.reason


def test_expired_intermediate_is_reported() -> None:
    """An intermediate that expired while its leaf is valid: TEST (valid together once),
    expired=True."""
    middle = certgen.ca(H.root, not_after=datetime(2022, 1, 1, tzinfo=UTC))
    leaf = certgen.service(middle, not_after=datetime(2030, 1, 1, tzinfo=UTC))
    judgement = ANCHORED.judge(leaf.der, [middle.der], at=AT)
    assert judgement.kind is CertKind.TEST and judgement.expired
    assert "a certificate of its chain" in judgement.reason


def test_chain_never_valid_at_one_time_is_unknown() -> None:
    """A leaf issued after its intermediate expired was never a valid chain."""
    middle = certgen.ca(H.root, not_after=datetime(2021, 1, 1, tzinfo=UTC))
    leaf = certgen.service(middle, not_before=datetime(2022, 1, 1, tzinfo=UTC))
    judgement = ANCHORED.judge(leaf.der, [middle.der], at=AT)
    assert judgement.kind is CertKind.UNKNOWN and "never valid at one time" in judgement.reason


@pytest.mark.parametrize(
    ("case", "phrase"),
    [
        ("path length", "path length"),
        ("no keyCertSign", "key usage"),
        ("issuer not a CA", "not a CA"),
    ],
)
def test_rfc5280_constraints_are_enforced(case: str, phrase: str) -> None:
    """Path length, the issuer's key usage and basic constraints are checked (RFC 5280 §6.1)."""
    if case == "path length":  # H.intermediate has pathLenConstraint 0: no CA below it
        sub = certgen.ca(H.intermediate, "VRK TEST CA Sub", path_length=None)
        leaf, intermediates = certgen.service(sub), [sub, H.intermediate]
    elif case == "no keyCertSign":
        bad = certgen.ca(H.root, "VRK TEST CA No Sign", key_usage=("digital_signature",))
        leaf, intermediates = certgen.service(bad), [bad]
    else:
        bad = certgen.ca(H.root, "VRK TEST CA Not CA", is_ca=False)
        leaf, intermediates = certgen.service(bad), [bad]
    judgement = ANCHORED.judge(leaf.der, [c.der for c in intermediates], at=AT)
    assert judgement.kind is CertKind.UNKNOWN, case
    assert phrase in judgement.reason, judgement.reason


def test_production_anchor_does_not_make_production_test() -> None:
    """A production look-alike root among the anchors by mistake: verified, and PRODUCTION."""
    judge = CertJudge(Anchors.of([P.root.der]))
    judgement = judge.judge(P.service.der, [P.intermediate.der], at=AT)
    assert judgement.kind is CertKind.PRODUCTION and judgement.verified


def test_verified_chain_with_a_production_marker_is_production() -> None:
    """The markers still apply to a verified chain: a production policy under a test CA."""
    leaf = certgen.service(H.intermediate, policies=(certgen.PRODUCTION_SERVICE_POLICY,))
    judgement = ANCHORED.judge(leaf.der, [H.intermediate.der], at=AT)
    assert judgement.kind is CertKind.PRODUCTION and judgement.verified


def test_verified_card_needs_a_test_marker() -> None:
    """A card from the anchored test CA without SPECIMEN/Tes/999 is no test card."""
    judgement = ANCHORED.judge(_ORDINARY_CARD.der, [H.intermediate.der], at=AT)
    assert judgement.kind is CertKind.UNKNOWN and judgement.verified
    _safe(judgement)
    specimen = ANCHORED.judge(H.card.der, [H.intermediate.der], at=AT)
    assert specimen.kind is CertKind.TEST and specimen.role is CertRole.CARD


def test_non_der_certificate_verifies() -> None:
    """BER that cryptography refuses is read, and its signature checks over the bytes sent."""
    data = certgen.non_der(H.service, H.intermediate)
    judgement = ANCHORED.judge(data, [H.intermediate.der], at=AT)
    assert judgement.kind is CertKind.TEST and judgement.verified


def test_rsa_and_sha1_chain_verifies_unless_sha1_is_refused() -> None:
    """An RSA chain signed with SHA-1 (as the old VRK test CAs signed) verifies under the
    default rules, and not when the rules refuse SHA-1."""
    top = certgen.root("VRK TEST Root CA - G8", key=certgen.new_key("rsa"))
    middle = certgen.ca(top, key=certgen.new_key("rsa"))
    leaf = certgen.sha1_signed(certgen.service(middle), middle)
    anchors = Anchors.of([top.der])
    assert CertJudge(anchors).judge(leaf, [middle.der], at=AT).kind is CertKind.TEST
    strict = dataclasses.replace(CertRules.default(), weak_hash_algorithms=frozenset({"sha1"}))
    judgement = CertJudge(anchors, strict).judge(leaf, [middle.der], at=AT)
    assert judgement.kind is CertKind.UNKNOWN and "refused algorithm" in judgement.reason


def test_an_anchor_itself_and_a_stranger_self_signed() -> None:
    """The anchor judged alone is TEST; another self-signed certificate is UNKNOWN."""
    assert ANCHORED.judge(H.root.der, at=AT).verified
    stranger = certgen.root("VRK TEST Root CA - G7", key=certgen.new_key())
    judgement = ANCHORED.judge(stranger.der, at=AT)
    assert judgement.kind is CertKind.UNKNOWN and "self-signed" in judgement.reason


# -- the real certificates -----------------------------------------------------------------

REAL_TEST = [
    "test-root-VRK-TEST-Root-CA.der",
    "test-VRK-CA-for-Test-Purposes-G3.der",
    "test-VRK-TEST-CA-for-Test-Purposes-G4.der",
    "test-DVV-TEST-Certificates-G5E.der",
    "test-card-SPECIMEN-POTEX-TIMO-G3.der",
    "test-card-SPECIMEN-BABAFO-VELI-G4.der",
]
REAL_PRODUCTION = [
    "production-DVV-Gov-Root-CA-G3-RSA.der",
    "production-DVV-Gov-Root-CA-G3-ECC.der",
    "production-DVV-Citizen-Certificates-G4E.der",
]


@pytest.mark.parametrize("name", REAL_TEST)
def test_real_test_certificates_pass_the_default_rules(name: str) -> None:
    """The DVV/VRK test CAs and cards are TEST by the default rules."""
    judgement = DEFAULT.judge(certgen.shared_cert(name))
    assert judgement.kind is CertKind.TEST, judgement.reason


@pytest.mark.parametrize("name", REAL_PRODUCTION)
def test_real_production_certificates_block(name: str) -> None:
    """The production roots and intermediate are PRODUCTION, pinned, with or without
    anchors."""
    data = certgen.shared_cert(name)
    judgement = DEFAULT.judge(data)
    assert judgement.kind is CertKind.PRODUCTION and "pinned production CA" in judgement.reason
    assert ANCHORED.judge(data).kind is CertKind.PRODUCTION


def _vrk_test_root_judge(*more: str) -> CertJudge:
    anchors = [certgen.shared_cert("test-root-VRK-TEST-Root-CA.der")]
    return CertJudge(Anchors.of(anchors + [certgen.shared_cert(name) for name in more]))


def test_real_g3_card_and_intermediate_verify_to_the_vrk_test_root() -> None:
    """SPECIMEN-POTEX's card and VRK CA for Test Purposes - G3 verify to VRK TEST Root CA:
    TEST, verified, expired (both ran out in 2022-2023)."""
    judge = _vrk_test_root_judge()
    g3 = certgen.shared_cert("test-VRK-CA-for-Test-Purposes-G3.der")
    card = certgen.shared_cert("test-card-SPECIMEN-POTEX-TIMO-G3.der")
    for judgement in (judge.judge(card, [g3]), judge.judge(g3), judge.judge_chain([card, g3])):
        assert judgement.kind is CertKind.TEST and judgement.verified and judgement.expired
    # Without the intermediate it does not verify; with it in the anchors folder it does.
    assert judge.judge(card).kind is CertKind.UNKNOWN
    folder_judge = _vrk_test_root_judge("test-VRK-CA-for-Test-Purposes-G3.der")
    assert folder_judge.judge(card).verified


def test_real_g4_card_is_not_under_the_old_vrk_test_root() -> None:
    """SPECIMEN-BABAFÖ's G4 CA is issued by VRK TEST Root CA - G2, which is not public: under
    the old root as the only anchor it does not verify (UNKNOWN), by the rules it is TEST."""
    judge = _vrk_test_root_judge()
    g4 = certgen.shared_cert("test-VRK-TEST-CA-for-Test-Purposes-G4.der")
    card = certgen.shared_cert("test-card-SPECIMEN-BABAFO-VELI-G4.der")
    assert judge.judge(card, [g4]).kind is CertKind.UNKNOWN
    assert DEFAULT.judge(card, [g4]).kind is CertKind.TEST


def test_real_g4_intermediate_under_a_forged_g2_root() -> None:
    """A root forged with the exact DN of VRK TEST Root CA - G2, made an anchor: the real G4
    intermediate names it but was not signed by its key, so it does not verify."""
    g4 = certgen.shared_cert("test-VRK-TEST-CA-for-Test-Purposes-G4.der")
    g2_name = cx509.load_der_x509_certificate(g4).issuer
    key = certgen.new_key()
    forged = certgen._build(
        g2_name,
        key,
        g2_name,
        key,
        ca=True,
        path_length=None,
        policies=(),
        key_usage=("key_cert_sign", "crl_sign"),
        not_before=datetime(2018, 1, 1, tzinfo=UTC),
        not_after=datetime(2040, 1, 1, tzinfo=UTC),
        issuer_key_id=False,
    )
    judgement = CertJudge(Anchors.of([forged.der])).judge(g4)
    assert judgement.kind is CertKind.UNKNOWN and not judgement.verified


def test_corpus_signatures_are_test_certificates() -> None:
    """Every certificate in the signed corpus CDA documents is TEST by the default rules:
    professional cards (" Tes" surnames) and service certificates of the VRK TEST CAs,
    long expired; under an anchors folder without their (unpublished) intermediates, UNKNOWN."""
    anchored = _vrk_test_root_judge()
    seen: dict[CertRole, int] = {}
    for name, text in certgen.corpus_certificates():
        judgement = DEFAULT.judge(text)
        assert judgement.kind is CertKind.TEST, (name, judgement.reason)
        assert judgement.expired and "Vaestorekisterikeskus TEST" in judgement.reason
        seen[judgement.role] = seen.get(judgement.role, 0) + 1
        if judgement.role is CertRole.CARD:
            assert is_test_card(load_certificate(text))
            assert " Tes" in judgement.subject
        assert anchored.judge(text).kind is CertKind.UNKNOWN
    assert seen == {CertRole.CARD: 2, CertRole.SERVICE: 4}


# -- markers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("surname", "given", "serial", "marker"),
    [
        ("SPECIMEN-TESTAAJA", "TIINA", "123", "a SPECIMEN test name"),
        ("Hukka Tes", "Hanna", "123", "a ' Tes' test surname"),
        ("Esimerkki", "Erkki", "999004228", "a 999 test serial number"),
        ("Esimerkki", "Erkki", "123456789", None),
        ("Testinen", "Erkki", "123456789", None),  # "Tes" must be a word of its own
    ],
)
def test_test_card_markers(surname: str, given: str, serial: str, marker: str | None) -> None:
    """SPECIMEN name parts, a ' Tes' surname word, a 999 serial number; nothing else."""
    cert = load_certificate(certgen.card(H.intermediate, surname, given, serial).der)
    assert card_marker(cert) == marker
    assert is_test_card(cert) is (marker is not None)


def test_default_rules_load_with_their_pins() -> None:
    """The embedded rules pin the three production CAs, each with its subject."""
    rules = CertRules.default()
    assert len(rules.pinned) == 3 and all(pin.subject_key for pin in rules.pinned)
    assert "vaestorekisterikeskus test" in rules.test_organizations
    assert "1.2.246.517.99." in rules.test_policy_prefixes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[test", "certificate rules"),
        ("test = 1", r"\[test\] must be a table"),
        ("[test]\norganizations = 'x'", "test.organizations must be a list"),
        ("[[production.pinned]]\nname = 'x'", "needs a name and a sha256"),
        ("[[production.pinned]]\nname = 'x'\nsha256 = 'abc'", "64 hex digits"),
        (
            "[[production.pinned]]\nname = 'x'\nsha256 = '" + "A" * 64 + "'\nfile = 'f.der'",
            "needs a folder",
        ),
    ],
)
def test_bad_rules_raise_policy_error(text: str, message: str) -> None:
    """A broken rules file names the key at fault."""
    with pytest.raises(PolicyError, match=message):
        CertRules.from_toml(text)


# -- the cache and the surface -------------------------------------------------------------


def test_cache_hits_on_the_same_certificate_in_any_form() -> None:
    """The same DER as bytes, PEM or Base64 is one entry; other intermediates another."""
    judge = CertJudge()
    first = judge.judge(H.service.der, at=AT)
    assert judge.judge(H.service.pem, at=AT) is first
    assert judge.judge(load_certificate(H.service.der), at=AT) is first
    judge.judge(H.service.der, [H.intermediate.der], at=AT)
    info = judge.cache_info()
    assert (info.hits, info.misses, info.size) == (2, 2, 2)


def test_cache_is_bounded_and_can_be_off() -> None:
    """Least recently used entries go first; size 0 keeps nothing."""
    judge = CertJudge(cache_size=1)
    judge.judge(H.service.der, at=AT)
    judge.judge(H.card.der, at=AT)
    judge.judge(H.service.der, at=AT)
    assert judge.cache_info().hits == 0 and judge.cache_info().size == 1
    off = CertJudge(cache_size=0)
    off.judge(H.card.der, at=AT)
    assert off.cache_info().size == 0


def test_cache_keeps_expiry_exact_within_a_day() -> None:
    """A certificate expiring at noon is judged fresh at 10 and expired at 14 the same day."""
    leaf = certgen.service(H.intermediate, not_after=datetime(2026, 6, 1, 12, tzinfo=UTC))
    judge = CertJudge()
    assert not judge.judge(leaf.der, at=datetime(2026, 6, 1, 10, tzinfo=UTC)).expired
    assert judge.judge(leaf.der, at=datetime(2026, 6, 1, 14, tzinfo=UTC)).expired
    assert judge.judge(leaf.der, at=datetime(2026, 6, 1, 15, tzinfo=UTC)).expired
    assert judge.cache_info().hits == 1


def test_judge_chain_takes_the_leaf_first() -> None:
    """TLS order: leaf, then the rest; an empty chain is an error."""
    assert ANCHORED.judge_chain([H.service.der, H.intermediate.der], at=AT).verified
    with pytest.raises(CertificateError):
        ANCHORED.judge_chain([])


def test_unreadable_certificate_raises() -> None:
    """What cannot be read is never judged: CertificateError for the caller's unscannable."""
    with pytest.raises(CertificateError):
        DEFAULT.judge(b"\x30\x03\x02\x01\x01")
    with pytest.raises(CertificateError):
        DEFAULT.judge(H.service.der, [b"garbage"])


def test_naive_datetime_is_utc() -> None:
    """A naive ``at`` is read as UTC."""
    naive = DEFAULT.judge(H.service.der, at=datetime(2026, 6, 1))
    assert naive.kind is CertKind.TEST and not naive.expired


def test_judge_works_inside_a_running_event_loop() -> None:
    """mitmproxy calls from its event loop: path validation runs there all the same."""
    judge = CertJudge(Anchors.of([H.root.der]))

    async def inside() -> Judgement:
        return judge.judge(H.service.der, [H.intermediate.der], at=AT)

    assert asyncio.run(inside()).verified


def test_judge_is_thread_safe() -> None:
    """Many threads on one judge agree with one thread."""
    judge = CertJudge(Anchors.of([H.root.der]), cache_size=4)
    leaves = [H.service, H.card, _ORDINARY_CARD, P.service] * 25

    def one(leaf: certgen.Issued) -> CertKind:
        return judge.judge(leaf.der, [H.intermediate.der], at=AT).kind

    with ThreadPoolExecutor(8) as pool:
        kinds = list(pool.map(one, leaves))
    assert kinds == [one(leaf) for leaf in leaves]


def test_judge_pickles_without_its_cache() -> None:
    """Scan workers receive the judge by pickle: same anchors and rules, a fresh cache."""
    judge = CertJudge(Anchors.of([H.root.der]))
    judge.judge(H.service.der, [H.intermediate.der], at=AT)
    copy = pickle.loads(pickle.dumps(judge))
    assert copy.cache_info().size == 0 and copy.anchors == judge.anchors
    assert copy.judge(H.service.der, [H.intermediate.der], at=AT).verified


def test_production_card_judgement_is_masked() -> None:
    """A production card (a real person's, in life) shows no name anywhere in the verdict."""
    for judge in (DEFAULT, ANCHORED):
        judgement = judge.judge(P.card.der, at=AT)
        assert judgement.kind is CertKind.PRODUCTION
        _safe(judgement)
