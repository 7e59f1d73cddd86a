"""Recall of burned-in names and identity codes by OCR, and its time per 512 × 512 image.

    .venv/bin/python bench/ocr_eval.py                     # every installed engine
    .venv/bin/python bench/ocr_eval.py --engine rapidocr --images 30 --single-pass
    .venv/bin/python bench/ocr_eval.py --save /tmp/ocr-set  # also write the images as PNG
    .venv/bin/python bench/ocr_eval.py --rec-model REC.onnx --rec-keys DICT.txt  # another model

The set is rendered here with a fixed seed (nothing is stored): 512 × 512 grey images, as a CT,
MR or ultrasound frame looks after :func:`kanta_guard.imaging.frames_of`, on three
backgrounds — black (CT/MR annotation outside the body), noisy (speckle and a bright blob, as
ultrasound or tissue behind the text) and a grey gradient (a scanned or secondary-capture
image) — with lines of text 10–24 px high, drawn white to light grey in Pillow's bundled font
(Aileron) and, where installed, DejaVu Sans and DejaVu Sans Mono:

- names: a surname and a given name from the DVV lists (``kanta_guard/data/names``), half of
  them with ä, ö or å, as ``Surname, Given``, ``SURNAME GIVEN`` or ``Given Surname``;
- identity codes: 900-series test codes and real-range codes computed here (DVV checksum), bare
  or after ``ID:`` / ``Hetu``;
- dates, times and modality annotation (``5.0 MHz G 45``, ``W:400 L:40``) as distractors.

Recall counts each rendered name part and code:

- a code is found if :func:`kanta_guard.idcode.loose_tokens` finds it in the OCR text (what
  the identity-code rule would see);
- a name part is found *folded* if :func:`kanta_guard.names.fold` of it is a word of the OCR
  text folded (what the name rules compare: ``Makela`` matches ``Mäkelä``), and *exact* if it
  is a word of the text as written (diacritics and case kept).

Seconds are wall time of ``read_image_text`` per image (the engine created beforehand), with
the default budget of 1 s unless ``--budget`` says otherwise; ``incomplete`` counts the images
the budget did not cover. The machine is shared by whatever else runs: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kanta_guard import idcode  # noqa: E402
from kanta_guard.imaging import available_engines, configure, ocr, read_image_text  # noqa: E402
from kanta_guard.names import fold  # noqa: E402

SEED = 20261210
SIZE = 512
BACKGROUNDS = ("black", "noisy", "grey")
_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
)
_DISTRACTORS = (
    "12.03.2024 14:22",
    "2023-11-05 08:01:44",
    "5.0 MHz  G 45",
    "L  ANT",
    "Ser: 3  Img: 12",
    "W:400 L:40",
    "DFOV 25.0cm",
    "kV 120  mA 250",
)
_WORD = re.compile(r"[^\W\d_]+")


@dataclass
class Sample:
    """One rendered image and what was written on it."""

    image: np.ndarray
    background: str
    names: list[tuple[str, int]] = field(default_factory=list)  # (name part, text px)
    codes: list[tuple[str, int, bool]] = field(default_factory=list)  # (code, px, real)


def _names(file: str) -> list[str]:
    with gzip.open(ROOT / "kanta_guard" / "data" / "names" / file, "rt", encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _code(rng: random.Random, real: bool) -> str:
    """A valid code: a real-range individual number (002–899) or a test one (900–999)."""
    while True:
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(0, 99)
        sign = rng.choice("-A")
        if sign == "A" and year > 24:
            continue
        number = rng.randint(2, 899) if real else rng.randint(900, 999)
        date = f"{day:02d}{month:02d}{year:02d}"
        code = f"{date}{sign}{number:03d}{_CHECK[int(date + f'{number:03d}') % 31]}"
        if idcode.is_real(code) == real:
            return code


def _fonts() -> list[str | None]:
    """Font files to draw with (None: Pillow's bundled font)."""
    return [None, *(path for path in _FONT_FILES if Path(path).is_file())]


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


def _background(rng: random.Random, kind: str) -> np.ndarray:
    noise = np.random.default_rng(rng.randrange(1 << 30))
    if kind == "black":
        return np.zeros((SIZE, SIZE), np.float32)
    if kind == "grey":
        low, high = rng.randint(20, 60), rng.randint(90, 130)
        return np.tile(np.linspace(low, high, SIZE, dtype=np.float32), (SIZE, 1))
    image = noise.normal(40, 25, (SIZE, SIZE)).astype(np.float32)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    cx, cy = rng.randint(150, 360), rng.randint(150, 360)
    image += 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 110.0**2))
    return image


def make_set(count: int, seed: int = SEED) -> list[Sample]:
    """``count`` rendered images, cycling through the backgrounds."""
    rng = random.Random(seed)
    given, surnames = _names("given.txt.gz"), _names("surnames.txt.gz")
    marked = [name for name in surnames if re.search("[äöå]", name)]
    fonts = _fonts()
    samples = []
    for index in range(count):
        kind = BACKGROUNDS[index % len(BACKGROUNDS)]
        sample = Sample(np.zeros(0), kind)
        canvas = Image.fromarray(np.clip(_background(rng, kind), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        y = 6
        while True:
            px = rng.randint(10, 24)
            if y + px > SIZE - 6:
                break
            font = _font(rng.choice(fonts), px)
            roll = rng.random()
            if roll < 0.4:
                surname = rng.choice(marked if rng.random() < 0.5 else surnames).capitalize()
                first = rng.choice(given).capitalize()
                text = rng.choice(
                    [
                        f"{surname}, {first}",
                        f"{surname.upper()} {first.upper()}",
                        f"{first} {surname}",
                    ]
                )
                sample.names += [(surname, px), (first, px)]
            elif roll < 0.7:
                real = rng.random() < 0.5
                code = _code(rng, real)
                text = rng.choice(["", "ID: ", "Hetu "]) + code
                sample.codes.append((code, px, real))
            else:
                text = rng.choice(_DISTRACTORS)
            width = draw.textlength(text, font=font)
            x = rng.randint(4, max(4, int(SIZE - width - 4)))
            draw.text((x, y), text, fill=rng.choice((255, 235, 210)), font=font)
            y += int(px * rng.uniform(1.5, 2.5))
        sample.image = np.asarray(canvas)
        samples.append(sample)
    return samples


def _bucket(px: int) -> str:
    return "10-13px" if px <= 13 else "14-18px" if px <= 18 else "19-24px"


def evaluate(engine: str, samples: list[Sample], budget: float) -> dict[str, object]:
    """Recall and time of ``engine`` on ``samples``."""
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    seconds = []
    incomplete = 0
    read_image_text(samples[0].image, budget_s=budget, engine=engine)  # create and warm up
    for sample in samples:
        began = time.perf_counter()
        result = read_image_text(sample.image, budget_s=budget, engine=engine)
        seconds.append(time.perf_counter() - began)
        incomplete += not result.complete
        words = set(_WORD.findall(result.text))
        folded = {fold(word) for word in words}
        codes = {idcode.normalise(token) for token in idcode.loose_tokens(result.text)}
        for name, px in sample.names:
            marked = "with äöå" if re.search("[äöåÄÖÅ]", name) else "without"
            for key in (
                "names",
                f"names {_bucket(px)}",
                f"names {sample.background}",
                f"names {marked}",
            ):
                hits[key][0] += fold(name) in folded
                hits[key][1] += 1
            hits["names exact"][0] += name in words or name.upper() in words
            hits["names exact"][1] += 1
        for code, px, real in sample.codes:
            for key in (
                "codes",
                f"codes {_bucket(px)}",
                f"codes {sample.background}",
                "codes real" if real else "codes 900-series",
            ):
                hits[key][0] += code in codes
                hits[key][1] += 1
    return {
        "engine": result.engine,
        "hits": dict(hits),
        "seconds": seconds,
        "incomplete": incomplete,
    }


def report(results: list[dict[str, object]], images: int, budget: float) -> None:
    print(f"{images} images of {SIZE}x{SIZE}, budget {budget:g} s per image")
    for result in results:
        hits = result["hits"]
        seconds = result["seconds"]
        assert isinstance(hits, dict) and isinstance(seconds, list)
        print(f"\nengine {result['engine']}")
        for key in sorted(hits, key=lambda k: (k.split()[0], len(k), k)):
            found, total = hits[key]
            print(f"  {key:<22} {found:4d}/{total:<4d} {found / total:6.1%}")
        ordered = sorted(seconds)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(
            f"  seconds per image      mean {statistics.fmean(seconds):.3f}  median "
            f"{statistics.median(seconds):.3f}  p95 {p95:.3f}  max {ordered[-1]:.3f}"
        )
        print(f"  incomplete             {result['incomplete']}/{images}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--engine", action="append", choices=ocr.ENGINES)
    parser.add_argument("--single-pass", action="store_true", help="no second, inverted pass")
    parser.add_argument("--save", type=Path, help="write the rendered images here as PNG")
    parser.add_argument("--rec-model", help="RapidOCR: another recognition model (ONNX)")
    parser.add_argument("--rec-keys", help="RapidOCR: that model's character list")
    args = parser.parse_args()
    if args.rec_model or args.rec_keys:
        configure(rec_model=args.rec_model, rec_keys=args.rec_keys)
    if args.single_pass:
        ocr._SECOND_PASS = False
    samples = make_set(args.images, args.seed)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for index, sample in enumerate(samples):
            Image.fromarray(sample.image).save(args.save / f"{index:03d}-{sample.background}.png")
    engines = args.engine or list(available_engines())
    if not engines:
        sys.exit("no OCR engine installed")
    report(
        [evaluate(engine, samples, args.budget) for engine in engines], len(samples), args.budget
    )


if __name__ == "__main__":
    main()
