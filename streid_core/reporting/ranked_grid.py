"""Several ranked lists in one figure: one row per query (blue frame), then its nearest gallery
images framed green (right person) or red (wrong person), junk skipped as the metrics do.
`viz.ranked` draws one query per figure and decides what is junk and what failed; this lays
several of its rankings out together for a report page."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..data.records import Record
from ..viz.ranked import FRAME_COLORS, QUERY_COLOR, rank_gallery

DistanceRows = np.ndarray | Callable[[int, int], np.ndarray]


def distance_row(distances: DistanceRows, index: int) -> np.ndarray:
    """Row `index` of a (Q, G) matrix or of a chunked distance source (start, stop) -> rows."""
    if callable(distances):
        return np.asarray(distances(index, index + 1))[0]
    return np.asarray(distances)[index]


def ranked_grid_figure(query_indices: Sequence[int], query: Sequence[Record], gallery: Sequence[Record],
                       distances: DistanceRows, top_k: int = 8, title: str | None = None, height: int = 128,
                       width: int = 64, cell_inches: float = 0.8):
    """A Figure with one row per query index: the query, then its `top_k` nearest non-junk gallery
    images (green = same identity, red = another identity), each titled with its rank."""
    from matplotlib.figure import Figure

    from ..data.images import load_image

    rows = max(len(query_indices), 1)
    row_inches = cell_inches * height / width + 0.35
    fig = Figure(figsize=(cell_inches * (top_k + 1) + 0.2, row_inches * rows + (0.35 if title else 0.1)))
    axes = fig.subplots(rows, top_k + 1, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)

    def show(ax, record: Record, color: str, text: str) -> None:
        ax.imshow(np.asarray(load_image(record.path).resize((width, height))))
        ax.set_frame_on(True)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(2.5)
        ax.set_title(text, fontsize=6, pad=2)

    for row, q in enumerate(query_indices):
        record = query[q]
        show(axes[row, 0], record, QUERY_COLOR, f"query id {record.pid}")
        for col, entry in enumerate(rank_gallery(distance_row(distances, q), record, gallery, top_k), start=1):
            show(axes[row, col], entry.record, FRAME_COLORS[entry.judgement], f"#{entry.rank} id {entry.record.pid}")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - (0.35 if title else 0.1) / fig.get_figheight(),
                        wspace=0.08, hspace=0.3)
    return fig
