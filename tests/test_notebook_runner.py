"""`streid notebooks run`: papermill execution, parameters, failure reporting, the index page."""
import json

import nbformat
import pytest

from streid_core.cli import main
from streid_core.reporting import notebooks as runner


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("output_dir = '.'\nscale = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(runner, "notebooks_dir", lambda: folder)
    return folder


def test_run_writes_executed_notebook_html_metrics_and_index(notebooks, tmp_path, capsys):
    _notebook(
        notebooks / "01_ok.ipynb",
        ["import json, pathlib\n"
         "pathlib.Path(output_dir, 'ok_metrics.json').write_text(json.dumps({'mAP': 0.5 * scale}))"],
    )
    code = main(["notebooks", "run", "01", "-p", "scale", "2", "--run-name", "r1",
                 "--reports", str(tmp_path / "reports")])
    assert code == 0
    run = tmp_path / "reports" / "r1"
    assert (run / "01_ok.ipynb").exists() and (run / "01_ok.html").exists()
    assert json.loads((run / "metrics.json").read_text()) == {"ok_metrics": {"mAP": 1.0}}
    index = (run / "index.html").read_text()
    assert 'href="01_ok.html"' in index and "metrics.json" in index
    assert str(run / "index.html") in capsys.readouterr().out


def test_failing_cell_names_notebook_and_cell(notebooks, tmp_path, capsys):
    _notebook(notebooks / "02_bad.ipynb", ["x = 1", "raise ValueError('boom')"])
    code = main(["notebooks", "run", "02_bad", "--run-name", "r2", "--reports", str(tmp_path / "rep")])
    assert code == 2
    err = capsys.readouterr().err
    assert "02_bad.ipynb: cell 3 (\"raise ValueError('boom')\")" in err and "ValueError: boom" in err


def test_unknown_notebook_is_one_line_listing_the_choices(notebooks, capsys):
    _notebook(notebooks / "01_ok.ipynb", ["pass"])
    assert main(["notebooks", "run", "07"]) == 2
    assert "choose from 01_ok" in capsys.readouterr().err


def test_index_and_merged_metrics_leave_out_training_runs(tmp_path):
    (tmp_path / "runs" / "baseline" / "web").mkdir(parents=True)
    (tmp_path / "runs" / "baseline" / "web" / "loss.png").write_bytes(b"png")
    (tmp_path / "runs" / "baseline" / "evaluate_metrics.json").write_text('{"mAP": 0.1}')
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "cmc.png").write_bytes(b"png")
    (tmp_path / "05_metrics.json").write_text('{"mAP": 0.5}')
    assert runner.merge_metrics(tmp_path) == {"05_metrics": {"mAP": 0.5}}
    index = runner.write_index(tmp_path, [], "t").read_text()
    assert 'src="figs/cmc.png"' in index and "runs/" not in index
