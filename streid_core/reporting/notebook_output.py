"""Showing results in a notebook: figures as PNG (saved atomically at the same time) and tables
as Markdown. Outside IPython nothing is displayed, files are still written."""
from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def figure_png(fig, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show_figure(fig, save_to: str | os.PathLike | None = None, dpi: int = 110) -> Path | None:
    """Display a matplotlib Figure as PNG and, with `save_to`, write the same PNG atomically."""
    from ..atomic import atomic_file

    png = figure_png(fig, dpi)
    if save_to is not None:
        with atomic_file(save_to, "wb") as handle:
            handle.write(png)
    if in_notebook():
        from IPython.display import Image, display

        display(Image(data=png))
    return Path(save_to) if save_to is not None else None


def markdown_table(rows: Sequence[Mapping], percent: Sequence[str] = ()) -> str:
    """A Markdown table of dict rows (columns in the first row's order); `percent` columns hold
    fractions, shown as percentages with one decimal."""
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if c in percent else "---" for c in columns) + "|"]
    for row in rows:
        cells = [f"{100 * row[c]:.1f}" if c in percent else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def show_table(rows: Sequence[Mapping], percent: Sequence[str] = ()) -> str:
    """Display `markdown_table(rows, percent)` (printed outside IPython); returns the Markdown."""
    text = markdown_table(rows, percent)
    if in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(text))
    else:
        print(text)
    return text
