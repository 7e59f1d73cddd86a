"""Tests of kanta_guard.certs.anchors: the trust anchors folder read, sorted into roots and
intermediates, and every configuration mistake stopping start-up with the file named."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import certgen
import pytest

from kanta_guard.certs import Anchors, load_anchors
from kanta_guard.errors import PolicyError

H = certgen.hierarchy("test")


def test_pem_and_der_files_sorted_into_roots_and_intermediates(tmp_path: Path) -> None:
    """A PEM bundle and DER files: the self-signed CA is a root, the other CA intermediate."""
    (tmp_path / "bundle.pem").write_bytes(certgen.pem(H.root, H.intermediate))
    (tmp_path / "root-again.der").write_bytes(H.root.der)
    (tmp_path / "README.md").write_text("DVV test roots, downloaded 2026-12-01\n")
    (tmp_path / ".hidden.pem").write_text("not read")
    anchors = load_anchors(tmp_path)
    assert [c.der for c in anchors.roots] == [H.root.der]
    assert [c.der for c in anchors.intermediates] == [H.intermediate.der]
    assert anchors.folder == tmp_path and anchors.skipped == ()


@pytest.mark.parametrize("suffix", [".pem", ".crt", ".cer", ".der", ".CRT"])
def test_every_certificate_suffix_is_read(tmp_path: Path, suffix: str) -> None:
    """.pem/.crt/.cer/.der, PEM or DER content under any of them."""
    (tmp_path / f"a{suffix}").write_bytes(H.root.der)
    (tmp_path / f"b{suffix}").write_bytes(certgen.pem(H.intermediate))
    anchors = load_anchors(tmp_path)
    assert len(anchors.roots) == 1 and len(anchors.intermediates) == 1


def test_pkcs7_bundle_is_read(tmp_path: Path) -> None:
    """A .p7b certificate bundle (as Windows exports a chain) is read too."""
    (tmp_path / "chain.p7b").write_bytes(certgen.pkcs7_bundle(H.root, H.intermediate))
    assert len(load_anchors(tmp_path).intermediates) == 1


def test_non_ca_certificates_are_skipped_and_listed(tmp_path: Path) -> None:
    """A card dropped among the anchors anchors nothing: left out, named in ``skipped``."""
    (tmp_path / "root.pem").write_bytes(H.root.pem)
    (tmp_path / "card.pem").write_bytes(H.card.pem)
    anchors = load_anchors(tmp_path)
    assert len(anchors.roots) == 1 and not anchors.intermediates
    assert len(anchors.skipped) == 1 and "card.pem" in anchors.skipped[0]
    assert "not a CA" in anchors.skipped[0] and "TIINA" not in anchors.skipped[0]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "not found"),
        ("file", "not a folder"),
        ("empty", "no certificate file"),
        ("readme only", "no certificate file"),
        ("garbage", "bad.pem"),
        ("no certificate block", "key.pem"),
        ("intermediate only", "no root"),
    ],
)
def test_configuration_mistakes_raise_policy_error(
    tmp_path: Path, setup: str, message: str
) -> None:
    """A missing or empty folder, an unreadable file, no root: PolicyError naming it."""
    folder = tmp_path / "anchors"
    if setup == "file":
        folder.write_text("x")
    elif setup != "missing":
        folder.mkdir()
    if setup == "readme only":
        (folder / "README.txt").write_text("put the roots here")
    elif setup == "garbage":
        (folder / "bad.pem").write_bytes(b"\x30\x82\x00\x10garbage")
    elif setup == "no certificate block":
        (folder / "key.pem").write_bytes(
            b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"
        )
    elif setup == "intermediate only":
        (folder / "ca.pem").write_bytes(H.intermediate.pem)
    with pytest.raises(PolicyError, match=message):
        load_anchors(folder)


def test_unreadable_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the guard may not read stops start-up with its name (the read fails as it does
    for a file without read permission; simulated, since root reads every file)."""
    path = tmp_path / "root.pem"
    path.write_bytes(H.root.pem)
    real = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self.name == "root.pem":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(PolicyError, match=r"root.pem: cannot read it: Permission denied"):
        load_anchors(tmp_path)


def test_fingerprint_names_the_set_not_the_order(tmp_path: Path) -> None:
    """The same certificates give the same fingerprint; another set another one."""
    first = Anchors.of([H.root.der, H.intermediate.der])
    second = Anchors.of([H.intermediate.der, H.root.der, H.root.der])
    assert first.fingerprint == second.fingerprint
    assert Anchors.of([H.root.der]).fingerprint != first.fingerprint


def test_anchors_contain_and_pickle() -> None:
    """``cert in anchors`` asks the roots; a pickled copy is equal."""
    anchors = Anchors.of([H.root.der])
    assert anchors.roots[0] in anchors
    copy = pickle.loads(pickle.dumps(anchors))
    assert copy == anchors and copy.fingerprint == anchors.fingerprint


def test_the_shared_certificates_folder(tmp_path: Path) -> None:
    """The real DVV/VRK folder: 3 self-signed roots (the VRK TEST root and the two DVV
    production roots), 4 intermediates, the 2 test cards skipped."""
    certgen.shared_cert("test-root-VRK-TEST-Root-CA.der")
    anchors = load_anchors(certgen.SHARED_CERTS)
    assert len(anchors.roots) == 3 and len(anchors.intermediates) == 4
    assert len(anchors.skipped) == 2
    shutil.copy(certgen.SHARED_CERTS / "test-root-VRK-TEST-Root-CA.der", tmp_path)
    only = load_anchors(tmp_path)
    assert [c.subject_values("CN") for c in only.roots] == [("VRK TEST Root CA",)]
