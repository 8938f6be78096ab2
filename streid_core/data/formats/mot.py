"""MOTChallenge files: det.txt, gt.txt, tracker results, seqinfo.ini, and the benchmark layout.

One box per line, comma separated (whitespace is accepted too), frames counted from 1:
  det.txt   frame, -1, x, y, w, h, confidence[, -1, -1, -1]
  gt.txt    frame, id, x, y, w, h, consider_flag, class, visibility
  results   frame, id, x, y, w, h, confidence, -1, -1, -1
Boxes are top-left x, y, width, height in pixels. In gt.txt a consider_flag of 0 marks a box
that is not scored, and class 1 is a pedestrian (MOT16/17/20 numbering; 2, 7, 8 and 12 are
distractors such as reflections or static people). Short gt lines (MOT15 style) read as
flag 1, class 1, visibility 1.

A benchmark folder holds one folder per sequence: <root>/<seq>/seqinfo.ini and
<root>/<seq>/gt/gt.txt; a tracker's results are <results_dir>/<seq>.txt.
"""
from __future__ import annotations

import configparser
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...atomic import atomic_file
from ...errors import StreidError

GT_COLUMNS = 9  # frame, id, x, y, w, h, consider_flag, class, visibility
RESULT_COLUMNS = 7  # frame, id, x, y, w, h, confidence


@dataclass(frozen=True)
class SeqInfo:
    """The [Sequence] section of a MOTChallenge seqinfo.ini."""

    name: str
    seq_length: int
    frame_rate: float = 30.0
    im_width: int = 0
    im_height: int = 0
    im_dir: str = "img1"
    im_ext: str = ".jpg"


@dataclass(frozen=True)
class GroundTruthSequence:
    """One sequence of a benchmark folder."""

    name: str
    gt_path: Path
    seqinfo: SeqInfo


def _number(value: float) -> str:
    """Shortest text that reads back as the same float, without exponent notation."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return np.format_float_positional(value, trim="-")


def _read_table(path: str | os.PathLike, min_fields: int, what: str) -> np.ndarray:
    """Parse a MOT text file into a float array, one row per non-empty line (ragged -> padded NaN)."""
    path = Path(path)
    if not path.is_file():
        raise StreidError(f"{path}: {what} file not found; check the path")
    rows: list[list[float]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StreidError(f"{path}: cannot read {what} file ({exc}); is it a MOTChallenge text file?") from None
    for line_number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        parts = [p.strip() for p in text.split(",")] if "," in text else text.split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise StreidError(
                f"{path}:{line_number}: not a list of numbers ({text[:60]!r}); expected {what} lines "
                f"'frame,id,x,y,w,h,...'"
            ) from None
        if len(values) < min_fields or not all(math.isfinite(v) for v in values[:min_fields]):
            raise StreidError(
                f"{path}:{line_number}: expected at least {min_fields} finite comma-separated numbers, "
                f"got {text[:60]!r}"
            )
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        if bad is not None:  # NaN would otherwise read as a missing value (a NaN confidence as 1.0)
            raise StreidError(f"{path}:{line_number}: column {bad + 1} is {parts[bad]!r}, not a finite number; "
                              "fix the file (write -1 for an unknown value)")
        frame = values[0]
        if not frame.is_integer() or frame < 1:
            raise StreidError(f"{path}:{line_number}: frame {parts[0]!r} must be a whole number >= 1")
        rows.append(values)
    width = max((len(r) for r in rows), default=min_fields)
    table = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    return table


def _check_boxes(path: Path, table: np.ndarray) -> None:
    bad = np.flatnonzero((table[:, 4] <= 0) | (table[:, 5] <= 0))
    if len(bad):
        raise StreidError(f"{path}: box with non-positive width or height (row {bad[0] + 1}); fix the file")


def _check_unique_ids(path: Path, frames: np.ndarray, ids: np.ndarray) -> None:
    pairs = np.stack([frames, ids], axis=1)
    unique, counts = np.unique(pairs, axis=0, return_counts=True)
    if np.any(counts > 1):
        frame, track = unique[np.argmax(counts > 1)]
        raise StreidError(f"{path}: id {int(track)} appears twice in frame {int(frame)}; ids must be unique per frame")


def _check_integer_ids(path: Path, ids: np.ndarray) -> None:
    bad = np.flatnonzero((ids != np.round(ids)) | (ids < 0))
    if len(bad):
        raise StreidError(f"{path}: id {ids[bad[0]]:g} (row {bad[0] + 1}) must be a whole number >= 0")


def read_detections(path: str | os.PathLike) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """det.txt -> {frame: (boxes (n,4) x,y,w,h, confidences (n,))}; a missing confidence reads as 1."""
    table = _read_table(path, 6, "detection")
    _check_boxes(Path(path), table)
    confidences = table[:, 6] if table.shape[1] > 6 else np.ones(len(table))
    confidences = np.where(np.isnan(confidences), 1.0, confidences)
    detections = {}
    for frame in np.unique(table[:, 0]).astype(int):
        rows = table[:, 0] == frame
        detections[int(frame)] = (table[rows, 2:6].copy(), confidences[rows].copy())
    return detections


def read_ground_truth(path: str | os.PathLike) -> np.ndarray:
    """gt.txt -> (N,9): frame, id, x, y, w, h, consider_flag, class, visibility."""
    path = Path(path)
    out = _read_track_rows(path, "ground-truth", GT_COLUMNS)
    # MOT15 writes -1 (unknown) in the class and visibility columns: such boxes are pedestrians.
    out[:, 6:] = np.where(np.isnan(out[:, 6:]), 1.0, out[:, 6:])
    out[out[:, 7] < 0, 7] = 1.0
    out[out[:, 8] < 0, 8] = 1.0
    _check_track_rows(path, out)
    return out


def read_results(path: str | os.PathLike) -> np.ndarray:
    """Tracker results -> (N,7): frame, id, x, y, w, h, confidence (missing confidence reads as 1)."""
    path = Path(path)
    out = _read_track_rows(path, "tracking results", RESULT_COLUMNS)
    out[np.isnan(out[:, 6]), 6] = 1.0
    _check_track_rows(path, out)
    return out


def _read_track_rows(path: Path, what: str, columns: int) -> np.ndarray:
    """The file's rows padded with 1s (or cut) to `columns` columns."""
    table = _read_table(path, 6, what)
    out = np.ones((len(table), columns))
    shared = min(table.shape[1], columns)
    out[:, :shared] = table[:, :shared]
    return out


def _check_track_rows(path: Path, out: np.ndarray) -> None:
    _check_boxes(path, out)
    _check_integer_ids(path, out[:, 1])
    _check_unique_ids(path, out[:, 0], out[:, 1])


def write_results(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write (M,7) frame, id, x, y, w, h, confidence as a MOTChallenge results file, atomically."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, RESULT_COLUMNS)
    with atomic_file(path, "w", encoding="utf-8") as handle:
        for row in rows[np.lexsort((rows[:, 1], rows[:, 0]))]:
            fields = [str(int(row[0])), str(int(row[1]))] + [_number(v) for v in row[2:]]
            handle.write(",".join(fields) + ",-1,-1,-1\n")


def write_ground_truth(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write (N,9) frame, id, x, y, w, h, consider_flag, class, visibility as gt.txt, atomically."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, GT_COLUMNS)
    # consider_flag and class are integers in the format; visibility is a fraction.
    with atomic_file(path, "w", encoding="utf-8") as handle:
        for row in rows[np.lexsort((rows[:, 1], rows[:, 0]))]:
            fields = [str(int(row[0])), str(int(row[1]))] + [_number(v) for v in row[2:6]]
            fields += [str(int(row[6])), str(int(row[7])), _number(row[8])]
            handle.write(",".join(fields) + "\n")


def write_detections(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write (N,6) frame, x, y, w, h, confidence as det.txt (id column -1), atomically."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    with atomic_file(path, "w", encoding="utf-8") as handle:
        for row in rows[np.argsort(rows[:, 0], kind="stable")]:
            fields = [str(int(row[0])), "-1"] + [_number(v) for v in row[1:6]]
            handle.write(",".join(fields) + ",-1,-1,-1\n")


def read_seqinfo(path: str | os.PathLike) -> SeqInfo:
    """Parse seqinfo.ini; seqLength is required, the other keys have MOTChallenge defaults."""
    path = Path(path)
    if not path.is_file():
        raise StreidError(f"{path}: seqinfo.ini not found; every sequence needs one with [Sequence] seqLength")
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise StreidError(f"{path}: not a valid ini file ({str(exc).splitlines()[0]})") from None
    if "Sequence" not in parser or "seqlength" not in parser["Sequence"]:
        raise StreidError(f"{path}: missing [Sequence] seqLength; add the number of frames")
    section = parser["Sequence"]
    try:
        info = SeqInfo(
            name=section.get("name", path.parent.name),
            seq_length=int(section["seqlength"]),
            frame_rate=float(section.get("framerate", "30")),
            im_width=int(section.get("imwidth", "0")),
            im_height=int(section.get("imheight", "0")),
            im_dir=section.get("imdir", "img1"),
            im_ext=section.get("imext", ".jpg"),
        )
    except ValueError as exc:
        raise StreidError(f"{path}: a number in [Sequence] does not parse ({exc})") from None
    if info.seq_length < 1:
        raise StreidError(f"{path}: seqLength={info.seq_length} must be at least 1")
    return info


def write_seqinfo(path: str | os.PathLike, info: SeqInfo) -> None:
    """Write seqinfo.ini with MOTChallenge's key spelling, atomically."""
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep camelCase keys as MOTChallenge spells them
    parser["Sequence"] = {
        "name": info.name,
        "imDir": info.im_dir,
        "frameRate": _number(info.frame_rate),
        "seqLength": str(info.seq_length),
        "imWidth": str(info.im_width),
        "imHeight": str(info.im_height),
        "imExt": info.im_ext,
    }
    with atomic_file(path, "w", encoding="utf-8") as handle:
        parser.write(handle, space_around_delimiters=False)


def find_sequences(gt_root: str | os.PathLike) -> list[GroundTruthSequence]:
    """Every <gt_root>/<seq>/gt/gt.txt with its seqinfo.ini, sorted by name."""
    root = Path(gt_root)
    if not root.is_dir():
        raise StreidError(f"{root}: ground-truth folder not found; pass the folder holding <seq>/gt/gt.txt")
    sequences = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        gt_path = folder / "gt" / "gt.txt"
        if gt_path.is_file():
            sequences.append(GroundTruthSequence(folder.name, gt_path, read_seqinfo(folder / "seqinfo.ini")))
    if not sequences:
        raise StreidError(f"{root}: no <seq>/gt/gt.txt inside; expected the MOTChallenge layout")
    return sequences


def results_file(results_dir: str | os.PathLike, sequence: str) -> Path:
    """Where a tracker's results for `sequence` live inside its results folder."""
    return Path(results_dir) / f"{sequence}.txt"
