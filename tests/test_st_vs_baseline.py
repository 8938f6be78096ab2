"""`streid st-vs-baseline`: the five runs per seed, their scores, the table, and resuming."""
import json
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import torch
from _make_synth import TINY

from streid_core.cli import main
from streid_core.data.synth import generate
from streid_core.experiments.st_vs_baseline import (ARMS, Comparison, ComparisonBudget, changed_settings,
                                                    render_markdown, seed_steps, summarise)
from streid_core.training.config import BaselineConfig
from streid_core.training.streidnet_config import StreidNetRunConfig

TINY_BUDGET = ComparisonBudget(height=64, width=32, baseline_batch=4, baseline_epochs=1, baseline_iters=2,
                               st_batch=2, stage1_batch=2, stage1_iters=2, finetune_iters=2, transfer_pairs=8, workers=0)


def test_summary_by_hand():
    scores = {"st-reidnet": {"seed1": {"mAP": 0.5}, "seed2": {"mAP": 0.7}}}
    s = summarise(scores)["st-reidnet"]["mAP"]
    assert s["mean"] == pytest.approx(0.6)
    assert s["std"] == pytest.approx(np.sqrt(0.02))  # sample std: ((0.1^2 + 0.1^2) / 1) ** 0.5


def _bn_statistic(key):
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


def test_the_arms_differ_only_in_what_is_compared(tmp_path):
    steps = {s.name: s for s in seed_steps(1, tmp_path, "synthdance", tmp_path / "out", ComparisonBudget())}
    assert list(steps) == ["baseline", "stage1", *ARMS]
    assert isinstance(steps["baseline"].config, BaselineConfig)
    assert all(isinstance(steps[name].config, StreidNetRunConfig) for name in ("stage1", *ARMS))
    method = asdict(steps["st-reidnet"].config)

    def changed(arm):
        return changed_settings(asdict(steps[arm].config), method)

    # beyond the run name, only the generator weights (to 0) and the sparse-temporal rate change
    # (the default budget trains G on reconstruction alone: its adversarial weights are 0 already)
    generator_off = {f"model.{k}": 0.0 for k in ("lambda_recon", "lambda_d", "lambda_dp") if method["model"][k]}
    assert generator_off == {"model.lambda_recon": 0.0}
    assert changed("st-sampling-only") == {**generator_off, "name": "st-sampling-only"}
    assert changed("baseline-continued") == {**generator_off, "inter_rate": 0.0, "name": "baseline-continued"}
    assert method["inter_rate"] == 0.7 and method["model"]["lambda_recon"] == 10.0
    for arm in ARMS:  # every fine-tune starts from the same stage-0 encoder and stage-1 G/Di/Dp
        config = steps[arm].config
        assert config.model.netE_pretrain.endswith("seed1/baseline/model_best.pth.tar")
        assert config.model.netG_pretrain.endswith("seed1/stage1/checkpoint.pth.tar")
        assert config.model.stage == 2 and config.max_iters_per_epoch == 60
        assert steps[arm].run_dir == tmp_path / "out" / "seed1" / arm
    assert steps["baseline"].run_dir == tmp_path / "out" / "seed1" / "baseline"
    # stage 1 trains the CPU recipe's G (reports/transfer-curve), measured after its last iteration;
    # every fine-tune loads that G, so all share its architecture
    stage1 = steps["stage1"].config
    assert (stage1.model.ngf, stage1.model.connect_layers, stage1.model.drop) == (32, 5, 0.0)
    assert stage1.model.lambda_d == stage1.model.lambda_dp == 0.0 and stage1.model.lr == 2e-3
    assert stage1.batch_size == 8 and stage1.transfer_eval_every == stage1.max_iters_per_epoch == 200
    assert stage1.model.paint_limbs and stage1.model.lambda_paint == 1.0  # the limb painting, as --preset cpu-draw
    assert (stage1.model.paint_from, stage1.model.paint_layer) == ("source-limbs", 1)
    for arm in ARMS:
        model = steps[arm].config.model
        assert (model.ngf, model.connect_layers, model.drop, model.paint_limbs) == (32, 5, 0.0, True)
        assert (model.paint_from, model.paint_layer) == ("source-limbs", 1)
    assert steps["stage1"].describe().startswith("train_streidnet(model.stage=1, ")


def test_table_states_the_verdict():
    scores = {row: {f"seed{s}": {"mAP": m, "R1": m, "pose_knn_skill": 0.1, "pose_linear_accuracy": 0.3,
                                 "identity_knn_skill": 0.5} for s, m in zip((1, 2), values)}
              for row, values in {"baseline": (0.40, 0.42), "st-reidnet": (0.50, 0.40),
                                  "baseline-continued": (0.45, 0.41)}.items()}
    table = render_markdown(Comparison("synthdance", "dancereid", {}, [1, 2], scores, summarise(scores), 8, 0.2, {}))
    assert "| ST-ReIDNet (G/Di/Dp losses + sparse-temporal sampling) | 45.0 ± 7.1 |" in table
    # gaps +5 and -1 points: +2.0 on average, ahead on 1 of 2 seeds
    assert "+2.0 points on average; ahead on 1 of 2 seeds" in table


@pytest.mark.slow
def test_tiny_comparison_end_to_end_then_resumes_without_retraining(tmp_path, capsys):
    generate(tmp_path / "data" / "synthdance", TINY, workers=1)
    out = tmp_path / "cmp"
    argv = ["st-vs-baseline", "--seeds", "1", "--out", str(out), "--data-dir", str(tmp_path / "data"), "--jobs", "2"]
    argv += [(f"--{k}" if v else f"--no-{k}").replace("_", "-") if isinstance(v, bool) else f"--{k.replace('_', '-')}={v}"
             for k, v in TINY_BUDGET.as_dict().items() if v is not None]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    for row in ("baseline", *ARMS):
        metrics = results["scores"][row]["seed1"]
        assert set(metrics) == {"R1", "mAP", "pose_knn_skill", "pose_linear_accuracy", "identity_knn_skill"}
        assert 0 < metrics["mAP"] <= 1 and 0 <= metrics["pose_linear_accuracy"] <= 1
    assert (out / "generated.png").stat().st_size > 0 and (out / "comparison.png").stat().st_size > 0
    assert "ahead on" in (out / "table.md").read_text()
    # the stage-1 G's pose-transfer metrics, per seed, in results.json and the table
    transfer = results["transfer"]["seed1"]
    assert set(transfer) == {"generator", "source", "mean"} and 0 <= transfer["generator"]["pose_accuracy"] <= 1
    assert "Pose transfer of each seed's stage-1 G" in (out / "table.md").read_text()
    run = results["runs"]["seed1/st-reidnet"]  # every run's whole config
    assert run["trainer"] == "train_streidnet" and run["config"]["model"]["stage"] == 2
    assert (out / "seed1" / "st-reidnet.out").stat().st_size > 0  # each run's own output

    def networks(run):
        return torch.load(out / "seed1" / run / "checkpoint.pth.tar", weights_only=True)["task"]["networks"]

    baseline_e = torch.load(out / "seed1" / "baseline" / "model_best.pth.tar", weights_only=True)["encoder"]
    stage1, control, method = networks("stage1"), networks("baseline-continued"), networks("st-reidnet")
    weight = "trunk.conv1.weight"  # the encoder's first convolution: moves with any gradient through E
    assert all(weight in e for e in (baseline_e, stage1["E"], control["E"], method["E"])), list(baseline_e)[:5]
    assert torch.equal(stage1["E"][weight], baseline_e[weight])  # stage 1 never moves E
    assert not torch.equal(control["E"][weight], baseline_e[weight])  # the fine-tunes do
    # with the generator losses off, G gets no gradient: its weights stay as stage 1 left them
    # (BatchNorm running statistics still follow the batches)
    assert all(torch.equal(v, stage1["G"][k]) for k, v in control["G"].items() if not _bn_statistic(k))
    assert not all(torch.equal(v, stage1["G"][k]) for k, v in method["G"].items() if not _bn_statistic(k))

    # a second call reuses every finished run; an unfinished one is redone
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("seed1/*/results.json")}
    (out / "seed1" / "st-sampling-only" / "results.json").unlink()
    capsys.readouterr()
    assert main(argv) == 0
    again = {p: p.stat().st_mtime_ns for p in out.glob("seed1/*/results.json")}
    changed = {p.parent.name for p in again if again[p] != stamps.get(p)}
    assert changed == {"st-sampling-only"}
    shutil.rmtree(out)  # about 1.8 GB of checkpoints (four networks and their optimisers per run)
