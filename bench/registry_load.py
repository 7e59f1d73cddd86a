"""Timing of kanta_guard.registry.load_registry on a generated registry of 100,000 identities.

Writes the same registry as TOML and as CSV to a temp dir and prints the best of three loads of
each, and the best time of the garbage collector's first full pass after a load (not part of the
load, but paid at start-up: what the load built is walked once). Every identity has a distinct
valid 900-series code (check character computed as DVV defines it), one to three given names, a
family name (some double-barrelled), a pool (joint ones with test cases) and a role; every fifth
one has its own phone (from a few shared test numbers), e-mail and address, and ``--contacts``
gives every identity all three (the worst case).

    .venv/bin/python bench/registry_load.py [--identities N] [--contacts]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import tempfile
import time
from pathlib import Path

from kanta_guard.registry import load_registry

_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_SIGNS = "-YXWVUABCDEF"
_GIVEN = ["Maija", "Liisa", "Anna", "Sofia", "Arto", "Alvar", "Hannu", "Ilmari", "Aino", "Eero"]
_FAMILY = ["Testinen", "Koekäyttäjä", "Mäkinen", "Virtanen", "Testaaja", "Lääkäri", "Kokeilu"]


def codes(count: int) -> list[str]:
    """``count`` distinct valid 900-series codes."""
    out: list[str] = []
    day = datetime.date(1930, 1, 1)
    while len(out) < count:
        date = day.strftime("%d%m%y")
        sign = _SIGNS[len(out) % 6] if day.year < 2000 else _SIGNS[6 + len(out) % 6]
        for number in range(900, 1000):
            out.append(f"{date}{sign}{number}{_CHECK[int(date + str(number)) % 31]}")
        day += datetime.timedelta(days=1)
    return out[:count]


def people(count: int, contacts: bool) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, code in enumerate(codes(count)):
        family = _FAMILY[i % 7] + (f"-{_FAMILY[(i // 7) % 7]}" if i % 10 == 0 else "")
        row: dict[str, object] = {
            "code": code,
            "given": " ".join(_GIVEN[(i + k) % 10] for k in range(1 + i % 3)),
            "family": f"{family}{i // 49}",
            "pool": "joint" if i % 2 else "independent",
            "role": "professional" if i % 9 == 0 else "patient",
        }
        if i % 2:
            row["cases"] = [f"TC-{i % 300}", f"TC-{i % 300 + 1}"]
        if contacts or i % 5 == 0:
            row["phones"] = [f"+358 40 {i % 500:07d}"]
            row["emails"] = [f"testi.{i}@example.com"]
            row["addresses"] = [f"Testikatu {i % 200} A {i % 50}, 00{i % 99:03d} Helsinki"]
        rows.append(row)
    return rows


def write_toml(rows: list[dict[str, object]], path: Path) -> None:
    out = ['[contacts]\nphones = ["+358 40 0000001"]\n']
    for row in rows:
        out.append("\n[[identity]]\n")
        for key, value in row.items():
            if isinstance(value, list):
                out.append(f"{key} = [" + ", ".join(f'"{v}"' for v in value) + "]\n")
            else:
                out.append(f'{key} = "{value}"\n')
    path.write_text("".join(out), "utf-8")


def write_csv(rows: list[dict[str, object]], path: Path) -> None:
    columns = ["code", "given", "family", "pool", "cases", "role", "phones", "emails", "addresses"]
    out = [",".join(columns) + "\n", ',,,,,,"+358 40 0000001",,\n']
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name, "")
            text = ";".join(value) if isinstance(value, list) else str(value)
            cells.append(f'"{text}"' if "," in text else text)
        out.append(",".join(cells) + "\n")
    path.write_text("".join(out), "utf-8")


def best_of(path: Path, runs: int = 3) -> tuple[float, float]:
    """The best load time of ``runs`` and the best time of the collector's first full pass
    after a load (the load pauses the collector; its first pass walks what the load built)."""
    times, passes = [], []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        registry = load_registry(path)
        times.append(time.perf_counter() - start)
        assert len(registry) > 0
        start = time.perf_counter()
        gc.collect()
        passes.append(time.perf_counter() - start)
        # (Freed outside the timing: else the next load's time holds this one's deallocation.)
        del registry
    return min(times), min(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument("--contacts", action="store_true", help="contact details on every one")
    args = parser.parse_args()
    rows = people(args.identities, args.contacts)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {kind: Path(tmp) / f"registry.{kind}" for kind in ("toml", "csv")}
        write_toml(rows, paths["toml"])
        write_csv(rows, paths["csv"])
        del rows  # (else every collection timed below walks them too)
        for kind, path in paths.items():
            size = path.stat().st_size / 1e6
            seconds, collection = best_of(path)
            print(
                f"{kind:4}  {args.identities} identities  {size:5.1f} MB  "
                f"load {seconds:.3f} s (min of 3)  first gc pass after {collection:.3f} s"
            )


if __name__ == "__main__":
    main()
