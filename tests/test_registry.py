"""Tests for kanta_guard.registry: loading, every validation error, look-ups, CSV = TOML."""

from __future__ import annotations

import csv
import io
import sys
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
    return tuple(getattr(identity, f) for f in reg.TestIdentity._fields if f != "line")


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


# -- The fast path agrees with the full one --------------------------------------------------------


def _full(text: str, csv: bool) -> reg.Registry:
    """A registry read and validated by the full path alone (the entry and table readers and
    _Checker), never the fast one."""
    read = reg._read_csv(text, "r") if csv else reg._read_plain(text) or reg._read_toml(text, "r")
    return reg._build(*read, "r", None, text.encode("utf-8"))


def _fast(text: str, csv: bool) -> reg.Registry | None:
    """The fast path's registry, or None where it leaves the file to the full path."""
    try:
        return (reg._fast_csv if csv else reg._fast_toml)(text).registry(None, text.encode())
    except reg._NotPlain:
        return None


def _assert_same(got: reg.Registry, expected: reg.Registry) -> None:
    """The same identities (every field, the line included), index and contact details."""
    assert [tuple(i) for i in got] == [tuple(i) for i in expected]
    assert got._by_family == expected._by_family
    assert got._by_terhikki == expected._by_terhikki
    for field in ("_given", "_phones", "_emails", "_addresses", "digest"):
        assert getattr(got, field) == getattr(expected, field)


def _both_ways(text: str, csv: bool) -> reg.Registry | None:
    """The public entry point says what the full path says (the same registry or the same
    error); the fast path, where it answers, gives that same registry. Returns the fast one."""
    parse = reg.parse_registry_csv if csv else reg.parse_registry
    fast = _fast(text, csv)
    try:
        expected = _full(text, csv)
    except reg.RegistryError as exc:
        assert fast is None, "the fast path accepted what the full path refuses"
        with pytest.raises(reg.RegistryError) as info:
            parse(text, "r")
        assert str(info.value) == str(exc)
        return None
    if fast is not None:
        _assert_same(fast, expected)
    _assert_same(parse(text, "r"), expected)
    return fast


_ODD: dict[str, list[object]] = {
    "code": ["010181\u2013900c", " 231069-9711", "010181-900D", REAL, "", "x", 7],
    "given": [" Anna-Liisa ", "Ärto;Alvar", "A;", ";", "", " ", 'Ma"ija', [], [" "], 7],
    "family": [" Hukka Tes ", "Koe;Käyttäjä", "", " ", "Tes", [], "Back\\slash"],
    "pool": [" joint", "both", "", 1],
    "cases": [[], [" "], ["TC-1", " TC-1", "TC-2"], "TC-1"],
    "role": ["boss", "", " guardian"],
    "terhikki": ["", " ", " 100123 ", 5],
    "phones": [[], ["12"], "040"],
    "emails": [[], ["A@Example.COM "], ["a..b@x.fi"], ["ä@exämple.com"]],
    "addresses": [[], [" "], ["Testitie 1", "."]],
}
_GOOD: dict[str, list[object]] = {
    "given": [
        "Maija",
        "Maija Liisa",
        "Anna-Liisa Sofia",
        ["Anna", "Sofia"],
        ["Anna Liisa", "Aino"],
    ],
    "family": ["Testinen", "Virtanen-Mäkinen", "Lääkäri", ["Virtanen", "Mäkinen"]],
    "pool": ["independent", "joint"],
    "role": ["patient", "professional", "guardian"],
    "terhikki": ["100123", "100124"],
    "phones": [["+358 40 0000001"], ["040 1234567", "09 0000 0002"]],
    "emails": [["a@example.com"], ["Maija.Testinen@EXAMPLE.com", "b@x.test"]],
    "addresses": [["Testikatu 1, 00100 Helsinki"], ["Testitie 1", "Koetie 2 B"]],
}


@st.composite
def _entries(draw: st.DrawFn) -> dict[str, object]:
    """An identity's keys and values: mostly valid (a joint code with cases), now and then a
    key missing or a value the full path refuses (or accepts only after normalising)."""
    number = draw(st.integers(0, 499))
    entry: dict[str, object] = {
        "code": code(f"{1 + number // 100:02d}0181", "-", 900 + number % 100)
    }
    for key in ("given", "family", "pool"):
        entry[key] = draw(st.sampled_from(_GOOD[key]))
    if entry["pool"] == "joint":
        entry["cases"] = draw(st.sampled_from([["TC-1"], ["TC-2", "TC-1"]]))
    for key in ("role", "terhikki", "phones", "emails", "addresses"):
        if draw(st.booleans()):
            entry[key] = draw(st.sampled_from(_GOOD[key]))
    if draw(st.integers(0, 3)) == 0:
        key = draw(st.sampled_from(list(_ODD)))
        entry[key] = draw(st.sampled_from(_ODD[key]))
    if draw(st.integers(0, 19)) == 0:
        del entry[draw(st.sampled_from(list(entry)))]
    return entry


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@st.composite
def _toml_files(draw: st.DrawFn) -> str:
    """TOML registries in the generated layout and near it: keys in any order, blank lines,
    comments, a key twice, a [contacts] table first or last, an odd line."""
    out: list[str] = []
    contacts = draw(st.sampled_from(["", "first", "last"]))
    table = '[contacts]\nphones = ["+358 40 0000001"]\nemails = ["t@example.com"]\n\n'
    if contacts == "first":
        out.append(table)
    for entry in draw(st.lists(_entries(), max_size=5)):
        out.append("[[identity]]" + draw(st.sampled_from(["", "  # x"])) + "\n")
        keys = draw(st.permutations(list(entry)))
        for key in keys:
            out.append(f"{key} = {_toml_value(entry[key])}{draw(st.sampled_from(['', ' # y']))}\n")
        if keys and draw(st.integers(0, 39)) == 0:
            out.append(f"{keys[0]} = {_toml_value(entry[keys[0]])}\n")  # a key twice
        out.append(
            draw(st.sampled_from(["", "\n", "\n", "\n", "# next\n", "  \n"] * 4 + ["x = 1\n"]))
        )
    if contacts == "last":
        out.append(table)
    text = "".join(out)
    return text[:-1] if draw(st.booleans()) else text


@given(_toml_files())
def test_fast_toml_agrees_with_full_path(text: str) -> None:
    """The fast TOML path takes only what the full path accepts, as the full path reads it."""
    _both_ways(text, csv=False)


def _cell(value: object) -> str:
    return ";".join(map(str, value)) if isinstance(value, list) else str(value)


@st.composite
def _csv_files(draw: st.DrawFn) -> str:
    """CSV registries: columns in any order (optional ones left out), quoted cells, blank rows,
    rows of shared contacts, a row too long."""
    columns = draw(st.permutations(list(_ODD)))
    columns = [c for c in columns if c in reg._REQUIRED or draw(st.booleans())]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(columns)
    for entry in draw(st.lists(_entries(), max_size=5)):
        kind = draw(st.integers(0, 19))
        if kind == 0:
            writer.writerow([])
        elif kind == 1:
            writer.writerow([""] * len(columns) + ["extra"])
        else:
            writer.writerow([_cell(entry.get(c, "")) for c in columns])
    return buffer.getvalue()


@given(_csv_files())
def test_fast_csv_agrees_with_full_path(text: str) -> None:
    """The fast CSV path takes only what the full path accepts, as the full path reads it."""
    _both_ways(text, csv=True)


def test_fast_path_reads_generated_and_example_registries(tmp_path: Path) -> None:
    """The fast path reads the layout bench/registry_load.py writes (and the example files)
    and gives what the full path gives."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        import registry_load as bench
    finally:
        sys.path.pop(0)
    rows = bench.people(300, contacts=True)
    for csv_file, write in ((False, bench.write_toml), (True, bench.write_csv)):
        path = tmp_path / f"registry.{'csv' if csv_file else 'toml'}"
        write(rows, path)
        text = path.read_text("utf-8")
        fast = _both_ways(text, csv_file)
        assert fast is not None and len(fast) == len(rows)
        # CRLF line ends read as the same file.
        assert _both_ways(text.replace("\n", "\r\n"), csv_file) is not None
    for example, csv_file in ((TOML, False), (CSV, True)):
        assert _both_ways(example.read_text("utf-8"), csv_file) is not None


def test_fast_path_refuses_control_characters() -> None:
    """A control character anywhere (a value, a comment) goes to the full path, which words
    tomllib's error."""
    for bad in ('given = "Ma\x01ija"', "# \x7f", 'family = "Testinen\r"'):
        text = ENTRY.replace('given = "Maija"', bad) + 'pool = "independent"\n'
        assert _fast(text, csv=False) is None
        with pytest.raises(reg.RegistryError, match="not valid TOML"):
            reg.parse_registry(text, "r.toml")
