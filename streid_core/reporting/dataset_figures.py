"""Figures of notebook 01: what a dataset holds (split sizes, identities per video, images per
identity), how complete its poses are, and the pose inputs ST-ReIDNet actually sees (heat-maps
and skeleton masks at the training size). All return matplotlib Figures (shown inline in a
notebook; `viz.figures.save_figure` writes them as PNG). They stay beside `dataset_stats`, whose
numbers they draw, because viz sits below reporting."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.keypoints import KeypointConvention
from ..data.records import LoadedDataset, Record
from .dataset_stats import KeypointStats, identities_per_video, images_per_identity, split_counts


def counts_figure(dataset: LoadedDataset):
    """Three panels: identities and images per split; identities per video (coloured by the
    split its identities belong to); the distribution of images per identity."""
    from matplotlib.figure import Figure

    counts = split_counts(dataset)
    fig = Figure(figsize=(12, 3.4))
    ax_split, ax_video, ax_images = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.4, 1]})

    names = list(counts)
    x = np.arange(len(names))
    images = [counts[n]["images"] for n in names]
    ids = [counts[n]["ids"] for n in names]
    ax_split.bar(x, images, color="#9ecae1", label="images")
    ax_split.set_xticks(x, names, fontsize=8)
    ax_split.set_ylabel("images")
    twin = ax_split.twinx()
    twin.plot(x, ids, "o-", color="#d6604d", label="identities")
    twin.set_ylabel("identities", color="#d6604d")
    twin.set_ylim(0, max(ids + [1]) * 1.15)
    ax_split.set_title("splits", fontsize=10)

    test = set(identities_per_video(dataset.query))
    per_video = identities_per_video(dataset.trainval + dataset.query + dataset.gallery)
    videos = list(per_video)
    colors = ["#fdae6b" if v in test else "#74c476" for v in videos]
    ax_video.bar(np.arange(len(videos)), [per_video[v] for v in videos], color=colors)
    ax_video.set_xticks(np.arange(len(videos)), videos, rotation=60, ha="right", fontsize=6)
    ax_video.set_ylabel("identities")
    ax_video.set_title("identities per video (green: trainval, orange: test)", fontsize=10)
    if not videos:
        ax_video.text(0.5, 0.5, "no video information", ha="center", va="center", transform=ax_video.transAxes)

    per_id = list(images_per_identity(dataset.trainval + dataset.query).values())
    ax_images.hist(per_id, bins=min(30, max(5, len(per_id) // 2)), color="#807dba")
    ax_images.set_xlabel("images per identity")
    ax_images.set_ylabel("identities")
    ax_images.set_title(f"images per identity (median {np.median(per_id) if per_id else 0:.0f})", fontsize=10)
    fig.tight_layout()
    return fig


def keypoints_figure(stats: KeypointStats):
    """Per-joint missing rate (bars) and each joint's mean position with its spread (an
    average skeleton in image coordinates)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8))
    ax_missing, ax_mean = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    k = len(stats.joint_names)
    ax_missing.bar(np.arange(k), 100 * stats.missing_rate, color="#e6550d")
    ax_missing.set_xticks(np.arange(k), stats.joint_names, rotation=60, ha="right", fontsize=7)
    ax_missing.set_ylabel("missing (% of images)")
    ax_missing.set_title(f"missing joints: {100 * stats.with_missing:.1f} % of {stats.images} images miss at least "
                         f"one, {stats.mean_missing:.2f} per image on average", fontsize=9)

    ok = np.isfinite(stats.mean_xy[:, 0])
    ax_mean.errorbar(stats.mean_xy[ok, 0], stats.mean_xy[ok, 1], xerr=stats.std_xy[ok, 0], yerr=stats.std_xy[ok, 1],
                     fmt="o", ms=3, color="#3182bd", ecolor="#9ecae1", elinewidth=0.8)
    for j in np.flatnonzero(ok):
        ax_mean.annotate(stats.joint_names[j].replace("left_", "L ").replace("right_", "R "),
                         stats.mean_xy[j], fontsize=5.5, xytext=(2, 2), textcoords="offset points")
    ax_mean.set_xlim(0, 1)
    ax_mean.set_ylim(1, 0)
    ax_mean.set_aspect(2.0)  # person crops are twice as tall as wide
    ax_mean.set_xlabel("x / image width")
    ax_mean.set_ylabel("y / image height")
    ax_mean.set_title("mean joint position (bars: 1 std)", fontsize=9)
    fig.tight_layout()
    return fig


def pose_inputs_figure(records: Sequence[Record], conv: KeypointConvention, height: int = 128, width: int = 64,
                       sigma: float | None = None, cell_inches: float = 1.0):
    """For each record (columns): the image at the training size with its skeleton, the pose
    heat-maps G is conditioned on (channels summed), and the skeleton mask that up-weights the
    reconstruction loss, drawn over the image."""
    from matplotlib.figure import Figure

    from ..data.images import load_image
    from ..data.keypoints import load_keypoints
    from ..data.pose import keypoints_to_canvas, pose_maps, skeleton_mask

    records = [r for r in records if r.pose_path]
    fig = Figure(figsize=(cell_inches * max(len(records), 1), 3 * cell_inches * height / width + 0.5))
    axes = fig.subplots(3, max(len(records), 1), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for col, record in enumerate(records):
        image = load_image(record.path)
        canvas = keypoints_to_canvas(load_keypoints(record.pose_path, conv), image.size, height, width)
        pixels = np.asarray(image.resize((width, height)))
        maps = pose_maps(canvas, height, width, sigma).sum(axis=0).clip(0, 1)
        mask = skeleton_mask(canvas, height, width, conv)[0]
        axes[0, col].imshow(pixels)
        for a, b in conv.limbs:
            if np.isfinite(canvas[[a, b]]).all():
                axes[0, col].plot(canvas[[a, b], 0], canvas[[a, b], 1], color="#ffdd00", lw=0.7)
        axes[1, col].imshow(maps, cmap="magma", vmin=0, vmax=1)
        axes[2, col].imshow(pixels)
        axes[2, col].imshow(np.ma.masked_where(mask == 0, mask), cmap="cool", alpha=0.45, vmin=0, vmax=1)
        axes[0, col].set_title(f"id {record.pid}" + (f" f{record.frame}" if record.frame >= 0 else ""), fontsize=6)
    for row, label in enumerate(("image + skeleton", "pose heat-maps", "skeleton mask")):
        axes[row, 0].text(-0.1, 0.5, label, transform=axes[row, 0].transAxes, rotation=90, ha="right", va="center",
                          fontsize=7)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.01, top=0.95, wspace=0.05, hspace=0.05)
    return fig
