"""End to end: DICOM C-STORE, C-ECHO and C-FIND through the real proxy in reverse:tcp:// mode.

pynetdicom's storage SCU sends data sets built with pydicom through ``kanta-guard run --mode
reverse:tcp://127.0.0.1:<scp>`` (with ``--set kanta_guard_dicom=127.0.0.1:<scp>``) to a
pynetdicom storage SCP on loopback that records the bytes of every data set it receives. Clean
data sets arrive byte-identical; one with a real-range code in PatientID never arrives and the
SCU gets the guard's failure status with the rule in the Error Comment, on an association that
goes on working. The TLS variant (``reverse:tls://``) runs the same exchange encrypted on both
legs.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import REAL
from pydicom import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (
    CTImageStorage,
    SecondaryCaptureImageStorage,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from .conftest import LOOPBACK, Proxy, client_tls, free_port, self_signed_cert

pytestmark = pytest.mark.e2e

#: The guard's status for a blocked data set (kanta_guard.dimse.commands.BLOCKED).
BLOCKED = 0xC000
TIMEOUT = 20


@dataclass
class Archive:
    """A pynetdicom storage (and find) SCP recording what it receives, by SOP instance UID."""

    port: int
    received: dict[str, bytes] = field(default_factory=dict)
    queries: list[bytes] = field(default_factory=list)
    commitments: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def got(self, uid: str) -> bytes | None:
        with self.lock:
            return self.received.get(uid)


def _archive(tls: ssl.SSLContext | None = None) -> tuple[Any, Archive]:
    archive = Archive(free_port())

    def store(event: Any) -> int:
        raw = event.request.DataSet.getvalue()
        with archive.lock:
            archive.received[str(event.request.AffectedSOPInstanceUID)] = bytes(raw)
        return 0x0000

    def find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        with archive.lock:
            archive.queries.append(bytes(event.request.Identifier.getvalue()))
        yield 0x0000, None

    def commit(event: Any) -> tuple[int, None]:
        with archive.lock:
            archive.commitments.append(bytes(event.request.ActionInformation.getvalue()))
        return 0x0000, None

    ae = AE(ae_title="TEST-ARCHIVE")
    for syntax in (SecondaryCaptureImageStorage, CTImageStorage):
        ae.add_supported_context(syntax, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
    ae.add_supported_context(Verification)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StorageCommitmentPushModel)
    server = ae.start_server(
        (LOOPBACK, archive.port),
        block=False,
        evt_handlers=[
            (evt.EVT_C_STORE, store),
            (evt.EVT_C_FIND, find),
            (evt.EVT_N_ACTION, commit),
        ],
        ssl_context=tls,
    )
    return server, archive


def _scu(proxy: Proxy, tls: ssl.SSLContext | None = None) -> Any:
    """An association from a pynetdicom SCU to the guard."""
    ae = AE(ae_title="TEST-SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(SecondaryCaptureImageStorage, ImplicitVRLittleEndian)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(Verification)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StorageCommitmentPushModel)
    tls_args = (tls, "localhost") if tls is not None else None
    assoc = ae.associate(LOOPBACK, proxy.port, ae_title="TEST-ARCHIVE", tls_args=tls_args)
    assert assoc.is_established, "the association through the guard was not established"
    return assoc


def image(patient_id: str = "020516C903K", *, ct: bool = False, size: int = 64) -> Dataset:
    """A small image with ``size``×``size`` 16-bit pixels (a pattern: no text in it); a CT
    image goes in Explicit VR Little Endian, the others in Implicit VR. De-identified as the
    imaging rules want: a dummy name, the test code, Patient Identity Removed YES with a method,
    Burned In Annotation NO."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if ct else ImplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage if ct else SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "ANONYMIZED"
    ds.PatientID = patient_id
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "PS3.15 Basic Application Level Confidentiality Profile"
    ds.BurnedInAnnotation = "NO"
    ds.Modality = "CT" if ct else "OT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = b"".join(((i * 7) % 4096).to_bytes(2, "little") for i in range(size * size))
    return ds


def _sent(ds: Dataset) -> bytes:
    """The bytes pynetdicom's SCU sends for ``ds`` (the data set, no file meta)."""
    data = encode(ds, ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian, True)
    assert data is not None
    return bytes(data)


@pytest.fixture(scope="module")
def archive() -> Iterator[Archive]:
    server, archive = _archive()
    yield archive
    server.shutdown()


@pytest.fixture(scope="module")
def dicom_proxy(tmp_path_factory: pytest.TempPathFactory, archive: Archive) -> Iterator[Proxy]:
    """The guard in front of the archive, one scan worker."""
    workdir = tmp_path_factory.mktemp("proxy-dimse")
    upstream = f"{LOOPBACK}:{archive.port}"
    guard = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--mode", f"reverse:tcp://{upstream}",
            "--set", f"kanta_guard_dicom={upstream}",
            "--workers", "1",
        ],
    )  # fmt: skip
    guard.start()
    yield guard
    guard.stop()


def test_clean_data_sets_arrive_byte_identical(dicom_proxy: Proxy, archive: Archive) -> None:
    """Clean images (one of many PDUs, one on an Explicit VR context) arrive as sent, byte for
    byte."""
    assoc = _scu(dicom_proxy)
    try:
        for ds in (image(), image(size=256), image(ct=True, size=128)):
            status = assoc.send_c_store(ds)
            assert status.Status == 0x0000
            assert archive.got(ds.SOPInstanceUID) == _sent(ds)
    finally:
        assoc.release()


def test_a_real_code_never_arrives(dicom_proxy: Proxy, archive: Archive) -> None:
    """A real-range code in PatientID: the SCU gets 0xC000 naming hetu.real, the archive nothing,
    the log a masked record; the association goes on and the next clean image arrives."""
    assoc = _scu(dicom_proxy)
    try:
        dirty = image(REAL)
        status = assoc.send_c_store(dirty)
        assert status.Status == BLOCKED
        assert "hetu.real" in str(status.ErrorComment)
        assert REAL not in str(status.ErrorComment)
        assert archive.got(dirty.SOPInstanceUID) is None
        clean = image()
        assert assoc.send_c_store(clean).Status == 0x0000
        assert archive.got(clean.SOPInstanceUID) == _sent(clean)
    finally:
        assoc.release()
    records = [r for r in dicom_proxy.records() if r.get("method") == "C-STORE-RQ"]
    assert any(r["path"] == dirty.SOPInstanceUID and "hetu.real" in r["rules"] for r in records)
    assert REAL not in dicom_proxy.log.read_text("utf-8")
    assert archive.got(dirty.SOPInstanceUID) is None


def test_c_echo_passes(dicom_proxy: Proxy) -> None:
    """C-ECHO (verification) goes through and is answered by the archive."""
    assoc = _scu(dicom_proxy)
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_c_find_identifier_is_judged(dicom_proxy: Proxy, archive: Archive) -> None:
    """A C-FIND with a test code reaches the archive; one with a real code is answered 0xC000 and
    the archive never sees it."""
    assoc = _scu(dicom_proxy)
    try:
        for patient_id, expected in (("020516C903K", 0x0000), (REAL, BLOCKED)):
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.PatientID = patient_id
            query.StudyInstanceUID = ""
            statuses = [
                status.Status
                for status, _ in assoc.send_c_find(
                    query, StudyRootQueryRetrieveInformationModelFind
                )
                if status
            ]
            assert statuses[-1] == expected
    finally:
        assoc.release()
    with archive.lock:
        queries = list(archive.queries)
    assert any(b"020516C903K" in q for q in queries)
    assert not any(REAL.encode() in q for q in queries)


def test_storage_commitment_passes(dicom_proxy: Proxy, archive: Archive) -> None:
    """A Storage Commitment N-ACTION (its action information judged) reaches the archive as
    sent and is answered."""
    request = Dataset()
    request.TransactionUID = generate_uid()
    item = Dataset()
    item.ReferencedSOPClassUID = SecondaryCaptureImageStorage
    item.ReferencedSOPInstanceUID = generate_uid()
    request.ReferencedSOPSequence = [item]
    assoc = _scu(dicom_proxy)
    try:
        status, _ = assoc.send_n_action(
            request, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1"
        )
        assert status.Status == 0x0000
    finally:
        assoc.release()
    with archive.lock:
        assert archive.commitments[-1] == encode(request, True, True)


def test_over_tls(tmp_path_factory: pytest.TempPathFactory) -> None:
    """reverse:tls:// : TLS from the SCU to the guard and from the guard to the archive; a clean
    image arrives byte-identical, a dirty one is refused."""
    workdir = tmp_path_factory.mktemp("proxy-dimse-tls")
    cert, key = self_signed_cert(workdir)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server, archive = _archive(server_tls)
    upstream = f"{LOOPBACK}:{archive.port}"
    guard = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--mode", f"reverse:tls://{upstream}",
            "--set", f"kanta_guard_dicom={upstream}",
            "--set", f"ssl_verify_upstream_trusted_ca={cert}",
            "--workers", "0",
        ],
    )  # fmt: skip
    try:
        guard.start()
        assoc = _scu(guard, client_tls(guard))
        try:
            clean, dirty = image(), image(REAL)
            assert assoc.send_c_store(clean).Status == 0x0000
            assert assoc.send_c_store(dirty).Status == BLOCKED
        finally:
            assoc.release()
        assert archive.got(clean.SOPInstanceUID) == _sent(clean)
        assert archive.got(dirty.SOPInstanceUID) is None
    finally:
        guard.stop()
        server.shutdown()


def test_other_raw_tcp_stays_refused(tmp_path: Path) -> None:
    """reverse:tcp:// to an upstream not named in kanta_guard_dicom does not start."""
    from .conftest import start_refused

    other = free_port()
    guard = Proxy(
        tmp_path, tmp_path / "blocked.jsonl", ["--mode", f"reverse:tcp://{LOOPBACK}:{other}"]
    )
    result = start_refused(guard)
    assert not result.listened
    assert "kanta_guard_dicom" in result.stderr + result.output
