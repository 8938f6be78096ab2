"""CMC curves of several models (or a colour baseline) on one plot."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..evaluation.metrics import RankResult


def cmc_values(curve: RankResult | Sequence[float]) -> np.ndarray:
    """The CMC rates of a RankResult or a plain sequence, as a float array."""
    return np.asarray(curve.cmc if isinstance(curve, RankResult) else curve, dtype=np.float64)


def chance_cmc(num_ids: int, max_rank: int) -> np.ndarray:
    """CMC of a random ranking when one image per gallery identity competes (single-gallery-shot):
    the true identity is at a uniform position among `num_ids`, so CMC(k) = min(k / num_ids, 1)."""
    return np.minimum(np.arange(1, max_rank + 1) / max(num_ids, 1), 1.0)


def cmc_figure(curves: Mapping[str, RankResult | Sequence[float]], max_rank: int = 20, chance_ids: int | None = None,
               title: str | None = None):
    """A Figure with one CMC curve per entry (label -> RankResult or rates), ranks 1..max_rank,
    each labelled with its R1 and mAP when known; `chance_ids` adds the chance curve."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    for label, curve in curves.items():
        rates = cmc_values(curve)[:max_rank]
        ranks = np.arange(1, len(rates) + 1)
        text = f"{label}: R1 {100 * rates[0]:.1f}"
        if isinstance(curve, RankResult):
            text += f", mAP {100 * curve.mAP:.1f}"
        ax.plot(ranks, 100 * rates, marker="o", ms=3, label=text)
    if chance_ids:
        ax.plot(np.arange(1, max_rank + 1), 100 * chance_cmc(chance_ids, max_rank), ls="--", color="grey",
                label=f"chance ({chance_ids} identities)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(0.5, max_rank + 0.5)
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
