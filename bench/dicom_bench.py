"""DICOM header checks against reading the file with pydicom alone: µs per image.

For each test image, ``Scanner.scan_bytes(data, "application/dicom")`` with OCR off (every
element read strictly, decoded, screened, judged by every detector and the DICOM rules) against
``pydicom.dcmread`` of the same bytes (pydicom reads the elements and leaves their values
undecoded until asked), and against ``dcmread`` plus walking every element's value
(``Dataset.iterall``, what a scan of every value needs from pydicom). Each timing is the minimum
of 5 repeats of a loop of at least 50 ms. Target: header checks at most 2x ``dcmread``.

    .venv/bin/python bench/dicom_bench.py            # the table
    .venv/bin/python bench/dicom_bench.py --json     # the same as JSON
    .venv/bin/python bench/dicom_bench.py --reads-all  # with the pipeline change proposed

``bench_header()`` returns the figures for the lead's benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import dicomgen  # noqa: E402

from kanta_guard import Scanner  # noqa: E402
from kanta_guard.dicom.settings import DicomSettings, OcrMode  # noqa: E402

__all__ = ["bench_header", "bench_ocr", "images", "scanner"]


def scanner(settings: DicomSettings | None = None) -> Scanner:
    """A scanner on the default policy (the DICOM rules at their defaults) with every detector
    and the DICOM parser and detector, OCR off unless ``settings`` say otherwise."""
    return dicomgen.dicom_scanner(settings=settings or DicomSettings(ocr=OcrMode.OFF))


def images() -> dict[str, bytes]:
    """The benchmark's images: generated clean ones (512×512) and pydicom's test files."""
    found = {
        f"clean {kind} 512x512 (generated)": dicomgen.part10(
            dicomgen.clean(kind, rows=512, columns=512)
        )
        for kind in ("CT", "US")
    }
    found["KOS manifest (generated)"] = dicomgen.part10(dicomgen.kos())
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "test-SR.dcm"):
        path = get_testdata_file(name)
        if path is not None:
            found[f"{name} (pydicom)"] = Path(str(path)).read_bytes()
    return found


def _best(run: Callable[[], object], repeats: int = 5, minimum: float = 0.05) -> float:
    """Seconds per call: the minimum over ``repeats`` loops of at least ``minimum`` s."""
    best = float("inf")
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            run()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= minimum:
                break
        best = min(best, elapsed / count)
    return best


def bench_header(repeats: int = 5, minimum: float = 0.05) -> list[dict[str, object]]:
    """For each image: µs of ``pydicom.dcmread``, of ``dcmread`` plus every value, of the
    guard's scan with OCR off, the ratio scan / dcmread, and the verdict."""
    guard = scanner()
    rows: list[dict[str, object]] = []
    warnings.simplefilter("ignore")  # (pydicom warns about some of its own test files)
    for name, data in images().items():

        def read(data: bytes = data) -> object:
            return pydicom.dcmread(BytesIO(data))

        def read_all(data: bytes = data) -> object:
            return sum(1 for _ in pydicom.dcmread(BytesIO(data)).iterall())

        def scan(data: bytes = data) -> object:
            return guard.scan_bytes(data, "application/dicom")

        pydicom_s = _best(read, repeats, minimum)
        values_s = _best(read_all, repeats, minimum)
        scan_s = _best(scan, repeats, minimum)
        report = guard.scan_bytes(data, "application/dicom")
        rows.append(
            {
                "image": name,
                "bytes": len(data),
                "dcmread_us": round(pydicom_s * 1e6, 1),
                "dcmread_all_values_us": round(values_s * 1e6, 1),
                "scan_us": round(scan_s * 1e6, 1),
                "ratio": round(scan_s / pydicom_s, 2),
                "verdict": str(report.verdict),
                "findings": len(report.findings),
            }
        )
    return rows


def bench_ocr(repeats: int = 3) -> list[dict[str, object]]:
    """The whole scan with OCR on (the default settings, a 1 s budget) of 512×512 images: a
    secondary capture with a name and a code burned in (read), and a clean CT (not read: OCR
    is for the image types where text is plausible). Seconds per image (best of ``repeats``)
    against ``dcmread``, whether OCR read it whole, and whether the code was found."""
    from helpers import REAL

    guard = scanner(DicomSettings())
    rows: list[dict[str, object]] = []
    burned = dicomgen.with_pixel_text(
        dicomgen.clean("SC", rows=512, columns=512), ("Matti Virtanen", REAL), size=28
    )
    for name, data in (
        ("SC 512x512, text burned in", dicomgen.part10(burned)),
        ("clean CT 512x512", dicomgen.part10(dicomgen.clean("CT", rows=512, columns=512))),
    ):
        guard.scan_bytes(data, "application/dicom")  # (the engine is created on first use)
        best, report = float("inf"), None
        for _ in range(repeats):
            start = time.perf_counter()
            report = guard.scan_bytes(data, "application/dicom")
            best = min(best, time.perf_counter() - start)
        assert report is not None
        rows.append(
            {
                "image": name,
                "dcmread_us": round(
                    _best(lambda data=data: pydicom.dcmread(BytesIO(data))) * 1e6, 1
                ),
                "scan_ms": round(best * 1e3, 1),
                "incomplete": "dicom.ocr_incomplete" in report.rules,
                "code_found": "hetu.real" in report.rules,
                "verdict": str(report.verdict),
            }
        )
    return rows


def reads_all() -> None:
    """Patch the pipeline as proposed: no JOSE or PEM search of a DICOM payload's bytes (the
    DICOM parser searches its text values itself)."""
    from kanta_guard import pipeline

    pipeline._READS_ALL = pipeline._READS_ALL | {"dicom"}  # type: ignore[misc]
    pem_items = pipeline.pem_items

    def pem_unless_dicom(payload, state):  # type: ignore[no-untyped-def]
        if (payload.content_type or "").lower().startswith("application/dicom"):
            return iter(())
        return pem_items(payload, state)

    pipeline.pem_items = pem_unless_dicom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 20 ms loops")
    parser.add_argument(
        "--reads-all",
        action="store_true",
        help="measure as if the pipeline counted the DICOM parser among those that find JOSE "
        "tokens and PEM blocks themselves (the change proposed to the lead): it then no "
        "longer searches the object's bytes, pixel data and all, for them",
    )
    args = parser.parse_args()
    if args.reads_all:
        reads_all()
    rows = bench_header(3, 0.02) if args.quick else bench_header()
    ocr = bench_ocr(2 if args.quick else 3)
    if args.json:
        print(json.dumps({"header": rows, "ocr": ocr}, indent=2))
        return
    print(f"pydicom {pydicom.__version__}, Python {sys.version.split()[0]}")
    heads = ("bytes", "dcmread", "+values", "scan")
    print(f"{'image':34} " + " ".join(f"{h:>9}" for h in heads) + "  ratio  verdict")
    for row in rows:
        print(
            f"{row['image']!s:34} {row['bytes']!s:>9} {row['dcmread_us']!s:>7}µs "
            f"{row['dcmread_all_values_us']!s:>7}µs {row['scan_us']!s:>7}µs {row['ratio']!s:>6}  "
            f"{row['verdict']} ({row['findings']} findings)"
        )
    print("\nwith OCR (default settings: on for the image types where text is plausible, 1 s)")
    for row in ocr:
        print(
            f"{row['image']!s:34} dcmread {row['dcmread_us']}µs  scan {row['scan_ms']} ms  "
            f"incomplete: {row['incomplete']}  code found: {row['code_found']}  {row['verdict']}"
        )


if __name__ == "__main__":
    main()
