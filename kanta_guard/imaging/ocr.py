"""Text burned into an image, read by OCR within a time budget.

Engines, chosen by availability (or by :func:`configure`), the one used reported:

- ``rapidocr``: RapidOCR (``rapidocr_onnxruntime``), PaddleOCR's PP-OCRv4 detection and
  recognition models in ONNX, shipped in the wheel, run by onnxruntime: nothing to install
  beyond the package. The shipped recogniser is the Chinese/English one: digits, Latin letters
  and punctuation read well (identity codes, dates), but its alphabet has ``ä`` and no ``ö``,
  ``å``, ``Ä``, ``Ö`` or ``Å``, and it reads even ``ä`` mostly as ``a``: a Finnish name comes
  out without its diacritics (``Mäkelä`` → ``Makela``, which the name rules' folding still
  matches) or, where an ``ö`` or a capital ``Ä``/``Ö`` stands, with that letter dropped or
  misread (``KÄYHKÖ`` → ``KYHK``). :func:`configure` points it at another recognition model
  file (ONNX, with its character list): PP-OCRv5's, whose alphabet has every Finnish letter,
  reads more names but costs about three times as long (bench/ocr_eval.py, ``--rec-model``).
- ``tesseract``: the ``tesseract`` command (Debian's ``tesseract-ocr`` with
  ``tesseract-ocr-fin``), run as a subprocess with ``-l fin+eng`` (whichever of the two are
  installed): Finnish letters read as themselves, but on bench/ocr_eval.py's set it found
  fewer codes and names than RapidOCR (almost none on noisy backgrounds) and took longer. Used
  when RapidOCR is not installed, or when :func:`configure` chooses it.

How an image is read (``read_image_text``):

1. Colour becomes grey by each pixel's brightest channel (coloured annotation on a dark image
   stays bright); a flat image (no contrast) has no text and costs nothing.
2. An image under 512 pixels on its short side is upscaled (integer factor, bicubic), so that
   small text in a small image reaches the size the models were trained on.
3. An image larger than about 1.5 × 512² pixels is read in horizontal strips 512 pixels high
   overlapping by 64 (more than a line of annotation is high, so no line is cut in every strip
   it crosses), at most 2048 pixels wide (wider images in columns overlapping by 256): the
   image is tiled, never downscaled, because downscaling erases small text. The top and bottom
   strips go first: that is where modalities burn in patient data.
4. Each piece is read as it is (light-on-dark or dark-on-light: RapidOCR's detector finds
   both); while time is left, each piece is detected once more inverted and only the boxes the
   first pass did not have are recognised (about 15 % more time; on bench/ocr_eval.py's set it
   finds little, it is there for text one polarity's detection misses). Binarising (Otsu) was
   measured to lose a third of the names and codes with RapidOCR, so it is not done; Tesseract
   binarises by itself.
5. Words the recogniser glued together (it seldom outputs a space between Latin words) are
   split where a lower-case letter meets a capital: ``KaukolinnaBoatemaa``. Glued capitals
   (``SHAHZADHEKA``) stay glued: a limit of the model.

The budget: a piece is started only if the engine's measured cost (running averages per
engine: detection per pixel, one recognition batch) fits in what is left of ``budget_s``, and
RapidOCR checks it again before each batch of six lines; Tesseract gets the time left as its
subprocess timeout. Anything left unread makes the result ``complete=False`` (the inverted pass
is extra and never does). One engine call cannot be interrupted, so the time spent can pass the
budget by one call's misestimate (a recognition batch is about 0.1 s here; more when the
machine is loaded); a budget smaller than one piece's cost reads nothing and says so.

The RapidOCR engine is created once per process, on first use, under a lock; onnxruntime
already spreads one inference over every core, so calls are serialised by another lock (a
caller's wait counts against its budget). Creating it (about 0.3 s, with one warm-up
inference) is not charged to the image that triggered it.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "ENGINES",
    "ImageText",
    "available_engines",
    "configure",
    "read_image_text",
]

#: Engine names, in the order they are chosen by availability.
ENGINES = ("rapidocr", "tesseract")

type _Grey = npt.NDArray[np.uint8]

_SIDE = 512  # the models' working size: short sides below it are upscaled, strips are this high
_OVERLAP = 64  # strips overlap by more than a line of annotation is high
_MAX_WIDTH = 2048  # wider images are read in columns ...
_COLUMN_OVERLAP = 256  # ... overlapping by more than an identity code is wide at 24 px
_WHOLE = int(1.5 * _SIDE * _SIDE)  # up to this many pixels an image is read in one piece
_MAX_UPSCALE = 4
#: Whether the image is read a second time inverted when the budget leaves time for it.
_SECOND_PASS = True
_FLAT = 16  # an image whose grey values span less than this has no legible text
# A word glued to the next by the recogniser (it rarely outputs a space between Latin words):
# "KaukolinnaBoatemaa" → "Kaukolinna Boatemaa", so that each name is a word again.
_GLUED = re.compile(r"(?<=[a-zäöå])(?=[A-ZÄÖÅ][a-zäöå])")


@dataclass(frozen=True, slots=True)
class ImageText:
    """What OCR read in one image.

    ``text`` is the lines found, one a line, in the order read (top to bottom within each
    piece); ``complete`` is False when part of the image was not read (the budget ran out, no
    engine is installed): ``note`` says which part and why, in words with no value of the
    image. ``engine`` names the engine (``none`` when there is none) and ``seconds`` the wall
    time spent.
    """

    text: str
    complete: bool
    engine: str
    seconds: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Read:
    """What one engine call read: lines, the boxes they were found in, whether it finished."""

    lines: list[str]
    boxes: list[_Box]
    finished: bool
    #: Why it did not finish, if not for the deadline.
    failure: str = ""


type _Box = tuple[float, float, float, float]  # left, top, right, bottom


class _Engine(Protocol):
    """An OCR engine: reads the lines of a grey image until ``deadline`` (perf_counter)."""

    name: str
    #: Whether reading the image inverted can find what the first reading missed.
    second_pass: bool

    def estimate(self, pixels: int) -> float:
        """Seconds the engine needs at least to start on an image of ``pixels``."""
        ...

    def relax(self) -> None:
        """Move the measured costs back towards their seeds (see ``_Average.relax``)."""
        ...

    def read(self, image: _Grey, deadline: float, known: list[_Box]) -> _Read:
        """The lines in ``image``, skipping text in the ``known`` boxes (read before)."""
        ...


@dataclass(frozen=True, slots=True)
class _Settings:
    engine: str | None = None
    rec_model: str | None = None
    rec_keys: str | None = None


_lock = threading.Lock()
_settings = _Settings()
_engines: dict[str, _Engine] = {}


def configure(
    *, engine: str | None = None, rec_model: str | None = None, rec_keys: str | None = None
) -> None:
    """Choose the engine (``rapidocr``, ``tesseract``, or None: by availability) and, for
    RapidOCR, a recognition model file (ONNX) and its character list to use instead of the
    shipped Chinese/English one. Takes effect from the next read (engines are recreated).

    Raises ValueError for an unknown engine or a model file that does not exist: a start-up
    error, called when the policy is loaded.
    """
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"unknown OCR engine {engine!r}: one of {', '.join(ENGINES)}")
    for path in (rec_model, rec_keys):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"OCR model file not found: {path}")
    global _settings
    with _lock:
        _settings = _Settings(engine, rec_model, rec_keys)
        _engines.clear()


def available_engines() -> tuple[str, ...]:
    """The engines installed here, in the order they are chosen."""
    found = []
    if importlib.util.find_spec("rapidocr_onnxruntime") is not None:
        found.append("rapidocr")
    if shutil.which("tesseract") is not None:
        found.append("tesseract")
    return tuple(found)


def read_image_text(
    image: npt.NDArray[Any], *, budget_s: float = 1.0, engine: str | None = None
) -> ImageText:
    """The text in ``image`` (8-bit grey or RGB, as :func:`~.pixels.frames_of` yields), read
    by ``engine`` (None: the configured one, else the first available) in about ``budget_s``
    seconds at most. See the module docstring for how the image is prepared and cut."""
    try:
        reader = _engine(engine)
    except LookupError as missing:
        return ImageText("", False, "none", 0.0, str(missing))
    start = time.perf_counter()
    deadline = start + budget_s
    grey = _grey(image)
    if grey.size == 0 or int(grey.max()) - int(grey.min()) < _FLAT:
        return ImageText("", True, reader.name, time.perf_counter() - start)
    pieces = list(_pieces(_upscaled(grey)))
    lines: dict[str, None] = {}  # ordered, without repeats
    found: list[list[_Box]] = []
    finished = True
    failure = ""
    for index, piece in enumerate(pieces):
        if time.perf_counter() + reader.estimate(piece.size) > deadline:
            if not index:
                # Nothing read: an estimate that only reads could correct must not stop every
                # later image too (a slow read on a loaded machine): it falls back a step.
                reader.relax()
            break
        done = reader.read(piece, deadline, [])
        lines.update(dict.fromkeys(_tidy(done.lines)))
        found.append(done.boxes)
        if not done.finished:
            finished, failure = False, done.failure
            break
    complete = finished and len(found) == len(pieces)
    if complete and _SECOND_PASS and reader.second_pass:
        for piece, boxes in zip(pieces, found, strict=True):
            if time.perf_counter() + reader.estimate(piece.size) > deadline:
                break
            done = reader.read(_inverted(piece), deadline, boxes)
            lines.update(dict.fromkeys(_tidy(done.lines)))
            if not done.finished:
                break
    note = ""
    if not complete:
        why = failure or f"the time budget of {budget_s:g} s ran out"
        where = (
            f"after {len(found)} of {len(pieces)} pieces"
            if finished
            else f"in piece {len(found)} of {len(pieces)}"
        )
        note = f"{why} {where} of a {image.shape[0]} x {image.shape[1]} image"
    return ImageText("\n".join(lines), complete, reader.name, time.perf_counter() - start, note)


def _tidy(lines: list[str]) -> Iterator[str]:
    """Lines stripped, glued words split, empty ones dropped."""
    for line in lines:
        if tidy := _GLUED.sub(" ", line.strip()):
            yield tidy


# -- Preparing the image -------------------------------------------------------------------


def _grey(image: npt.NDArray[Any]) -> _Grey:
    """An 8-bit grey image: colour by its brightest channel, other dtypes stretched."""
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[..., :3].max(axis=2) if array.shape[2] > 1 else array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"not an image: an array of {array.ndim} dimensions")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        flags: _Grey = array.astype(np.uint8) * np.uint8(255)
        return flags
    values = np.nan_to_num(array.astype(np.float32))
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if not high > low:
        return np.zeros(array.shape, dtype=np.uint8)
    stretched: _Grey = np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)
    return stretched


def _inverted(grey: _Grey) -> _Grey:
    """The image in the other polarity (255 − value)."""
    inverted: _Grey = np.bitwise_not(grey)
    return inverted


def _upscaled(grey: _Grey) -> _Grey:
    """A small image scaled up by an integer factor so that its short side reaches 512."""
    short = min(grey.shape)
    if short >= _SIDE:
        return grey
    return _scaled(grey, min(math.ceil(_SIDE / short), _MAX_UPSCALE))


def _scaled(grey: _Grey, factor: int) -> _Grey:
    """The image ``factor`` times larger (bicubic; Pillow, so that no engine's library is
    needed for it)."""
    from PIL import Image

    height, width = grey.shape
    larger = Image.fromarray(grey).resize(
        (width * factor, height * factor), Image.Resampling.BICUBIC
    )
    return np.asarray(larger, dtype=np.uint8)


def _pieces(grey: _Grey) -> Iterator[_Grey]:
    """The image whole, or its strips (top, bottom, then the middle ones) and columns."""
    height, width = grey.shape
    if height * width <= _WHOLE:
        yield grey
        return
    rows = _spans(height, _SIDE, _OVERLAP)
    if len(rows) > 2:
        rows = [rows[0], rows[-1], *rows[1:-1]]
    columns = _spans(width, _MAX_WIDTH, _COLUMN_OVERLAP)
    for top, bottom in rows:
        for left, right in columns:
            yield grey[top:bottom, left:right]


def _spans(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Windows of ``size`` over ``length`` overlapping by ``overlap``, the last one flush.

    >>> _spans(1024, 512, 64)
    [(0, 512), (448, 960), (512, 1024)]
    >>> _spans(300, 512, 64)
    [(0, 300)]
    """
    if length <= size:
        return [(0, length)]
    step = size - overlap
    starts = [*range(0, length - size, step), length - size]
    return [(start, start + size) for start in dict.fromkeys(starts)]


# -- Engines -------------------------------------------------------------------------------


def _engine(name: str | None) -> _Engine:
    """The engine ``name`` (created on first use), or the configured or first available one.

    Raises LookupError (with a sentence for the note) when it is not installed.
    """
    with _lock:
        settings = _settings
        wanted = name or settings.engine
        available = available_engines()
        for candidate in (wanted,) if wanted else ENGINES:
            if candidate not in available:
                continue
            if candidate not in _engines:
                _engines[candidate] = _create(candidate, settings)
            return _engines[candidate]
    if wanted:
        raise LookupError(f"OCR engine {wanted} is not installed")
    raise LookupError("no OCR engine is installed")


def _create(name: str, settings: _Settings) -> _Engine:
    """A new engine (called under the lock)."""
    if name == "rapidocr":
        return _RapidOcr(settings.rec_model, settings.rec_keys)
    return _Tesseract(shutil.which("tesseract") or "tesseract")


class _Average:
    """A running average of a measured cost, seeded with this machine's figure."""

    def __init__(self, seed: float, weight: float = 0.3) -> None:
        self.value = self._seed = seed
        self._weight = weight

    def add(self, sample: float) -> None:
        self.value += self._weight * (sample - self.value)

    def relax(self) -> None:
        """Halfway back to the seed, if above it: after an image was refused on this estimate
        alone."""
        if self.value > self._seed:
            self.value = (self.value + self._seed) / 2


class _RapidOcr:
    """RapidOCR with the settings measured best for burned-in annotation (bench/ocr_eval.py).

    The detector works at the image's own size (``det_limit_side_len=512``: the default of 736
    upscales a 512 image, which merges the words of a line into one box); the angle classifier
    is off (annotation is upright); RapidOCR never downscales (:func:`_pieces` tiles instead).

    Detection and recognition are called separately (RapidOCR's ``auto_text_det``,
    ``get_crop_img_list`` and ``text_rec``, what its ``__call__`` does in one go) so that the
    budget is checked between recognition batches: here detection costs about 0.06 s for
    512 × 512 and recognition about 0.1 s a batch of 6 lines, so an image full of text would
    otherwise overrun.
    """

    second_pass = True
    _BATCH = 6  # lines recognised per call: RapidOCR's own batch size

    def __init__(self, rec_model: str | None, rec_keys: str | None) -> None:
        from rapidocr_onnxruntime import RapidOCR

        options: dict[str, Any] = {
            "det_limit_side_len": _SIDE,
            "use_cls": False,
            "max_side_len": 4 * _MAX_WIDTH,
        }
        self.name = "rapidocr"
        if rec_model is not None:
            options["rec_model_path"] = rec_model
            self.name = f"rapidocr:{Path(rec_model).stem}"
        if rec_keys is not None:
            options["rec_keys_path"] = rec_keys
        self._ocr = RapidOCR(**options)
        self._score = float(self._ocr.text_score)
        # RapidOCR's detector keeps per-call state on itself: one call at a time.
        self._calls = threading.Lock()
        self._detect = _Average(2.5e-7)  # seconds per pixel
        # Seconds per recognition call of up to _BATCH lines: a call's cost is mostly its
        # batch's (padded) width, not how many of the lines are filled.
        self._recognise = _Average(0.1)
        # The first inferences allocate onnxruntime's memory arenas (about 0.3 s): done here,
        # on a blank 512 × 512 image and a blank line, not on the first image read.
        blank = np.zeros((_SIDE, _SIDE, 3), dtype=np.uint8)
        self._ocr.auto_text_det(blank)
        self._ocr.text_rec([blank[:48, :320]] * self._BATCH)

    def estimate(self, pixels: int) -> float:
        """Detection of ``pixels`` and one batch of recognition."""
        return self._detect.value * pixels + self._recognise.value

    def relax(self) -> None:
        self._detect.relax()
        self._recognise.relax()

    def read(self, image: _Grey, deadline: float, known: list[_Box]) -> _Read:
        """Detect, then recognise batch by batch while the deadline allows."""
        import cv2

        colour = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        with self._calls:
            began = time.perf_counter()
            boxes, _ = self._ocr.auto_text_det(colour)
            if image.size >= _SIDE * _SIDE // 4:
                # (A small image's time is mostly the call's own overhead: as a cost per pixel
                # it would make every later image look too dear to start.)
                self._detect.add((time.perf_counter() - began) / image.size)
            if not boxes:
                return _Read([], [], True)
            seen = _BoxIndex(known)
            fresh = [box for box in boxes if not seen.covers(_bounds(box))]
            crops = self._ocr.get_crop_img_list(colour, fresh) if fresh else []
            # Batches of similar width (as RapidOCR batches them): a batch is padded to its
            # widest line, and padding changes what the recogniser reads.
            order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
            texts: dict[int, str] = {}
            for first in range(0, len(order), self._BATCH):
                batch = order[first : first + self._BATCH]
                if time.perf_counter() + self._recognise.value > deadline:
                    lines = [texts[i] for i in sorted(texts)]
                    return _Read(lines, [_bounds(box) for box in boxes], False)
                began = time.perf_counter()
                results, _ = self._ocr.text_rec([crops[i] for i in batch])
                self._recognise.add(time.perf_counter() - began)
                for i, result in zip(batch, results, strict=True):
                    if float(result[1]) >= self._score:
                        texts[i] = str(result[0])
            lines = [texts[i] for i in sorted(texts)]
        return _Read(lines, [_bounds(box) for box in boxes], True)


def _bounds(box: Any) -> _Box:
    """The axis-aligned bounds of a detected quadrilateral (4 × 2 points)."""
    points = np.asarray(box, dtype=np.float32)
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    return float(left), float(top), float(right), float(bottom)


class _BoxIndex:
    """Boxes read before, found again by where their centre lies (a grid of 16 px cells), so
    that the inverted pass recognises only text the first pass did not see; linear in the
    number of boxes, as a box is compared only with those in its and the adjacent cells."""

    _CELL = 16.0

    def __init__(self, boxes: list[_Box]) -> None:
        self._cells: dict[tuple[int, int], list[_Box]] = {}
        for box in boxes:
            self._cells.setdefault(self._cell(box), []).append(box)

    def _cell(self, box: _Box) -> tuple[int, int]:
        return (
            int((box[0] + box[2]) / 2 // self._CELL),
            int((box[1] + box[3]) / 2 // self._CELL),
        )

    def covers(self, box: _Box) -> bool:
        """True if a known box overlaps ``box`` by more than half (intersection over union)."""
        column, row = self._cell(box)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for other in self._cells.get((column + dx, row + dy), ()):
                    if _iou(box, other) > 0.5:
                        return True
        return False


def _iou(a: _Box, b: _Box) -> float:
    """Intersection over union of two boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class _Tesseract:
    """The ``tesseract`` command: dark text on light (inverted if the image is dark), scaled
    up twice (its LSTM reads text about 30 px high best), sparse text layout (``--psm 11``:
    annotation is scattered, not a page), Finnish and English where installed."""

    second_pass = False  # it sees one polarity whatever it is given (inverted to dark on light)

    def __init__(self, command: str) -> None:
        self._command = command
        languages = self._languages()
        wanted = [language for language in ("fin", "eng") if language in languages]
        self._languages_arg = "+".join(wanted) if wanted else "eng"
        self.name = f"tesseract:{self._languages_arg}"
        self._cost = _Average(2.0e-6)  # seconds per pixel of the image given

    def _languages(self) -> set[str]:
        """The installed language data (``tesseract --list-langs``)."""
        try:
            listed = subprocess.run(
                [self._command, "--list-langs"], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return set()
        return {line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()}

    def estimate(self, pixels: int) -> float:
        """The measured cost of that many pixels."""
        return self._cost.value * pixels

    def relax(self) -> None:
        self._cost.relax()

    def read(self, image: _Grey, deadline: float, known: list[_Box]) -> _Read:
        """The lines Tesseract reads; unfinished when it ran past the deadline or failed."""
        import io

        from PIL import Image

        pixels = image.size
        if float(np.median(image)) < 128:
            image = _inverted(image)
        if max(image.shape) <= _MAX_WIDTH:
            image = _scaled(image, 2)
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG", compress_level=1)
        began = time.perf_counter()
        try:
            done = subprocess.run(
                [self._command, "stdin", "stdout", "-l", self._languages_arg, "--psm", "11"],
                input=png.getvalue(),
                capture_output=True,
                timeout=max(deadline - began, 0.01),
            )
        except subprocess.TimeoutExpired:
            return _Read([], [], False)
        self._cost.add((time.perf_counter() - began) / pixels)
        if done.returncode != 0:
            return _Read([], [], False, "the tesseract command failed")
        text = done.stdout.decode("utf-8", "replace")
        return _Read([line for line in text.splitlines() if line.strip()], [], True)
