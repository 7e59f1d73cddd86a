#!/usr/bin/env python3
"""DIMSE throughput: C-STORE images per second through kanta-guard vs plain mitmdump.

Run from the project root::

    .venv/bin/python bench/dimse_bench.py            # 3 rounds of 200 images, ~1-3 minutes
    .venv/bin/python bench/dimse_bench.py --quick    # 1 round of 60 images
    .venv/bin/python bench/dimse_bench.py --json     # also print the results as JSON

Everything runs on loopback, each party in its own process:

- the archive: a pynetdicom storage SCP (CT Image Storage, Implicit VR Little Endian) that
  accepts every image (status 0x0000) and keeps none;
- the relays: plain ``mitmdump --mode reverse:tcp://127.0.0.1:<scp>`` and ``kanta-guard run``
  in the same mode with ``--set kanta_guard_dicom=127.0.0.1:<scp>`` (with its scan workers, and
  with ``--workers 0``: scans on a thread of the proxy), all with ``-q --set flow_detail=0``;
- the modality: a pynetdicom storage SCU sending a study of clean 512×512 16-bit CT images
  (0.5 MiB each, a smooth phantom, no text: no OCR is due) over one association, timed from
  the first C-STORE to the last response.

Before measuring, the script checks that each relay delivers a clean image (status 0x0000) and
that the guard refuses one with a real-range code in PatientID (status 0xC000) while plain
mitmdump lets it through. Rounds alternate the configurations (A B C, C B A, ...); the median
of the rounds is reported, the guard's rate as a share of plain mitmdump's. Target: >= 50 %.

The guard judges each data set with ``Scanner.scan_bytes(data, "application/dicom;
transfer-syntax=...")``: what that costs depends on the parsers registered. Until the DICOM
parser is registered, a data set is read as text (pixel data included), which dominates.

Only loopback addresses are used; every process the script starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
HASH_KEY = "kanta-guard-bench-key-0123456789abcdef"
TARGET = 0.5
_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"

#: The archive, run as ``python -c``: port and maximum PDU size in argv.
ARCHIVE = textwrap.dedent(
    """
    import sys
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import CTImageStorage, Verification
    from pydicom.uid import ImplicitVRLittleEndian
    ae = AE(ae_title="BENCH-ARCHIVE")
    ae.maximum_pdu_size = int(sys.argv[2])
    ae.add_supported_context(CTImageStorage, ImplicitVRLittleEndian)
    ae.add_supported_context(Verification)
    ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                    evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)])
    """
)

#: The modality, run as ``python -c``: port, images, size in argv; prints a JSON result.
MODALITY = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from pydicom import Dataset, FileMetaDataset
    from pydicom.uid import ImplicitVRLittleEndian, generate_uid
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage
    port, count, size = (int(a) for a in sys.argv[1:4])
    patient_id = sys.argv[4]
    y, x = np.mgrid[0:size, 0:size]
    r2 = (x - size / 2) ** 2 + (y - size / 2) ** 2
    phantom = 1000 + 800 * np.exp(-r2 / (size * size / 8))
    study, series = generate_uid(), generate_uid()
    def image(number):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID = patient_id
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "PS3.15 Basic Application Level Confidentiality Profile"
        ds.BurnedInAnnotation = "NO"
        ds.Modality = "CT"
        ds.InstanceNumber = number
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = (phantom + number).astype(np.uint16).tobytes()
        return ds
    images = [image(n) for n in range(count)]
    ae = AE(ae_title="BENCH-MODALITY")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    ae.add_requested_context(CTImageStorage, ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="BENCH-ARCHIVE")
    if not assoc.is_established:
        print(json.dumps({"error": "association not established"})); sys.exit(1)
    statuses = []
    start = time.perf_counter()
    for ds in images:
        status = assoc.send_c_store(ds)
        statuses.append(int(status.Status) if status else -1)
    seconds = time.perf_counter() - start
    assoc.release()
    print(json.dumps({"seconds": seconds, "statuses": statuses, "bytes": len(images[0].PixelData)}))
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {port} within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def env() -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    clean["KANTA_GUARD_HASH_KEY"] = HASH_KEY
    return clean


def real_code() -> str:
    """A valid real-range code, computed (never written in a file): only to prove it blocks."""
    date, number = "131052", 308
    return f"{date}-{number:03d}{_CHECK[int(date + f'{number:03d}') % 31]}"


@contextlib.contextmanager
def started(command: list[str], port: int, workdir: Path, name: str) -> Iterator[None]:
    with (workdir / f"{name}.out").open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=env(), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_listening(port, process)
        yield
    finally:
        stop(process)


def relays(scp: int, workdir: Path) -> dict[str, tuple[list[str], int]]:
    """The configurations: name -> (command, listen port)."""
    upstream = f"{LOOPBACK}:{scp}"
    mode = f"reverse:tcp://{upstream}"
    quiet = ["-q", "--set", "flow_detail=0"]
    out: dict[str, tuple[list[str], int]] = {}
    port = free_port()
    out["mitmdump"] = (
        [str(VENV_BIN / "mitmdump"), "--mode", mode, "--listen-host", LOOPBACK,
         "--listen-port", str(port), "--set", f"confdir={workdir / 'confdir-plain'}", *quiet],
        port,
    )  # fmt: skip
    for name, workers in (("kanta-guard", None), ("kanta-guard --workers 0", "0")):
        port = free_port()
        command = [
            sys.executable, "-m", "kanta_guard", "run",
            "--mode", mode, "--listen-host", LOOPBACK, "--listen-port", str(port),
            "--confdir", str(workdir / "confdir-guard"),
            "--log", str(workdir / f"blocked-{port}.jsonl"),
            "--set", f"kanta_guard_dicom={upstream}", *quiet,
        ]  # fmt: skip
        if workers is not None:
            command += ["--workers", workers]
        out[name] = (command, port)
    return out


def dicom_parser() -> bool:
    """Whether the scanner reads DICOM as DICOM (else as text, pixel data included)."""
    from kanta_guard.parsers import PARSERS

    return any(type(parser).__name__ == "DicomParser" for parser in PARSERS)


def send(port: int, count: int, size: int, patient_id: str = "020516C903K") -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", MODALITY, str(port), str(count), str(size), patient_id],
        env=env(),
        capture_output=True,
        timeout=600,
        check=False,
    )
    lines = result.stdout.decode().strip().splitlines()
    if result.returncode or not lines:
        raise RuntimeError(f"the SCU failed: {result.stderr.decode()[-2000:]}")
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 60 images")
    parser.add_argument("--images", type=int, help="images per round (default 200)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--size", type=int, default=512, help="image rows = columns")
    parser.add_argument("--pdu", type=int, default=16382, help="the archive's maximum PDU size")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    images = args.images or (60 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="dimse-bench-") as tmp:
        workdir = Path(tmp)
        scp = free_port()
        archive = subprocess.Popen(
            [sys.executable, "-c", ARCHIVE, str(scp), str(args.pdu)],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(scp, archive)
            configs = relays(scp, workdir)
            rates: dict[str, list[float]] = {"direct": []}
            rates.update({name: [] for name in configs})
            checks: dict[str, str] = {}
            # Correctness first, each relay on its own.
            for name, (command, port) in configs.items():
                with started(command, port, workdir, name.replace(" ", "_")):
                    clean = send(port, 2, args.size)
                    dirty = send(port, 1, args.size, real_code())
                    checks[name] = (
                        f"clean {sorted(set(clean['statuses']))}, "
                        f"real code {[hex(s) for s in dirty['statuses']]}"
                    )
                    guarded = name.startswith("kanta-guard")
                    assert clean["statuses"] == [0, 0], (
                        f"{name}: clean images refused ({checks[name]})"
                    )
                    assert dirty["statuses"] == ([0xC000] if guarded else [0]), (
                        f"{name}: the real code was {'not ' if guarded else ''}blocked"
                    )
            for number in range(rounds):
                order = list(configs) if number % 2 == 0 else list(reversed(configs))
                result = send(scp, images, args.size)
                rates["direct"].append(images / result["seconds"])
                for name in order:
                    command, port = configs[name]
                    with started(command, port, workdir, name.replace(" ", "_")):
                        send(port, 5, args.size)  # warm up (workers started, caches filled)
                        result = send(port, images, args.size)
                    assert set(result["statuses"]) == {0}, f"{name}: {result['statuses'][:5]}"
                    rates[name].append(images / result["seconds"])
                    print(f"round {number + 1}: {name}: {rates[name][-1]:.1f} images/s", flush=True)
        finally:
            stop(archive)

    median = {name: statistics.median(values) for name, values in rates.items()}
    megabytes = args.size * args.size * 2 / 2**20
    print()
    print(
        f"DIMSE C-STORE throughput, {images} images of {args.size}x{args.size}x16 bit "
        f"({megabytes:.2f} MiB) per round, {rounds} round(s), archive max PDU {args.pdu}"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name, value in median.items():
        share = value / median["mitmdump"]
        print(f"  {name:26s} {value:8.1f} images/s  {value * megabytes:7.1f} MiB/s  "
              f"{share:6.0%} of mitmdump")  # fmt: skip
    for name, text in checks.items():
        print(f"  check {name}: {text}")
    print(f"DICOM parser registered: {'yes' if dicom_parser() else 'no (data sets read as text)'}")
    best = max(median[n] for n in configs if n.startswith("kanta-guard"))
    share = best / median["mitmdump"]
    verdict = "met" if share >= TARGET else "MISSED"
    print(f"target: guard >= {TARGET:.0%} of plain mitmdump: {share:.0%}, {verdict}")
    if args.json:
        results = {"images": images, "size": args.size, "rounds": rates, "median": median}
        print(json.dumps({**results, "dicom_parser": dicom_parser()}))
    return 0 if share >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
