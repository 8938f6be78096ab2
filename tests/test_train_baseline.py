"""`streid baseline`: the original baseline.py flags and defaults, the README command, both
embedding types, --evaluate, user errors, and a tiny synthdance run far above chance."""
import json
import shlex

import numpy as np
import pytest
import torch
from _make_datasets import make_dancereid
from _make_train_run import cli_args, single_thread, tiny_config, tiny_openreid

from streid_core.cli import build_parser, main
from streid_core.cli.baseline import baseline_config
from streid_core.errors import StreidError
from streid_core.training.baseline import BaselineTask, evaluate_baseline, train_baseline
from streid_core.models.loading import load_checkpoint, load_encoder
from streid_core.training.checkpoint import BEST_NAME, CHECKPOINT_NAME
from streid_core.training.config import BaselineConfig, ReleaseQuirks
from streid_core.training.engine import RunContext

_one_thread = pytest.fixture(scope="module", autouse=True)(single_thread)

# The README's baseline command with `python3 baseline.py` replaced by `streid baseline`.
README_COMMAND = """streid baseline \
    -b 128 -j 8 -d DanceReid --split 0 --combine-trainval \
    -a resnet50 --emb-type Single \
    --soft-margin --lambda-tri 1.0 --lambda-cla 1.0 \
    --lr 5e-5 --epochs 100 --step-size 40 --eval-step 10 \
    --inst-mode \
    --last-stride 1 \
    --use-bn \
    --test-bn \
    --label-smoothing \
    --eraser \
    --data-dir /path/to/dataset/directory \
    --logs-dir /path/to/saving/directory"""


def _config(argv):
    return baseline_config(build_parser().parse_args(argv))


def test_defaults_are_those_of_the_original_baseline_py():
    c = _config(["baseline"])
    # docs/original-system.md §1.1, column "default"
    assert (c.dataset, c.batch_size, c.workers, c.split, c.height, c.width) == ("DanceReID", 256, 4, 0, None, None)
    assert (c.combine_trainval, c.np_ratio, c.inst_mode, c.arch, c.emb_type) == (False, 3, False, "resnet50", "Single")
    assert (c.soft_margin, c.margin, c.lambda_tri, c.lambda_cla) == (False, 4, 1.0, 1.0)
    assert (c.lr, c.opt_name, c.momentum, c.weight_decay) == (0.01, "Adam", 0.9, 5e-4)
    assert (c.resume, c.evaluate, c.epochs, c.step_size, c.eval_step, c.seed) == ("", False, 50, 40, 20, 1)
    assert (c.eraser, c.label_smoothing, c.last_stride, c.use_bn, c.test_bn) == (False, False, 1, False, False)
    assert c.input_size == (256, 128) and c.select_on == "val" and c.amp == "off"
    assert c.quirks == ReleaseQuirks() and _config(["baseline", "--release-compat"]).quirks == ReleaseQuirks.release()


def test_help_shows_the_config_defaults():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["baseline"]
    text = " ".join(sub.format_help().split())
    assert f"(default {BaselineConfig().margin})" in text and "(default Adam)" in text
    assert "(default None)" not in text and "(default False)" not in text


def test_every_flag_has_a_help_line():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["baseline"]
    missing = [a.option_strings for a in sub._actions if a.option_strings and not a.help]
    assert not missing


def test_readme_command_parses_to_the_documented_meaning():
    c = _config(shlex.split(README_COMMAND)[1:])
    assert (c.batch_size, c.workers, c.dataset, c.split, c.combine_trainval) == (128, 8, "DanceReid", 0, True)
    assert (c.arch, c.emb_type, c.soft_margin, c.lambda_tri, c.lambda_cla) == ("resnet50", "Single", True, 1.0, 1.0)
    assert (c.lr, c.epochs, c.step_size, c.eval_step) == (5e-5, 100, 40, 10)
    assert c.inst_mode and c.last_stride == 1 and c.use_bn and c.test_bn and c.label_smoothing and c.eraser


def test_readme_command_trains_on_a_dancereid_folder(tmp_path, capsys):
    make_dancereid(tmp_path / "data" / "DanceReID")  # the folder is DanceReID, the README says DanceReid
    smaller = ["-b", "4", "-j", "0", "-a", "resnet18", "--epochs", "1", "--height", "32", "--width", "16",
               "--device", "cpu", "--data-dir", str(tmp_path / "data"), "--logs-dir", str(tmp_path / "logs")]
    assert main(shlex.split(README_COMMAND)[1:] + smaller) == 0  # later flags override the README's sizes
    results = json.loads((tmp_path / "logs" / "results.json").read_text())
    assert results["protocol"] == "dancereid" and results["selection"] == "last"
    saved = load_checkpoint(tmp_path / "logs" / CHECKPOINT_NAME)
    assert saved["encoder_config"]["test_bn"] and saved["encoder_config"]["num_classes"] == 5  # trainval ids


@pytest.mark.parametrize("soft, margin, expected", [(True, 4.0, "soft"), (False, 0.5, 0.5), (False, 4.0, 4.0)])
def test_margin_is_the_hard_margin_only_without_soft_margin(tmp_path, soft, margin, expected):
    config = tiny_config(tmp_path, tmp_path, soft_margin=soft, margin=margin)
    task = BaselineTask(config.encoder_config(3).build(), config, RunContext(torch.device("cpu")))
    assert task.margin == expected


def test_siamese_pairs_train_and_give_a_binary_head(tmp_path):
    data = tiny_openreid(tmp_path / "data")
    config = tiny_config(data, tmp_path / "logs", emb_type="Siamese", np_ratio=1, soft_margin=False, margin=0.5,
                         epochs=1)
    result = train_baseline(config)
    assert 0.0 <= result.test["mAP"] <= 1.0
    encoder, size = load_encoder(tmp_path / "logs" / CHECKPOINT_NAME)
    assert encoder.emb_type == "Siamese" and encoder.num_classes == 2 and size == (32, 16)
    with torch.no_grad():
        assert encoder(torch.randn(3, 3, 32, 16)).shape == (3, 512)


def test_evaluate_reproduces_the_final_test_of_the_selected_model(tmp_path):
    data = tiny_openreid(tmp_path / "data")
    logs = tmp_path / "logs"
    result = train_baseline(tiny_config(data, logs, epochs=1))
    metrics = evaluate_baseline(tiny_config(data, logs, evaluate=True, resume=str(logs / BEST_NAME)))
    assert metrics == result.test
    assert "model_best.pth.tar on Tiny test" in (logs / "log_test.txt").read_text()
    # the best-model file has no optimiser or RNG state, and a resume must keep the architecture
    with pytest.raises(StreidError, match="best-model file"):
        train_baseline(tiny_config(data, logs, epochs=2, resume=str(logs / BEST_NAME)))
    with pytest.raises(StreidError, match=r"other settings \(--last-stride=1 \(now 2\)\)"):
        train_baseline(tiny_config(data, logs, epochs=2, last_stride=2, resume=str(logs / CHECKPOINT_NAME)))


@pytest.mark.parametrize("extra, words", [
    (["-d", "nowhere"], "dataset 'nowhere' not found"),
    (["-b", "1000"], "-b/--batch-size 1000"),
    (["--amp", "fp16"], "--amp fp16 needs a CUDA device"),
    (["--opt-name", "Adamm"], "--opt-name Adamm"),
    (["--evaluate"], "--evaluate needs --resume"),
    (["--lr", "1e30", "--opt-name", "SGD"], "Try a lower --lr"),  # diverges: weights jump to ~1e30
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, extra, words):
    data = tiny_openreid(tmp_path / "data")
    argv = cli_args(tiny_config(data, tmp_path / "logs", max_iters_per_epoch=3)) + extra
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streid: error: ") and "\n" not in err and words in err, err


@pytest.mark.slow
def test_tiny_synthdance_run_is_far_above_chance_and_above_the_untrained_network(tmp_path):
    from streid_core.data.dataset import load_dataset
    from streid_core.data.synth.config import SynthConfig
    from streid_core.data.synth.writer import generate
    from streid_core.evaluation.pipeline import evaluate_reid

    root = tmp_path / "data" / "synthdance"
    generate(root, SynthConfig(ids=15, videos=4, frames=12, height=64, width=32))
    test = load_dataset(root).query  # DanceReID protocol: query = gallery = the test images
    # chance: a random ranking puts a query's positives anywhere among the other images, so
    # its expected precision is #positives / #candidates; the query itself is the only junk
    pids = np.array([r.pid for r in test])
    chance = float(np.mean([(np.sum(pids == p) - 1) / (len(pids) - 1) for p in pids]))

    config = BaselineConfig(dataset="synthdance", data_dir=str(tmp_path / "data"), logs_dir=str(tmp_path / "logs"),
                            arch="resnet18", height=64, width=32, batch_size=16, workers=0, epochs=2, eval_step=2,
                            combine_trainval=True, soft_margin=True, inst_mode=True, use_bn=True,
                            label_smoothing=True, lr=3e-3, step_size=100, device="cpu", deterministic=True, seed=1)
    trained = train_baseline(config).test["mAP"]
    torch.manual_seed(config.seed)
    untrained = config.encoder_config(num_classes=10).build().eval()  # same architecture, never trained
    untrained_map = evaluate_reid(untrained, test, test, "dancereid", height=64, width=32).result.mAP
    assert trained >= 2 * chance, (trained, chance)
    assert trained > untrained_map + 0.05, (trained, untrained_map)
