"""Pose transfer measured against the truth, where users see it: notebooks 03, 04 and 05, the
demo's index.html, and TensorBoard.

    from streid_core.reporting.transfer_report import transfer_section
    shown = transfer_section(run.last_checkpoint, dataset, "reports/notebooks/03_transfer_examples.png", pairs=32)
    metrics["pose_transfer"] = shown.summary()

`measure_transfer` runs `evaluation.pose_transfer.evaluate_checkpoint` on a `streid train` run's
checkpoint.pth.tar (the file that holds G) and keeps the result beside the checkpoint, in
`<run>/transfer_eval/`: one JSON file per (checkpoint path, dataset, split, pairs, seed, minimum
pose distance, example rows, device), holding the report, its example grid as PNG, and a stamp
(the checkpoint's fingerprint and every test image's size and mtime, as the feature cache uses).
A lookup with the same settings and stamp reads the file instead of drawing again, so the demo,
whose notebooks 03, 04 and 05 and index page all measure the same checkpoint, pays once; a
checkpoint rewritten by another epoch, or a regenerated dataset, misses and replaces the entry.

`transfer_curve` draws the metrics a run logged while it trained (`--transfer-eval-every`).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import atomic_file, write_json
from ..errors import StreidError

if TYPE_CHECKING:
    from ..data.records import LoadedDataset
    from ..evaluation.pose_transfer import PoseTransferReport
    from ..models.pose_transfer import PoseTransfer

CACHE_DIR = "transfer_eval"  # inside the checkpoint's run folder
CACHE_VERSION = 1  # bump when the measurement changes: every existing entry then misses
SUMMARY_KEYS = ("pairs", "seed", "image_size", "dataset", "dancers", "scores", "chance", "rows", "mean_image_from",
                "other_video_pairs", "min_pose_distance", "mean_pose_change", "mean_other_pose_change")


@dataclass
class TransferMeasurement:
    """A pose-transfer report of one checkpoint, and its example grid as PNG bytes."""

    report: "PoseTransferReport"  # examples is None when read from the cache: the grid is `figure_png`
    figure_png: bytes
    checkpoint: Path
    cached: bool  # read from <run>/transfer_eval/ rather than drawn now
    figure: Path | None = None  # where transfer_section wrote the grid

    def summary(self) -> dict[str, Any]:
        """The report without the per-pair rows: what goes into a notebook's metrics JSON."""
        return {**transfer_summary(self.report), "checkpoint": str(self.checkpoint)}

    def table(self) -> str:
        """The markdown table of `PoseTransferReport.format`."""
        return self.report.format()


def transfer_summary(report: "PoseTransferReport | dict[str, Any]") -> dict[str, Any]:
    """A report (or its to_dict) without the per-pair rows and the definitions."""
    data = report.to_dict() if hasattr(report, "to_dict") else report
    return {key: data[key] for key in SUMMARY_KEYS if key in data}


def report_from_dict(data: dict[str, Any]) -> "PoseTransferReport":
    """Rebuild a PoseTransferReport (without example images) from its to_dict()."""
    from ..evaluation.pose_transfer import PoseTransferReport

    names = {f.name for f in fields(PoseTransferReport)} - {"examples"}
    values = {key: data[key] for key in names if key in data}
    values["image_size"] = tuple(values["image_size"])
    return PoseTransferReport(**values)


# ---------------------------------------------------------------- measuring, with the cache


def _images_stamp(dataset: "LoadedDataset") -> str:
    from ..evaluation.feature_cache import images_fingerprint

    records = list(dict.fromkeys([*dataset.query, *dataset.gallery]))
    poses = [r.pose_path or "" for r in records]
    digest = hashlib.sha1(images_fingerprint(records).encode())
    for path in poses:
        try:
            stat = os.stat(path) if path else None
            digest.update(f"{path}|{stat.st_size}:{stat.st_mtime_ns}\n".encode() if stat else b"-\n")
        except OSError:
            digest.update(f"{path}|missing\n".encode())
    return digest.hexdigest()


def _cache_entry(checkpoint: Path, dataset: "LoadedDataset", settings: dict[str, Any]) -> tuple[Path, str]:
    """(the slot's file, the stamp its content must carry)."""
    from ..evaluation.feature_cache import checkpoint_fingerprint

    # which dancers: the test dancers and the training ones (`on_training_dancers`) of one split
    # are two entries, not one that each measurement overwrites
    people = sorted({r.pid for r in dataset.query} | {r.pid for r in dataset.gallery})
    slot = {"version": CACHE_VERSION, "checkpoint": str(checkpoint.resolve()),
            "dataset": str(Path(dataset.root).resolve()), "split": dataset.split,
            "people": hashlib.sha1(repr(people).encode()).hexdigest()[:16], **settings}
    name = hashlib.sha1(json.dumps(slot, sort_keys=True).encode()).hexdigest()[:16]
    stamp = f"{checkpoint_fingerprint(checkpoint)}|{_images_stamp(dataset)}"
    return checkpoint.parent / CACHE_DIR / f"{name}.json", stamp


def _read_cache(path: Path, stamp: str) -> tuple["PoseTransferReport", bytes] | None:
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("stamp") != stamp:
            return None
        return report_from_dict(entry["report"]), base64.b64decode(entry["figure_png"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged entry is a miss: it gets rewritten


def grid_png(report: "PoseTransferReport") -> bytes:
    """The report's example grid (evaluation.pose_transfer.example_grid) as PNG bytes."""
    from ..evaluation.pose_transfer import example_grid

    buffer = io.BytesIO()
    example_grid(report).save(buffer, format="PNG")
    return buffer.getvalue()


def measure_transfer(checkpoint: str | os.PathLike, dataset: "LoadedDataset", *, pairs: int = 64, seed: int = 0,
                     examples: int = 6, device: str = "cpu", model: "PoseTransfer | None" = None,
                     cache: bool = True, batch_size: int = 64) -> TransferMeasurement:
    """Pose transfer of `checkpoint` (a `streid train` run's checkpoint.pth.tar, which holds G) on
    `dataset`'s test dancers: `evaluate_checkpoint` with `pairs`, `seed` and `examples` grid rows
    (>= 1), read from or written to `<run>/transfer_eval/` when `cache` (see the module doc).
    `model`: the checkpoint already loaded as a PoseTransfer (saves reading it again)."""
    from ..evaluation.pose_transfer import DEFAULT_MIN_POSE_DISTANCE, evaluate_checkpoint

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise StreidError(f"{checkpoint}: checkpoint not found; pass the checkpoint.pth.tar of a `streid train` run")
    if examples < 1:
        raise StreidError(f"examples {examples}: the example grid needs at least one row")
    from ..device import resolve_device

    where = model.device if model is not None else resolve_device(device)
    settings = {"pairs": pairs, "seed": seed, "examples": examples, "min_pose_distance": DEFAULT_MIN_POSE_DISTANCE,
                "device": where.type}
    entry, stamp = _cache_entry(checkpoint, dataset, settings) if cache else (None, "")
    if entry is not None:
        found = _read_cache(entry, stamp)
        if found is not None:
            return TransferMeasurement(found[0], found[1], checkpoint, cached=True)
    report = evaluate_checkpoint(model if model is not None else checkpoint, dataset, pairs=pairs, seed=seed,
                                 batch_size=batch_size, device=device, examples=examples)
    png = grid_png(report)
    if entry is not None:
        write_json(entry, {"stamp": stamp, "checkpoint": str(checkpoint), "settings": settings,
                           "report": report.to_dict(), "figure_png": base64.b64encode(png).decode("ascii")})
    return TransferMeasurement(report, png, checkpoint, cached=False)


# ---------------------------------------------------------------- showing it


def write_grid(measurement: TransferMeasurement, path: str | os.PathLike) -> Path:
    """Write the example grid PNG (atomically); remembers the path in `measurement.figure`."""
    with atomic_file(path, "wb") as handle:
        handle.write(measurement.figure_png)
    measurement.figure = Path(path)
    return measurement.figure


def show_transfer(measurement: TransferMeasurement) -> None:
    """Display the table and the example grid in a notebook (print the table outside IPython)."""
    from .notebook_output import in_notebook

    where = "read from the cache" if measurement.cached else "measured now"
    caption = (f"Checkpoint {measurement.checkpoint} ({where}). Grid columns: source s | real t | G(s, pose t) | "
               "G(s, pose u): the same dancer drawn in their farthest other pose | G(o, pose t): another dancer "
               "of the video drawn in t's pose.")
    if not in_notebook():
        print(measurement.table())
        print(caption)
        return
    from IPython.display import Image, Markdown, display

    display(Markdown(measurement.table()))
    display(Image(data=measurement.figure_png))
    display(Markdown(caption))


def transfer_section(checkpoint: str | os.PathLike, dataset: "LoadedDataset", figure: str | os.PathLike, *,
                     pairs: int = 64, seed: int = 0, examples: int = 6, device: str = "cpu",
                     model: "PoseTransfer | None" = None, cache: bool = True) -> TransferMeasurement:
    """A notebook's "Pose transfer measured against the truth": `measure_transfer`, the grid
    written to `figure`, the table and the grid shown."""
    measurement = measure_transfer(checkpoint, dataset, pairs=pairs, seed=seed, examples=examples, device=device,
                                   model=model, cache=cache)
    write_grid(measurement, figure)
    show_transfer(measurement)
    return measurement


# ---------------------------------------------------------------- while training


def transfer_curve(logs_dir: str | os.PathLike, path: str | os.PathLike) -> Path:
    """The pose-transfer metrics a run logged while it trained (`streid train --transfer-eval-every`,
    `<run>/transfer_metrics.jsonl`) against the iteration, written to `path`: pose and identity
    accuracy (chance 0.5) on the left, G's body L1 over the better trivial reference (the source
    unchanged, the mean image) on the right, where below 1 means better than both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..training.transfer_metrics import read_transfer_metrics
    from ..viz.figures import save_figure

    rows = read_transfer_metrics(logs_dir)
    if not rows:
        raise StreidError(f"{logs_dir}: no pose-transfer metrics were logged (train with --transfer-eval-every N)")
    steps = [r["iteration"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for metric, label in (("pose_accuracy", "pose acc."), ("identity_accuracy", "identity acc.")):
        left.plot(steps, [r["generator"][metric] for r in rows], marker="o", label=label)
    left.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
    left.set(xlabel="iteration", ylabel="accuracy", ylim=(0, 1))
    left.legend(fontsize=8)
    ratio = [r["generator"]["body_l1"] / min(r["source"]["body_l1"], r["mean"]["body_l1"]) for r in rows]
    right.plot(steps, ratio, marker="o", color="C2")
    right.axhline(1.0, color="grey", ls="--", lw=1)
    right.set(xlabel="iteration", ylabel="body L1 / better reference")
    fig.suptitle(f"pose transfer while training ({rows[-1]['pairs']} test pairs)")
    return save_figure(fig, path, tight=True)
