"""Writing a matplotlib Figure to disk: the one PNG writer every figure maker's caller uses."""
from __future__ import annotations

import os
from pathlib import Path

from ..atomic import atomic_file


def save_figure(fig, path: str | os.PathLike, dpi: int = 150, tight: bool = False) -> Path:
    """Write `fig` as PNG through a temporary file renamed into place (no half-written image);
    `tight` crops the canvas to what is drawn. Returns the path."""
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return Path(path)
