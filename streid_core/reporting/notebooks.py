"""Run the project's notebooks headless with papermill and index the results.

Each run goes to `reports/<run-name>/`: the executed notebooks (.ipynb and .html), whatever
figures and metrics they wrote there (every notebook takes an `output_dir` parameter, injected
here), a merged `metrics.json`, and an `index.html` linking all of it.
"""
from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from ..atomic import atomic_file, check_output_dir, write_json
from ..errors import StreidError

KERNEL = "python3"
# The kernel's own log: errors only (it warns on every start that its local TCP sockets are not
# encrypted). What the notebook's code prints or warns is unaffected.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
RUNS_DIR = "runs"  # training runs and feature caches notebooks keep under their output_dir: not indexed


def notebooks_dir() -> Path:
    """The notebooks/ folder of the checkout (the package is installed in editable mode)."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    if here.is_dir():
        return here
    cwd = Path.cwd() / "notebooks"
    if cwd.is_dir():
        return cwd
    raise StreidError("cannot find the notebooks/ folder; run streid from the project checkout")


def available_notebooks() -> list[str]:
    return sorted(p.stem for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def resolve_notebook(name: str) -> Path:
    """Accept '01', '01_dataset_exploration', or the file name."""
    stem = Path(name).stem
    matches = [n for n in available_notebooks() if n == stem or n.split("_", 1)[0] == stem]
    if len(matches) != 1:
        raise StreidError(
            f"notebook {name!r} not found; choose from {', '.join(available_notebooks())}"
        )
    return notebooks_dir() / f"{matches[0]}.ipynb"


def notebook_parameters(notebook: Path) -> list[str]:
    """The names the notebook's `parameters`-tagged cell assigns (what papermill may override)."""
    import ast

    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    names: list[str] = []
    for cell in cells:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.get("source", "")
        for node in ast.parse("".join(source) if isinstance(source, list) else source).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


def check_parameters(paths: list[Path], parameters: dict[str, Any], per_notebook: dict[str, dict[str, Any]]) -> None:
    """Refuse, before anything runs, a parameter no notebook it goes to declares (a misspelt one
    would otherwise be injected and silently ignored)."""
    declared = {path.stem: notebook_parameters(path) for path in paths}
    for name in parameters:
        if not any(name in names for names in declared.values()):
            valid = sorted({n for names in declared.values() for n in names})
            where = paths[0].stem if len(paths) == 1 else f"any of {', '.join(declared)}"
            raise StreidError(f"-p {name}: not a parameter of {where}; valid parameters: {', '.join(valid)}")
    for stem, values in per_notebook.items():
        if stem in declared:
            unknown = [n for n in values if n not in declared[stem]]
            if unknown:
                raise StreidError(f"parameter {unknown[0]!r}: not a parameter of {stem}; valid parameters: "
                                  f"{', '.join(sorted(declared[stem]))}")


@dataclass
class NotebookResult:
    name: str
    notebook: Path
    html: Path
    seconds: float


def execute(notebook: Path, out_dir: Path, parameters: dict[str, Any], stream: TextIO | None = None) -> NotebookResult:
    """Execute one notebook into out_dir; a failing cell becomes a StreidError naming it.
    `stream` receives what the cells print, as they print it (progress of long runs)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / notebook.name
    params = {"output_dir": str(out_dir), **parameters}
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(executed), parameters=params, kernel_name=KERNEL,
            progress_bar=False, cwd=str(notebook.parent), stdout_file=stream,
            extra_arguments=KERNEL_ARGUMENTS,
        )
    except PapermillExecutionError as exc:
        first_line = exc.source.strip().splitlines()[0] if exc.source.strip() else ""
        raise StreidError(
            f"{notebook.name}: cell {_source_cell_number(executed, exc.cell_index)} "
            f"({first_line!r}) failed: {exc.ename}: "
            f"{exc.evalue.splitlines()[0] if exc.evalue else ''}; the partial notebook is {executed}"
        ) from None
    seconds = time.perf_counter() - start
    return NotebookResult(notebook.stem, executed, to_html(executed), seconds)


def _source_cell_number(executed: Path, index: int) -> int:
    """1-based position of executed cell `index` in the notebook as the user wrote it
    (papermill inserts an 'injected-parameters' cell that the user never saw)."""
    import nbformat

    cells = nbformat.read(executed, as_version=4).cells[:index]
    injected = sum("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
    return index - injected + 1


def to_html(executed: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    target = executed.with_suffix(".html")
    with atomic_file(target, "w", encoding="utf-8") as handle:
        handle.write(body)
    return target


def report_files(out_dir: Path, pattern: str) -> list[Path]:
    """Files under out_dir matching `pattern`, except inside `runs/` (training runs, caches)."""
    return sorted(p for p in out_dir.rglob(pattern) if RUNS_DIR not in p.relative_to(out_dir).parts[:-1])


def merge_metrics(out_dir: Path) -> dict[str, Any]:
    """Merge every `*metrics*.json` the notebooks wrote (one key per file stem)."""
    merged: dict[str, Any] = {}
    for path in report_files(out_dir, "*metrics*.json"):
        if path.name == "metrics.json" and path.parent == out_dir:
            continue
        try:
            merged[str(path.relative_to(out_dir).with_suffix(""))] = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
    write_json(out_dir / "metrics.json", merged)
    return merged


def write_index(out_dir: Path, results: list[NotebookResult], title: str, headline: str = "") -> Path:
    """index.html of a run: `headline` (HTML, e.g. the demo's tables) first, then the executed
    notebooks, metrics.json and every figure."""
    figures = [p for p in report_files(out_dir, "*") if p.suffix.lower() in {".png", ".gif", ".mp4", ".svg"}]
    rows = "\n".join(
        f'<li><a href="{html.escape(r.html.name)}">{html.escape(r.name)}</a> '
        f'(<a href="{html.escape(r.notebook.name)}">ipynb</a>, {r.seconds:.0f} s)</li>'
        for r in results
    )
    figs = "\n".join(
        f'<figure><a href="{html.escape(str(p.relative_to(out_dir)))}">'
        f'<img src="{html.escape(str(p.relative_to(out_dir)))}" style="max-width:420px"></a>'
        f"<figcaption>{html.escape(str(p.relative_to(out_dir)))}</figcaption></figure>"
        for p in figures if p.suffix.lower() != ".mp4"
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} figure{{display:inline-block;margin:.5em}}
table.headline{{border-collapse:collapse;margin:.5em 0 1em}} table.headline td,table.headline th{{border:1px solid #bbb;padding:.2em .6em}} table.headline td{{text-align:right}} caption{{caption-side:top;text-align:left;font-size:.9em;padding:.3em 0}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
{headline}
<h2>Notebooks</h2><ol>
{rows}
</ol>
<h2>Metrics</h2><p><a href="metrics.json">metrics.json</a></p>
<h2>Figures</h2>
{figs}
</body></html>
"""
    index = out_dir / "index.html"
    with atomic_file(index, "w", encoding="utf-8") as handle:
        handle.write(page)
    return index


def run_notebooks(
    names: list[str] | None,
    parameters: dict[str, Any] | None = None,
    run_name: str | None = None,
    reports_root: str | os.PathLike = "reports",
    per_notebook: dict[str, dict[str, Any]] | None = None,
    log: Callable[[str], None] | None = None,
    stream: TextIO | None = None,
    headline: Callable[[Path], str] | None = None,
) -> Path:
    """Execute notebooks (all when `names` is empty) and return the run's index.html.
    `per_notebook` adds parameters for single notebooks (by file stem); `log` receives one line
    as each notebook starts and ends; `stream` what the cells print. `headline(out_dir)`, called
    after the notebooks and before the metrics are merged (so the files it writes are merged
    and indexed), returns HTML that opens index.html."""
    paths = [resolve_notebook(n) for n in (names or available_notebooks())]
    check_parameters(paths, parameters or {}, per_notebook or {})
    run_name = run_name or time.strftime("run-%Y%m%d-%H%M%S")
    if run_name in (".", "..") or Path(run_name).name != run_name:
        raise StreidError(f"--run-name {run_name!r}: must name one folder under --reports (no '/', '.' or '..'), "
                          "e.g. run-1")
    out_dir = Path(reports_root).resolve() / run_name
    check_output_dir(out_dir, "--run-name")  # a file of that name would stop the first notebook
    results = []
    for path in paths:
        params = {**(parameters or {}), **(per_notebook or {}).get(path.stem, {})}
        if log:
            log(f"running {path.stem} ...")
        results.append(execute(path, out_dir, params, stream))
        if log:
            log(f"{path.stem} done in {results[-1].seconds:.0f} s: {results[-1].html}")
    top = headline(out_dir) if headline else ""
    merge_metrics(out_dir)
    return write_index(out_dir, results, f"streid report: {run_name}", top)
