"""The notebooks as users run them: stored without outputs, and executed end to end (papermill)
with smoke parameters through the demo pipeline, whose second run must reuse the trained models
and the feature cache instead of redoing them. nbval runs them in temporary folders
(notebooks/conftest.py), never in the checkout."""
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from streid_core.reporting.demo import DemoPlan, run_demo, start_over, summary_lines
from streid_core.reporting.notebook_data import SYNTH_PRESETS
from streid_core.reporting.notebooks import notebooks_dir

NOTEBOOKS = sorted(Path(notebooks_dir()).glob("[0-9][0-9]_*.ipynb"))
REPO = Path(notebooks_dir()).parent
# Where the notebooks' default paths point in a checkout: nbval must write none of it.
REPO_OUTPUTS = ("data", "reports/notebooks", "checkpoints")
SMOKE = DemoPlan(
    synth=SYNTH_PRESETS["smoke"],
    baseline=dict(height=64, width=32, batch_size=4, epochs=2, max_iters_per_epoch=2, workers=0, threads=1),
    streidnet=dict(height=64, width=32, batch_size=2, niter=1, niter_decay=0, max_iters_per_epoch=2, workers=0,
                   threads=1),
    report=dict(max_points=200, ranked_queries=2, failure_queries=2, embedding_method="pca", threads=1),
    synth_workers=1,
)
RATES = ("R1", "R5", "R10", "mAP", "mINP")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_and_with_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not with_outputs, f"{path.name}: cells {with_outputs} hold outputs; clear them before committing"
    assert nb.metadata["kernelspec"]["name"] == "python3" and nb.metadata["language_info"]["name"] == "python"
    first = nb.cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", []) and "output_dir" in first.source
    # nbformat 4.5 requires a unique id per cell (read() would add missing ones with a warning,
    # and JupyterLab rewrites the file on the next save), so check the committed JSON itself
    ids = [c.get("id") for c in json.loads(path.read_text())["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), f"{path.name}: cells without a unique id: {ids}"


def _parameters(path: Path) -> dict:
    """The literal values of a notebook's parameters cell."""
    cell = nbformat.read(path, as_version=4).cells[0]
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_user_gets_the_checkouts_folders_by_default(path):
    """Opened in JupyterLab (the kernel in notebooks/), the defaults name the checkout's folders."""
    params = _parameters(path)
    assert params["output_dir"] == "../reports/notebooks"
    paths = {k: v for k, v in params.items() if k.endswith(("_dir", "_root", "checkpoint")) and isinstance(v, str)}
    assert all(v.startswith("../") for v in paths.values()), paths


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under the checkout's output folders, with its size and mtime."""
    found = {}
    for folder in REPO_OUTPUTS:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            for name in dirnames + filenames:
                stat = os.stat(os.path.join(dirpath, name))
                found[os.path.relpath(os.path.join(dirpath, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.mark.slow
def test_nbval_runs_a_notebook_in_a_fresh_temporary_folder_not_in_the_checkout(tmp_path):
    """Notebook 04 writes into all three default folders (dataset, report, checkpoint): under
    nbval they must land in the temporary folder, and the checkout must not change."""
    notebook = REPO / "notebooks" / "04_pose_transfer_explorer.ipynb"
    basetemp = tmp_path / "basetemp"
    before = _listing(REPO)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
                           str(notebook)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b6 passed\b", done.stdout), done.stdout[-3000:]  # nbval ran every code cell
    assert _listing(REPO) == before

    workdir = basetemp / f"{notebook.stem}0"
    assert json.loads((workdir / "reports" / "notebooks" / "04_metrics.json").read_text())["gallery_people"] == 3
    run = workdir / "checkpoints" / "explorer-smoke"
    assert (run / "results.json").is_file() and (run / "log.txt").is_file()  # the smoke model was trained there
    # and its network weights were deleted when the run ended (notebooks/conftest.py), the rest kept
    assert not [p for p in workdir.rglob("*") if p.name.endswith((".pth.tar", ".pth", ".pt"))]
    assert (workdir / "data" / "synthdance-smoke" / "meta.json").is_file()
    assert not os.listdir(workdir / "notebooks")  # the kernel's working directory: nothing written beside it


def _in_range(values: dict) -> bool:
    return all(-1e-9 <= values[k] <= 1 + 1e-9 for k in RATES)  # rates, up to float rounding


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """The smoke demo run twice into the same folder; the lines each run logged."""
    root = tmp_path_factory.mktemp("demo")
    logs = []
    for _ in range(2):
        lines = []
        run_demo(root / "data" / "synthdance", root / "reports" / "demo", device="cpu", plan=SMOKE, log=lines.append)
        logs.append(lines)
    return root, logs


@pytest.mark.slow
def test_smoke_demo_writes_every_notebook_figure_and_metric(demo_runs):
    root, _ = demo_runs
    out = root / "reports" / "demo"
    index = (out / "index.html").read_text()
    for stem in ("01_dataset_exploration", "02_baseline_training", "03_streidnet_training",
                 "04_pose_transfer_explorer", "05_evaluation_report"):
        executed = nbformat.read(out / f"{stem}.ipynb", as_version=4)
        code = [c for c in executed.cells if c.cell_type == "code"]
        assert code and all(c.execution_count for c in code), f"{stem}: not every cell ran"
        assert not [o for c in code for o in c.outputs if o.output_type == "error"], stem
        assert f'href="{stem}.html"' in index
    for figure in ("01_counts.png", "01_keypoints.png", "01_samples.png", "01_pose_inputs.png",
                   "01_color_baseline_cmc.png", "02_training_curves.png", "03_training_curves.png",
                   "03_generated_epoch001.png", "04_pose_transfer_gallery.png", "05_cmc.png", "05_embedding.png", "05_ranked_1_failures.png"):
        assert (out / figure).is_file() and f'src="{figure}"' in index, figure
    assert "runs/" not in index  # checkpoints, TensorBoard and caches stay out of the report page

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"01_metrics", "02_metrics", "03_metrics", "04_metrics", "05_metrics"}
    assert metrics["01_metrics"]["splits"]["query"]["images"] > 0 and _in_range(metrics["01_metrics"]["color_baseline"])
    baseline, streidnet = metrics["02_metrics"], metrics["03_metrics"]
    assert _in_range(baseline["test"]) and _in_range(streidnet["test"])
    assert len(baseline["history"]) == 2  # two epochs, evaluated after each
    assert streidnet["init_encoder_from"] == str(out / "runs" / "baseline")  # E started from the baseline
    report = metrics["05_metrics"]
    assert set(report["models"]) == {"baseline", "ST-ReIDNet"}
    for model in report["models"].values():
        for protocol in report["protocols"]:
            assert set(report["ap_conventions"]) <= set(model[protocol])
            assert all(_in_range(model[protocol][ap]) for ap in report["ap_conventions"])
    for probe in report["pose_probe"].values():
        assert all(0 <= probe[kind][k] <= 1 for kind in ("identity", "pose") for k in ("agreement", "chance"))
    # 05 evaluates the checkpoints notebooks 02 and 03 selected
    assert report["models"]["baseline"]["checkpoint"] == baseline["checkpoint"]
    # the page opens with the headline tables and the transfer gallery; 03, 04, 05 and the page
    # measured the same checkpoint with the same settings, so they agree
    assert index.index('id="reid"') < index.index('id="transfer"') < index.index('src="transfer_gallery.png"') \
        < index.index("<h2>Notebooks</h2>")
    transfer = json.loads((out / "transfer_metrics.json").read_text())
    assert transfer["checkpoint"] == str(out / "runs" / "streidnet" / "checkpoint.pth.tar")
    for stem in ("03_metrics", "04_metrics", "05_metrics"):
        assert metrics[stem]["pose_transfer"]["scores"] == transfer["scores"], stem
        assert (out / f"{stem[:2]}_transfer_examples.png").is_file()


@pytest.mark.slow
def test_second_demo_run_reuses_models_and_feature_cache(demo_runs):
    root, (first, second) = demo_runs
    metrics = json.loads((root / "reports" / "demo" / "metrics.json").read_text())
    assert metrics["02_metrics"]["reused"] and metrics["03_metrics"]["reused"]
    assert all(metrics["05_metrics"]["feature_cache_hits"].values())
    assert any(line.startswith("generating SynthDance") for line in first)
    assert any(line.startswith("using the dataset") for line in second)
    assert any(line.startswith("pose transfer of the ST-ReIDNet checkpoint (from its transfer cache)")
               for line in second)
    # the same models, read back from the cache, give the same numbers
    headline = [line for line in second if re.match(r"\s*(baseline|ST-ReIDNet|colour)", line)]
    assert len(headline) == 3 and headline == summary_lines(metrics)
    assert headline == [line for line in first if re.match(r"\s*(baseline|ST-ReIDNet|colour)", line)]


def test_fresh_start_clears_the_report_and_regenerates_a_generated_dataset(tmp_path):
    from streid_core.data.synth import generate

    data = generate(tmp_path / "synthdance", SYNTH_PRESETS["smoke"]).root
    before = (data / "meta.json").stat().st_mtime_ns
    out = tmp_path / "demo"
    (out / "runs" / "baseline").mkdir(parents=True)
    (out / "index.html").write_text("old")
    start_over(out, data, log=lambda line: None)
    assert not out.exists()
    assert (data / "meta.json").stat().st_mtime_ns != before
    assert json.loads((data / "synth.json").read_text())["params"]["ids"] == SYNTH_PRESETS["smoke"].ids


def test_fresh_start_refuses_to_clear_a_folder_the_demo_did_not_write(tmp_path):
    from streid_core.errors import StreidError

    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(StreidError, match="not a streid demo folder"):
        start_over(out, tmp_path / "data", log=lambda line: None)
    assert (out / "thesis.tex").exists()
