"""A grid of dataset crops with their pose drawn on top: one row per identity, its images spread
over time left to right. The quickest way to see what a dataset asks of a model (and whether
the poses line up with the people)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..data.keypoints import KeypointConvention, convention, load_keypoints
from ..data.records import Record

LEFT, RIGHT, CENTRE = "#1f77ff", "#ff7f0e", "#2ca02c"


def _limb_color(conv: KeypointConvention, a: int, b: int) -> str:
    sides = {conv.names[a].split("_")[0], conv.names[b].split("_")[0]}
    if sides == {"left"}:
        return LEFT
    if sides == {"right"}:
        return RIGHT
    return CENTRE


def choose_samples(records: Sequence[Record], n_ids: int = 6, n_per_id: int = 8, pids: Sequence[int] | None = None,
                   seed: int = 0) -> list[tuple[int, list[Record]]]:
    """Rows of the grid: `pids` (or `n_ids` identities drawn with `seed`), each with up to
    `n_per_id` of its images evenly spaced in (video, frame) order."""
    by_pid: dict[int, list[Record]] = {}
    for r in records:
        by_pid.setdefault(r.pid, []).append(r)
    if pids is None:
        available = sorted(by_pid)
        rng = np.random.default_rng(seed)
        pids = sorted(int(p) for p in rng.choice(available, size=min(n_ids, len(available)), replace=False))
    rows = []
    for pid in pids:
        own = sorted(by_pid.get(pid, []), key=lambda r: (r.video, r.frame, r.path))
        if not own:
            continue
        picks = np.unique(np.linspace(0, len(own) - 1, min(n_per_id, len(own))).round().astype(int))
        rows.append((pid, [own[i] for i in picks]))
    return rows


def sample_grid(records: Sequence[Record], keypoints_convention: KeypointConvention | str | None = "coco17",
                n_ids: int = 6, n_per_id: int = 8, pids: Sequence[int] | None = None, seed: int = 0,
                title: str | None = None, cell_inches: float = 1.1):
    """A matplotlib Figure: one row per identity, its images over time, skeletons overlaid where
    the record has a pose (pass keypoints_convention=None to show the bare crops)."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    from ..data.images import load_image

    conv = convention(keypoints_convention) if isinstance(keypoints_convention, str) else keypoints_convention
    rows = choose_samples(records, n_ids, n_per_id, pids, seed)
    n_cols = max((len(r) for _, r in rows), default=1)
    fig = Figure(figsize=(cell_inches * n_cols + 0.6, cell_inches * 2.1 * max(len(rows), 1) + (0.4 if title else 0.1)))
    axes = fig.subplots(max(len(rows), 1), n_cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for row, (pid, recs) in enumerate(rows):
        for col, rec in enumerate(recs):
            ax = axes[row, col]
            image = np.asarray(load_image(rec.path))
            ax.imshow(image, interpolation="bilinear")
            if conv is not None and rec.pose_path:
                kps = load_keypoints(rec.pose_path, conv)
                segments, colors = [], []
                for a, b in conv.limbs:
                    if np.isfinite(kps[[a, b]]).all():
                        segments.append(kps[[a, b]])
                        colors.append(_limb_color(conv, a, b))
                ax.add_collection(LineCollection(segments, colors=colors, linewidths=0.7, alpha=0.8))
                ok = np.isfinite(kps[:, 0])
                ax.scatter(kps[ok, 0], kps[ok, 1], s=1.5, c="white", linewidths=0, zorder=3)
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
            ax.set_title(f"f{rec.frame}" if rec.frame >= 0 else os.path.basename(rec.path), fontsize=6, pad=1)
        label = f"id {pid}" + (f"\n{recs[0].video}" if recs[0].video else "")
        axes[row, 0].text(-0.08, 0.5, label, transform=axes[row, 0].transAxes, fontsize=6, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.995, bottom=0.005, top=0.96 if title else 0.985, wspace=0.04, hspace=0.12)
    return fig
