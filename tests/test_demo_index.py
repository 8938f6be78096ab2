"""The demo's index.html opens with the headline numbers and the transfer gallery, built from the
files the demo writes (here small fake ones), before the list of notebooks and figures."""
import json
import re
from pathlib import Path

from PIL import Image

from streid_core.reporting.demo import DEMO, NOTEBOOKS, demo_parameters, summary_lines, transfer_summary_line
from streid_core.reporting.demo_index import (REPORT_JSON, TRANSFER_GALLERY, TRANSFER_JSON, TRANSFER_SEEN_JSON,
                                              demo_headline)
from streid_core.reporting.notebooks import NotebookResult, check_parameters, resolve_notebook, write_index

METRICS = ("body_l1", "ssim", "ssim_body", "pose_accuracy", "identity_accuracy", "rank1")


def _fake_report(out: Path) -> None:
    def rates(r1, m):
        return {"R1": r1, "R5": 0.9, "R10": 0.95, "mAP": m, "mINP": 0.1, "num_valid": 20}

    (out / REPORT_JSON).write_text(json.dumps({
        "dataset": "synthdance", "protocols": ["dancereid", "market1501"],
        "ap_conventions": ["non_interpolated", "sklearn"],  # the page shows sklearn's, as the colour baseline's
        "models": {
            "baseline": {"checkpoint": "runs/baseline/model_best.pth.tar",
                         "dancereid": {"sklearn": rates(0.612, 0.418), "non_interpolated": rates(0.11, 0.12)},
                         "market1501": {"sklearn": rates(0.21, 0.22)}},
            "ST-ReIDNet": {"checkpoint": "runs/streidnet/model_best.pth.tar",
                           "dancereid": {"sklearn": rates(0.534, 0.336), "non_interpolated": rates(0.13, 0.14)}},
        },
        "color_baseline": rates(0.487, 0.365),
    }))


def _fake_transfer(out: Path) -> None:
    scores = {"generator": dict(zip(METRICS, (0.1234, 0.51, 0.42, 0.9375, 0.8125, 0.25))),
              "source": dict(zip(METRICS, (0.2, 0.3, 0.31, 0.5, 0.5, 0.6))),
              "mean": dict(zip(METRICS, (0.187, 0.4, 0.41, 0.5, 0.5, 0.05)))}
    (out / TRANSFER_JSON).write_text(json.dumps({
        "pairs": 64, "seed": 0, "image_size": [128, 64], "dataset": "synthdance", "dancers": 17, "scores": scores,
        "chance": {"pose_accuracy": 0.5, "identity_accuracy": 0.5, "rank1": 0.043}, "per_pair": []}))
    Image.new("RGB", (40, 30), "white").save(out / TRANSFER_GALLERY)
    seen = {**scores, "generator": dict(zip(METRICS, (0.0712, 0.61, 0.52, 0.875, 0.7969, 0.5)))}
    (out / TRANSFER_SEEN_JSON).write_text(json.dumps({
        "pairs": 64, "seed": 0, "image_size": [128, 64], "dataset": "synthdance", "dancers": 32, "scores": seen,
        "chance": {"pose_accuracy": 0.5, "identity_accuracy": 0.5, "rank1": 0.03}, "per_pair": []}))


def _tables(page: str) -> dict[str, dict[str, list[str]]]:
    """table id -> row header -> the row's data cells."""
    tables = {}
    for name, body in re.findall(r'<table class="headline" id="(\w+)">(.*?)</table>', page, re.S):
        rows = {}
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            head = re.findall(r"<th>(.*?)</th>", row)
            rows[head[0]] = re.findall(r"<td>(.*?)</td>", row)
        tables[name] = rows
    return tables


def test_index_opens_with_the_reid_and_transfer_tables_and_the_gallery(tmp_path):
    _fake_report(tmp_path)
    _fake_transfer(tmp_path)
    (tmp_path / "05_evaluation_report.html").write_text("<html></html>")
    result = NotebookResult("05_evaluation_report", tmp_path / "05_evaluation_report.ipynb",
                            tmp_path / "05_evaluation_report.html", 3.0)
    page = write_index(tmp_path, [result], "streid report: demo", demo_headline(tmp_path)).read_text()

    tables = _tables(page)
    assert tables["reid"]["colour histogram"] == ["48.7", "36.5"]
    assert tables["reid"]["baseline"] == ["61.2", "41.8"]  # dancereid protocol, sklearn AP
    assert tables["reid"]["ST-ReIDNet"] == ["53.4", "33.6"]
    assert "dancereid protocol, sklearn AP" in page
    transfer = tables["transfer"]
    assert transfer["G(s, pose t) of ST-ReIDNet"] == ["0.123", "0.510", "0.420", "0.938", "0.812", "0.250"]
    assert transfer["source s unchanged"][0] == "0.200" and transfer["mean image"][0] == "0.187"
    assert transfer["chance"] == ["", "", "", "0.500", "0.500", "0.043"]
    assert "64 (source s, target t) pairs of 17 test dancers" in page
    # below it, the same on the dancers G trained on, from its own file
    assert tables["transfer_seen"]["G(s, pose t) of ST-ReIDNet"] == ["0.071", "0.610", "0.520", "0.875", "0.797", "0.500"]
    assert "pairs of 32 training dancers (their frames as sources and targets) of synthdance" in page
    assert f"(from {TRANSFER_SEEN_JSON})" in page
    assert page.index('id="transfer"') < page.index('id="transfer_seen"') < page.index(f'<img src="{TRANSFER_GALLERY}"')
    # the gallery is shown, and the tables and gallery come before the list of files
    assert f'<img src="{TRANSFER_GALLERY}"' in page
    assert page.index('id="reid"') < page.index('id="transfer"') < page.index(f'<img src="{TRANSFER_GALLERY}"') \
        < page.index("<h2>Notebooks</h2>")
    assert 'href="05_evaluation_report.html"' in page and 'href="metrics.json"' in page


def test_missing_inputs_leave_dashes_and_say_so(tmp_path):
    (tmp_path / REPORT_JSON).write_text(json.dumps({"protocols": ["dancereid"], "ap_conventions": ["sklearn"],
                                                    "models": {"baseline": {"dancereid": {"sklearn": {
                                                        "R1": 0.5, "mAP": 0.4}}}}}))
    page = demo_headline(tmp_path)
    tables = _tables(page)
    assert tables["reid"]["baseline"] == ["50.0", "40.0"]
    assert tables["reid"]["ST-ReIDNet"] == ["&ndash;", "&ndash;"]
    assert "Not measured: colour histogram, ST-ReIDNet" in page
    assert "transfer" not in tables and f"{TRANSFER_JSON} is missing" in page and "<img" not in page
    assert "transfer_seen" not in tables and f"{TRANSFER_SEEN_JSON} is missing" in page


def test_the_demo_log_line_names_the_transfer_numbers(tmp_path):
    _fake_transfer(tmp_path)
    metrics = {"transfer_metrics": json.loads((tmp_path / TRANSFER_JSON).read_text())}
    line = transfer_summary_line(metrics)
    assert "body L1 0.123" in line and "mean image 0.187" in line and "pose acc. 0.94" in line
    assert transfer_summary_line({}) is None and summary_lines(metrics) == []


def test_every_demo_parameter_is_one_its_notebook_declares(tmp_path):
    """The demo passes one transfer setting to notebooks 03, 04 and 05 (so the run's transfer
    cache answers all but the first measurement)."""
    common, per_notebook = demo_parameters(DEMO, tmp_path / "data" / "synthdance", tmp_path / "demo", "cpu")
    check_parameters([resolve_notebook(name) for name in NOTEBOOKS], common, per_notebook)
    for stem in ("03_streidnet_training", "04_pose_transfer_explorer", "05_evaluation_report"):
        assert {k: per_notebook[stem][k] for k in ("transfer_pairs", "transfer_seed")} == DEMO.transfer
    # notebook 03 spreads `options` / `run_options` into the configs: each key must be a field,
    # and the demo's ST-ReIDNet (the CPU recipe of reports/transfer-curve) must validate
    from dataclasses import fields

    from streid_core.training.streidnet_config import StreidNetConfig, StreidNetRunConfig

    plan = DEMO.streidnet
    model = StreidNetConfig(num_classes=1, **plan["options"])
    run = StreidNetRunConfig(model=model, **plan["run_options"])
    assert set(plan["options"]) <= {f.name for f in fields(StreidNetConfig)}
    model.validate()
    assert (model.ngf, model.connect_layers, model.drop, model.lr_g) == (32, 5, 0.0, 2e-4)
    assert model.lambda_d == model.lambda_dp == 0.0  # the options override notebook 03's README weights
    assert run.print_freq == plan["run_options"]["print_freq"] and plan["transfer_eval_every"] > 0
    # the curve while training on 64 pairs, the checkpoint's headline measurement on 256
    assert run.transfer_eval_pairs == 64 and DEMO.transfer["transfer_pairs"] == 256
