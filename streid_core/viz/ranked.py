"""Ranked-list figures: a query and its nearest gallery images, each framed by whether it is
the right person. The quickest way to see *how* a model fails (pose? colour? a neighbour?).
`ranked_list_figure` shows one query in detail (distances, file names, junk if asked);
`ranked_grid_figure` lays several queries' rankings out together for a report page.

Frames: green = same identity (a correct match), red = another identity, grey = junk (same
identity AND same camera, which the metrics remove from the ranking; on DanceReID that is the
query itself). Junk is skipped by default, as the metrics do; `show_junk=True` shows it in
place without giving it a rank. Ties in distance are broken by gallery order.

    fig = ranked_list_figure(query_record, gallery_records, distances_of_that_query, top_k=10)
    save_figure(fig, "reports/ranked/q0001.png")                     # viz.figures
    worst = failure_cases(distmat, q_pids, g_pids, q_camids, g_camids)  # rank-1 misses, worst first
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.images import H5_SEPARATOR
from ..data.records import Record
from ..errors import StreidError

MATCH, WRONG, JUNK = "match", "wrong", "junk"
FRAME_COLORS = {MATCH: "#2ca02c", WRONG: "#d62728", JUNK: "#9a9a9a"}
QUERY_COLOR = "#1f4e9c"

# A (Q, G) distance matrix, or a function (start, stop) -> its rows start..stop, such as
# `evaluation.distance.PairwiseDistance`, so that no full matrix is needed.
DistanceRows = np.ndarray | Callable[[int, int], np.ndarray]


def _row_reader(distances: DistanceRows) -> Callable[[int, int], np.ndarray]:
    return distances if callable(distances) else (lambda start, stop: np.asarray(distances)[start:stop])


@dataclass(frozen=True)
class RankedEntry:
    """One gallery image in a query's ranking."""

    index: int  # position in the gallery
    record: Record
    distance: float
    judgement: str  # MATCH, WRONG or JUNK
    rank: int | None  # 1-based rank among non-junk items; None for junk


def rank_gallery(distances: np.ndarray, query: Record, gallery: Sequence[Record], top_k: int = 10,
                 show_junk: bool = False) -> list[RankedEntry]:
    """The `top_k` nearest non-junk gallery items of `query`, nearest first; with `show_junk`
    the junk items ranked among them are included too (unranked)."""
    distances = np.asarray(distances, dtype=np.float64).reshape(-1)
    if len(distances) != len(gallery):
        raise StreidError(f"{len(distances)} distances for {len(gallery)} gallery images; pass one distance per gallery image")
    if top_k < 1:
        raise StreidError(f"top_k {top_k}: show at least one gallery image")
    entries: list[RankedEntry] = []
    rank = 0
    for index in np.argsort(distances, kind="stable"):
        record = gallery[index]
        same_pid = record.pid == query.pid
        if same_pid and record.camid == query.camid:
            if show_junk:
                entries.append(RankedEntry(int(index), record, float(distances[index]), JUNK, None))
            continue
        rank += 1
        entries.append(RankedEntry(int(index), record, float(distances[index]), MATCH if same_pid else WRONG, rank))
        if rank == top_k:
            break
    return entries


def _label(record: Record) -> str:
    """The file name shown under an image (the entry name inside an HDF5 file)."""
    return Path(record.path.split(H5_SEPARATOR)[-1]).name


def _show(ax, record: Record, color: str, linewidth: float, height: int, width: int) -> None:
    """The record's image at height x width in a frame of `color`."""
    from ..data.images import load_image

    image = load_image(record.path).resize((width, height))
    ax.imshow(np.asarray(image))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(True)
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(linewidth)


def ranked_list_figure(query: Record, gallery: Sequence[Record], distances: np.ndarray, top_k: int = 10,
                       show_junk: bool = False, title: str | None = None, height: int = 128, width: int = 64,
                       cell_inches: float = 1.0):
    """A matplotlib Figure: the query (blue frame), then its ranked gallery images with
    green/red/grey frames, rank and distance above, file name below. Images are shown at
    `height` x `width` pixels. Returns the Figure (displayed inline in notebooks)."""
    from matplotlib.figure import Figure

    entries = rank_gallery(distances, query, gallery, top_k, show_junk)
    n_cols = 1 + max(len(entries), 1)
    # Inches: each image fills ~90 % of its column's width; room above for two title lines
    # (and the figure title), below for the file name.
    top, bottom = 0.34 + (0.22 if title else 0.0), 0.16
    image_height = 0.9 * cell_inches * height / width
    fig = Figure(figsize=(cell_inches * n_cols, image_height + top + bottom))
    axes = fig.subplots(1, n_cols, squeeze=False)[0]
    _show(axes[0], query, QUERY_COLOR, 4.0, height, width)
    axes[0].set_xlabel(_label(query), fontsize=5.5, labelpad=2)
    axes[0].set_title(f"query\nid {query.pid} cam {query.camid}", fontsize=6.5, pad=3)
    for ax, entry in zip(axes[1:], entries):
        _show(ax, entry.record, FRAME_COLORS[entry.judgement], 3.0, height, width)
        ax.set_xlabel(_label(entry.record), fontsize=5.5, labelpad=2)
        head = "junk" if entry.rank is None else f"#{entry.rank}"
        ax.set_title(f"{head}  id {entry.record.pid}\nd={entry.distance:.3g}", fontsize=6.5, pad=3)
    if not entries:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "empty gallery", ha="center", va="center", fontsize=7, transform=axes[1].transAxes)
    if title:
        fig.suptitle(title, fontsize=8)
    total = image_height + top + bottom
    fig.subplots_adjust(left=0.01, right=0.99, bottom=bottom / total, top=1 - top / total, wspace=0.12)
    return fig


def ranked_grid_figure(query_indices: Sequence[int], query: Sequence[Record], gallery: Sequence[Record],
                       distances: DistanceRows, top_k: int = 8, title: str | None = None, height: int = 128,
                       width: int = 64, cell_inches: float = 0.8):
    """A Figure with one row per query index: the query, then its `top_k` nearest non-junk gallery
    images (green = same identity, red = another identity), each titled with its rank."""
    from matplotlib.figure import Figure

    rows = max(len(query_indices), 1)
    row_inches = cell_inches * height / width + 0.35
    fig = Figure(figsize=(cell_inches * (top_k + 1) + 0.2, row_inches * rows + (0.35 if title else 0.1)))
    axes = fig.subplots(rows, top_k + 1, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    read_rows = _row_reader(distances)
    for row, q in enumerate(query_indices):
        record = query[q]
        _show(axes[row, 0], record, QUERY_COLOR, 2.5, height, width)
        axes[row, 0].set_title(f"query id {record.pid}", fontsize=6, pad=2)
        ranking = rank_gallery(np.asarray(read_rows(q, q + 1))[0], record, gallery, top_k)
        for ax, entry in zip(axes[row, 1:], ranking):
            _show(ax, entry.record, FRAME_COLORS[entry.judgement], 2.5, height, width)
            ax.set_title(f"#{entry.rank} id {entry.record.pid}", fontsize=6, pad=2)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - (0.35 if title else 0.1) / fig.get_figheight(),
                        wspace=0.08, hspace=0.3)
    return fig


def first_match_ranks(distances: DistanceRows, q_pids, g_pids, q_camids, g_camids,
                      rows_per_chunk: int = 256) -> np.ndarray:
    """For every query, the 1-based rank of its first correct match with junk removed and ties
    broken by gallery order (what `ranked_list_figure` shows); 0 for a query with no match.

    `distances`: the (Q, G) matrix or a row function (DistanceRows).
    """
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    rows = _row_reader(distances)
    out = np.zeros(len(q_pids), dtype=np.int64)
    columns = np.arange(len(g_pids))
    for start in range(0, len(q_pids), rows_per_chunk):
        stop = min(start + rows_per_chunk, len(q_pids))
        d = np.asarray(rows(start, stop), dtype=np.float64)
        same = q_pids[start:stop, None] == g_pids[None, :]
        positive = same & (q_camids[start:stop, None] != g_camids[None, :])
        first = np.argmin(np.where(positive, d, np.inf), axis=1)  # argmin: lowest index among ties
        first_d = d[np.arange(stop - start), first][:, None]
        before = ~same & ((d < first_d) | ((d == first_d) & (columns[None, :] < first[:, None])))
        out[start:stop] = np.where(positive.any(axis=1), before.sum(axis=1) + 1, 0)
    return out


def failure_cases(distances: DistanceRows, q_pids, g_pids, q_camids, g_camids, limit: int | None = None) -> np.ndarray:
    """Indices of the queries whose rank-1 gallery image (junk removed) is the wrong person,
    worst first (by the rank of their first correct match, then query order). Queries with no
    correct match in the gallery are left out: the metrics skip them too."""
    ranks = first_match_ranks(distances, q_pids, g_pids, q_camids, g_camids)
    failed = np.flatnonzero(ranks > 1)
    order = failed[np.lexsort((failed, -ranks[failed]))]
    return order if limit is None else order[:limit]
