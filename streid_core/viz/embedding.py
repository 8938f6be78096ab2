"""A 2-D map of re-ID test features coloured by identity and by pose cluster, with the numbers
of `evaluation.pose_probes` in the titles.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..evaluation.pose_probes import ONE_THREAD


def embed_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(N, 2) map of (N, D) features: t-SNE (PCA-initialised, perplexity at most 30 and below
    N / 3) or plain PCA (`method="pca"`, or when there are too few points for t-SNE)."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method not in ("tsne", "pca"):
        raise ValueError(f"method {method!r}: use 'tsne' or 'pca'")
    if method == "pca" or len(x) < 10:
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, (len(x) - 1) / 3.0))
    with threadpool_limits(ONE_THREAD):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def embedding_figure(panels: dict[str, np.ndarray], pids: Sequence[int], pose_labels: Sequence[int],
                     probes: dict[str, dict[str, dict[str, float]]] | None = None):
    """One row per model (label -> (N, 2) map): points coloured by identity (left) and by pose
    cluster (right); the probe's skills in the titles when given."""
    from matplotlib.figure import Figure

    pids, pose_labels = np.asarray(pids), np.asarray(pose_labels)
    _, pid_index = np.unique(pids, return_inverse=True)
    size = float(np.clip(3000 / max(len(pids), 1), 4, 30))  # bigger dots when there are few
    rows = max(len(panels), 1)
    fig = Figure(figsize=(10, 4.3 * rows))
    axes = fig.subplots(rows, 2, squeeze=False)
    for row, (label, xy) in enumerate(panels.items()):
        for col, (colours, what, cmap) in enumerate(((pid_index, "identity", "tab20"), (pose_labels, "pose cluster", "tab10"))):
            ax = axes[row, col]
            ax.scatter(xy[:, 0], xy[:, 1], c=colours, cmap=cmap, s=size, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            key = "identity" if col == 0 else "pose"
            note = f"\n{probe_text(probes[label][key])}" if probes and label in probes else ""
            ax.set_title(f"{label}: coloured by {what}{note}", fontsize=9)
    fig.tight_layout()
    return fig


def probe_text(probe: dict[str, float]) -> str:
    """One line: the neighbour agreement and its chance level."""
    return f"nearest neighbours agree {100 * probe['agreement']:.0f} % (chance {100 * probe['chance']:.0f} %)"
