"""Tests for kanta_guard.registry: loading, every validation error, look-ups, CSV = TOML."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FIXTURES, REAL, code
from hypothesis import given
from hypothesis import strategies as st

from kanta_guard import idcode
from kanta_guard import registry as reg
from kanta_guard.errors import PolicyError
from kanta_guard.names import name_parts, readings

TOML = FIXTURES / "registry.toml"
CSV = FIXTURES / "registry.csv"

ENTRY = '[[identity]]\ncode = "010181-900C"\ngiven = "Maija"\nfamily = "Testinen"\n'


def _fields(identity: reg.TestIdentity) -> tuple[object, ...]:
    """Everything but the line (which differs between the two formats)."""
    return tuple(getattr(identity, f) for f in reg.TestIdentity.__slots__ if f != "line")


def test_fixture_loads() -> None:
    """The documented example registry loads, with each identity's line."""
    registry = reg.load_registry(TOML)
    assert len(registry) == 4
    maija = registry.get("010181\u2013900c")  # any written form
    assert maija is not None
    assert maija.line == 18
    assert maija.given == ("Maija", "Liisa") and maija.family == ("Testinen",)
    assert maija.pool is reg.Pool.INDEPENDENT and maija.role == "patient"
    assert maija.phones == {"+358401234567"}
    joint = registry.get("020516C903K")
    assert joint is not None and joint.cases == {"TC-101", "TC-102"}
    assert joint.family_parts == ("virtanen", "makinen")
    assert registry.digest.startswith("sha256:") and registry.path == TOML
    assert registry.get("030594W903B") is None


def test_csv_equals_toml() -> None:
    """The CSV import of the example is the same registry as its TOML."""
    toml, csv = reg.load_registry(TOML), reg.load_registry(CSV)
    assert [_fields(i) for i in toml] == [_fields(i) for i in csv]
    for check in ("phone_allowed", "email_allowed", "address_allowed"):
        for value in ("+358400000001", "+358900000002", "TESTI@example.com", "testitie 1 helsinki"):
            assert getattr(toml, check)(value) == getattr(csv, check)(value)


def test_plain_reading_equals_tomllib() -> None:
    """The fast line reader and tomllib read the example file alike (lines included)."""
    text = TOML.read_text("utf-8")
    plain = reg._read_plain(text)
    assert plain is not None
    assert plain == reg._read_toml(text, "x")
    # Anything outside the plain subset goes to tomllib, with the same result.
    odd = text.replace('role = "guardian"', "role = 'guardian'   # literal")
    odd = odd.replace('cases = ["TC-101"]', 'cases = [\n  "TC-101",\n]')
    assert reg._read_plain(odd) is None
    registry = reg.parse_registry(odd)
    assert [_fields(i) for i in registry] == [_fields(i) for i in reg.load_registry(TOML)]
    assert reg.parse_registry(text.replace("\n", "\r\n")).get("231069-9711") is not None


def test_repr_hides_names() -> None:
    """Neither an identity's nor a registry's repr shows a name or a contact detail."""
    registry = reg.load_registry(TOML)
    shown = repr(registry) + repr(list(registry))
    for secret in ("Maija", "Testinen", "358", "example"):
        assert secret not in shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ENTRY + 'pool = "independent"\nnick = "M"\n', "line 6: unknown key 'nick'"),
        (ENTRY, "line 1: [[identity]] is missing the required key 'pool'"),
        (ENTRY.replace('family = "Testinen"\n', "") + 'pool = "joint"\n', "'family'"),
        (ENTRY + 'pool = "joint"\n', "line 1: joint-testing code 010181-900C has no test cases"),
        (ENTRY + 'pool = "joint"\ncases = []\n', "line 6: joint-testing code 010181-900C"),
        (ENTRY + 'pool = "independent"\ncases = ["TC-1"]\n', "line 6: independent-testing"),
        (ENTRY + 'pool = "both"\n', 'line 5: pool must be "independent" or "joint"'),
        (ENTRY + "pool = 1\n", 'line 5: pool must be "independent" or "joint"'),
        (ENTRY.replace('"Maija"', "7") + 'pool = "joint"\n', "line 3: given must be a string"),
        (ENTRY.replace('"Maija"', '" "') + 'pool = "joint"\n', "line 3: given must not be"),
        (ENTRY + 'pool = "independent"\nphones = "040"\n', "line 6: phones must be an array"),
        (ENTRY + 'pool = "independent"\nphones = ["12"]\n', "line 6: phones[1] is not a phone"),
        (ENTRY + 'pool = "independent"\nphones = ["soita"]\n', "line 6: phones[1] is not"),
        (ENTRY + 'pool = "independent"\nemails = ["a@b@c"]\n', "line 6: emails[1] is not a valid"),
        (ENTRY + 'pool = "independent"\nemails = ["a..b@x.fi"]\n', "line 6: emails[1]"),
        (ENTRY + 'pool = "independent"\nrole = "boss"\n', "line 6: role must be one of"),
        (ENTRY + 'pool = "independent"\nterhikki = 123\n', "line 6: terhikki must be a non-empty"),
        (ENTRY + 'pool = "independent"\n' + ENTRY + 'pool = "independent"\n', "duplicate code"),
        (ENTRY.replace("900C", "900D") + 'pool = "joint"\n', "line 2: code 010181-900D is not a"),
        (ENTRY + "pool = 'independent'\npool = 'joint'\n", "not valid TOML: Cannot overwrite"),
        ('[[identity]]\ncode = "010181-900C"\ngiven = [\n', "not valid TOML:"),
        ('[contacts]\nfaxes = ["1"]\n', "line 2: unknown key 'faxes' in [contacts]"),
        ('[contacts]\nphones = ["+358 40", "x"]\n', "line 2: contacts: phones[1] is not"),
        ('owner = "me"\n', "line 1: unknown key 'owner'"),
        ("[people]\nx = 1\n", "line 1: unknown key 'people'"),
        ('identity = "x"\n', "line 1: identity must be [[identity]] tables"),
    ],
)
def test_errors_name_file_and_line(text: str, message: str) -> None:
    """Every invalid registry raises RegistryError naming the file, the line and the problem."""
    with pytest.raises(reg.RegistryError) as info:
        reg.parse_registry(text, "reg.toml")
    assert str(info.value).startswith("reg.toml")
    assert message in str(info.value)


def test_syntax_error_keeps_tomllib_position() -> None:
    """A TOML syntax error keeps tomllib's line and column."""
    with pytest.raises(reg.RegistryError, match=r"reg.toml: not valid TOML: .*line 5, column"):
        reg.parse_registry(ENTRY[:-1] + '\npool = "joint\n', "reg.toml")


def test_duplicate_names_both_lines() -> None:
    """A duplicate code names both lines."""
    text = ENTRY + 'pool = "independent"\n\n' + ENTRY.replace("010181-900C", "010181\u2013900c")
    with pytest.raises(reg.RegistryError) as info:
        reg.parse_registry(text + 'pool = "independent"\n', "r.toml")
    assert "line 8: duplicate code 010181-900C: registered on line 1 and line 7" in str(info.value)


def test_real_code_is_refused_masked() -> None:
    """A real person's code is refused, named as such, and never shown unmasked."""
    text = ENTRY.replace("010181-900C", REAL) + 'pool = "independent"\n'
    with pytest.raises(reg.RegistryError) as info:
        reg.parse_registry(text, "r.toml")
    message = str(info.value)
    assert "line 2: code ******-**** is a real person's identity code" in message
    assert REAL not in message and REAL[:6] not in message
    assert not idcode.reveals_code(message)
    # A RegistryError is a PolicyError (start-up stops) and a ValueError.
    assert isinstance(info.value, PolicyError) and isinstance(info.value, ValueError)


def test_phone_and_email_errors_do_not_show_values() -> None:
    """A bad phone or e-mail is named by its position, not its value."""
    text = ENTRY + 'pool = "independent"\nphones = ["+358 40 123 456 789 012 345 1"]\n'
    with pytest.raises(reg.RegistryError) as info:
        reg.parse_registry(text)
    assert "123" not in str(info.value)


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    """CSV errors name the CSV line (a quoted cell over two lines counts both)."""
    path = tmp_path / "r.csv"
    path.write_text(
        "\ufeffcode,given,family,pool,cases\n"
        '010181-900C,"Maija\nLiisa",Testinen,independent,\n'
        "020516C903K,Anna,Testinen,joint,\n",
        "utf-8",
    )
    with pytest.raises(reg.RegistryError, match=r"r.csv, line 4: joint-testing code 020516C903K"):
        reg.load_registry(path)
    path.write_text("code,given,family,pool,nick\n", "utf-8")
    with pytest.raises(reg.RegistryError, match=r"line 1: unknown column 'nick'"):
        reg.load_registry(path)
    path.write_text("code,given,pool\n", "utf-8")
    with pytest.raises(reg.RegistryError, match=r"line 1: missing column 'family'"):
        reg.load_registry(path)
    path.write_text(f"code,given,family,pool\n{REAL},A,B,independent\n", "utf-8")
    with pytest.raises(reg.RegistryError, match=r"line 2: code \*\*\*\*\*\*-\*\*\*\* is a real"):
        reg.load_registry(path)


def test_load_errors(tmp_path: Path) -> None:
    """A missing file, a wrong extension and bytes that are not UTF-8 are RegistryErrors."""
    with pytest.raises(reg.RegistryError, match="cannot read registry file"):
        reg.load_registry(tmp_path / "none.toml")
    with pytest.raises(reg.RegistryError, match=r"\.toml or a \.csv"):
        reg.load_registry(tmp_path / "r.json")
    (tmp_path / "r.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(reg.RegistryError, match="not UTF-8"):
        reg.load_registry(tmp_path / "r.toml")


def test_named_variants_and_professionals() -> None:
    """Look-up by written name: Finnish variants match, other names do not; roles filter."""
    registry = reg.load_registry(TOML)

    def codes(text: str, professional: bool | None = None) -> set[str]:
        return {
            i.code
            for r in readings(text)
            for i in registry.named(r.given, r.family, professional=professional)
        }

    assert codes("MAIJA TESTINEN") == {"010181-900C"}
    assert codes("Testinen, Liisa") == {"010181-900C"}
    assert codes("Maija Virtanen") == set()  # a real person's name: no match
    assert codes("Anna Virtanen") == {"020516C903K"}
    assert codes("Sofia Anna-Liisa Virtanen-Maekinen") == {"020516C903K"}
    assert codes("ARTO ALVAR ARTO TESTAAJA") == {"231069-9711"}
    assert codes("Hannu Lääkäri Tes") == {"030875-999Y"}
    assert codes("Hannu Lääkäri Tes", professional=True) == {"030875-999Y"}
    assert codes("Hannu Lääkäri Tes", professional=False) == set()
    assert codes("Maija Testinen", professional=True) == set()
    assert codes("Maija Testinen", professional=False) == {"010181-900C"}
    assert registry.named(("maija",), ()) == []
    assert registry.knows_family("makinen") and registry.knows_given("alvar")
    assert not registry.knows_family("virtanen-makinen") and not registry.knows_given("matti")


def test_contacts() -> None:
    """Phones in E.164, e-mails case-insensitively, addresses normalised; shared ones too."""
    registry = reg.load_registry(TOML)
    assert registry.phone_allowed("+358401234567")  # the identity's own
    assert registry.phone_allowed("+358400000001")  # [contacts]
    assert registry.phone_allowed("+358900000002")  # "09 0000 0002" parsed as Finnish
    assert not registry.phone_allowed("+358401234568")
    assert registry.email_allowed(" Maija.Testinen@EXAMPLE.com ")
    assert registry.email_allowed("testi@example.com")
    assert not registry.email_allowed("maija.virtanen@example.com")
    assert not registry.email_allowed("ä@exämple.com")
    assert registry.address_allowed("TESTIKATU 1 A 2 00100 HELSINKI")
    assert registry.address_allowed("Testitie 1,00100 Helsinki")
    assert not registry.address_allowed("Testikatu 2 A 2, 00100 Helsinki")


def test_empty_registry() -> None:
    """The empty registry knows nobody."""
    registry = reg.empty_registry()
    assert len(registry) == 0 and registry.get("010181-900C") is None
    assert registry.named((), ("testinen",)) == [] and not registry.phone_allowed("+3584")
    assert registry.path is None and registry.digest.startswith("sha256:")


def test_named_reads_one_bucket() -> None:
    """named() on a large registry reads only the identities sharing the family part."""
    lines = []
    for i in range(2000):
        number = 900 + i % 100
        lines.append(
            f'[[identity]]\ncode = "{code(f"{1 + i // 100:02d}0181", "-", number)}"\n'
            f'given = "Maija"\nfamily = "Testinen{i}"\npool = "independent"\n'
        )
    registry = reg.parse_registry("".join(lines))
    assert len(registry) == 2000
    assert [i.line for i in registry.named((), name_parts("Testinen1999"))] == [1999 * 5 + 1]
    assert len(registry._by_family) == 2000


_DIGITS = st.text(alphabet="0123456789", min_size=6, max_size=6)


@given(
    _DIGITS,
    st.sampled_from("+-YXWVUABCDEFG"),
    st.integers(min_value=0, max_value=999),
    st.sampled_from("0123456789ABCDEFHJKLMNPRSTUVWXYZ"),
)
def test_fast_test_code_check_agrees_with_stdnum(
    date: str, sign: str, number: int, check: str
) -> None:
    """idcode.is_test (the registry's fast check) says exactly what idcode.classify (stdnum)
    says about 900-series codes."""
    for value in (f"{date}{sign}{number:03d}{check}", code(date, sign, number)):
        assert idcode.is_test(value) == (idcode.classify(value) is idcode.Kind.TEST)


_ATOM = st.text(alphabet="abcXYZ019.!#+-_~'", min_size=1, max_size=12)


@given(_ATOM, st.sampled_from(["example.com", "EXAMPLE.fi", "x.test", "a..b", "-a.fi", "fi"]))
def test_fast_email_check_agrees_with_email_validator(local: str, domain: str) -> None:
    """The dot-atom fast path accepts and normalises exactly as email-validator does."""
    address = f"{local}@{domain}"
    try:
        expected: str | None = reg._validate(address).lower()
    except Exception:
        expected = None
    try:
        got: str | None = reg._email(address)
    except ValueError:
        got = None
    assert got == expected
