"""The figure of `streid st-vs-baseline`: test mAP per encoder and seed, and how much pose each
encoder's feature carries."""
from __future__ import annotations

import numpy as np


def comparison_figure(comparison):
    """Left: test mAP of every encoder, one dot per seed and a bar for the mean. Right: the two pose
    probes (mean and standard deviation over seeds; lower = less pose in the feature).

    `comparison`: an `experiments.st_vs_baseline.Comparison`; encoders in the order of its summary."""
    from matplotlib.figure import Figure

    c = comparison
    rows = list(c.summary)
    fig = Figure(figsize=(11, 3.6))
    left, right = fig.subplots(1, 2)
    x = np.arange(len(rows))
    left.bar(x, [100 * c.summary[r]["mAP"]["mean"] for r in rows], color="#9ecae1", label="mean over seeds")
    for i, row in enumerate(rows):
        values = [100 * c.scores[row][f"seed{s}"]["mAP"] for s in c.seeds]
        left.scatter(np.full(len(values), i), values, color="#08519c", zorder=3, s=14)
    left.set_xticks(x, [r.replace("-", "-\n") for r in rows], fontsize=8)
    left.set_ylabel("test mAP (%)")
    left.set_title(f"re-ID on {c.dataset} ({c.protocol} protocol), {len(c.seeds)} seed(s)", fontsize=9)
    width = 0.38
    for k, (metric, label) in enumerate((("pose_knn_skill", "pose kNN skill (0 = chance)"),
                                         ("pose_linear_accuracy", "pose linear accuracy"))):
        means = [100 * c.summary[r][metric]["mean"] for r in rows]
        stds = [100 * c.summary[r][metric]["std"] for r in rows]
        right.bar(x + (k - 0.5) * width, means, width, yerr=stds, label=label, capsize=3)
    right.axhline(100 * c.pose_linear_chance, color="grey", ls="--", lw=1, label="largest pose cluster")
    right.set_xticks(x, [r.replace("-", "-\n") for r in rows], fontsize=8)
    right.set_ylabel("%")
    right.set_title("how much pose the feature encodes (lower = more invariant)", fontsize=9)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig
