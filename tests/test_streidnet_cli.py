"""`streid train`: the seed README's train.py command line, the original defaults, and one tiny
run end to end (then `streid transfer` on its checkpoint)."""
import json
import shlex
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from _make_datasets import coco17_pose, make_dancereid, make_openreid
from _make_streid_batch import one_thread
from streid_core.cli import build_parser, main
from streid_core.cli.train import run_config
from streid_core.data.keypoints import COCO17, write_keypoints
from streid_core.errors import StreidError
from streid_core.training.config import ReleaseQuirks
from streid_core.training.streidnet_config import StreidNetConfig, StreidNetRunConfig

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)

# The README's command, `python3 train.py` replaced by `streid train` (placeholders filled in).
README = """streid train \
    -b 24 -j 8 -d DanceReid --name (your_session_name) \
    --lr 2e-5 --stage 0 --inter-rate 0.7 --skip-frame 10 \
    --niter 50 --niter-decay 50 --save-step 50 --eval-step 10 \
    --display-port 6060 --display-freq 5000 --display-id 1 --display-single-pane-ncols 5 \
    --pose-aug gauss --smooth-label --soft-margin --batch-hard --emb-type Single \
    --last-stride 1 --emb-smooth --eraser --mask \
    --lambda-recon 10.0 --lambda-tri 1.0 --lambda-class 1.0 \
    --lambda-d 0.1 --lambda-dp 0.1 \
    --dataroot /path/to/dataset/directory \
    --checkpoints /path/to/saving/directory"""


def _readme_argv(**paths: str) -> list[str]:
    text = README.replace("(your_session_name)", paths.get("name", "session"))
    text = text.replace("/path/to/dataset/directory", paths.get("data", "/data"))
    text = text.replace("/path/to/saving/directory", paths.get("out", "/out"))
    return shlex.split(text)[1:]


def test_readme_command_parses_with_every_flag_meaning_what_it_did():
    args = build_parser().parse_args(_readme_argv())
    cfg = run_config(args)
    m, d = cfg.model, cfg.display
    assert (cfg.batch_size, cfg.workers, cfg.dataset, cfg.name) == (24, 8, "DanceReid", "session")
    assert (m.lr, m.stage, cfg.inter_rate, cfg.skip_frame) == (2e-5, 0, 0.7, 10)
    assert (m.niter, m.niter_decay, cfg.save_step, cfg.eval_step) == (50, 50, 50, 10)
    assert (d.display_port, d.display_freq, d.display_id, d.single_pane_ncols) == (6060, 5000, 1, 5)
    assert (cfg.pose_aug, m.smooth_label, m.soft_margin, args.batch_hard, m.emb_type) == ("gauss", True, True, True, "Single")
    assert (m.last_stride, m.emb_smooth, cfg.eraser, m.mask) == (1, True, True, True)
    assert (m.lambda_recon, m.lambda_tri, m.lambda_class, m.lambda_d, m.lambda_dp) == (10.0, 1.0, 1.0, 0.1, 0.1)
    assert (cfg.dataroot, cfg.run_dir) == ("/data", Path("/out/session"))
    loop = cfg.loop_config()
    assert loop.epochs == 100 and loop.print_freq == 1  # --print-freq 10 samples < one batch of 24


def test_defaults_are_the_original_train_py_defaults():
    args = build_parser().parse_args(["train"])
    cfg = run_config(args)
    m, d = cfg.model, cfg.display
    # docs/original-system.md §1.2, the table
    assert (m.stage, cfg.dataset, cfg.checkpoints, cfg.name) == (0, "DanceReID", "./checkpoints/", "my_session")
    assert (m.arch, m.norm, m.drop, m.connect_layers, m.fuse_mode, m.pose_feature_size) == ("resnet50", "batch", 0.2, 0, "cat", 128)
    assert (args.noise_feature_size, cfg.pose_aug, cfg.batch_size, cfg.workers, m.width, m.height) == (256, "no", 16, 4, 128, 256)
    assert (cfg.skip_frame, cfg.inter_rate, m.niter, m.niter_decay, m.lr, cfg.save_step, cfg.eval_step) == (20, 0.7, 50, 50, 0.001, 20, 5)
    assert (d.display_port, d.display_id, d.display_winsize, d.display_freq, d.single_pane_ncols) == (6006, 1, 256, 10, 0)
    assert (d.update_html_freq, d.no_html, cfg.print_freq) == (100, False, 10)
    assert (m.lambda_dp, m.lambda_d, m.lambda_recon, m.lambda_tri, m.lambda_class) == (1.0,) * 5
    assert (m.smooth_label, m.margin, m.soft_margin, args.batch_hard, m.emb_type) == (False, 1.0, False, False, "Single")
    assert (m.mask, cfg.eraser, m.emb_smooth, m.last_stride, cfg.seed) == (False, False, False, 2, 1)
    assert not m.quirks.data_pipeline and m.quirks.double_generator_gradient is False


def test_help_shows_the_config_defaults():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    text = " ".join(sub.format_help().split())
    run = StreidNetRunConfig(model=StreidNetConfig(num_classes=0))
    for flag, default in (("--lr", run.model.lr), ("--ngf", run.model.ngf), ("--skip-frame", run.skip_frame),
                          ("--checkpoints", run.checkpoints), ("--device", "auto")):
        assert f"(default {default})" in text.split(flag, 2)[2], flag
    assert "(default None)" not in text and "(default False)" not in text


def test_release_compat_switches_model_and_data_quirks(tmp_path):
    from streid_core.training.streidnet_run import streidnet_data

    make_dancereid(tmp_path / "DanceReID")
    argv = ["train", "--dataroot", str(tmp_path), "-b", "2", "--height", "64", "--width", "32", "--release-compat"]
    cfg = run_config(build_parser().parse_args(argv))
    assert cfg.model.quirks == ReleaseQuirks.release()  # one setting, for the model and the data
    train, _, _ = streidnet_data(cfg)
    assert train.dataset.release_compat and train.batch_sampler.sampler.release_compat
    fixed, _, _ = streidnet_data(run_config(build_parser().parse_args(argv[:-1])))
    assert not fixed.dataset.release_compat and not fixed.batch_sampler.sampler.release_compat


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    make_openreid(tmp_path / "market1501", poses=False)
    assert main(["train", "--dataroot", str(tmp_path), "-d", "market1501", "--checkpoints", str(tmp_path / "out")]) == 2
    assert "no pose files" in capsys.readouterr().err
    make_dancereid(tmp_path / "DanceReID")
    argv = ["train", "--dataroot", str(tmp_path), "--checkpoints", str(tmp_path / "out"), "--arch", "resnet18",
            "--height", "64", "--width", "32", "-b", "2", "--device", "cpu"]
    assert main(argv + ["--stage", "1"]) == 2
    assert "--netE-pretrain" in capsys.readouterr().err
    assert main(argv + ["--height", "60"]) == 2
    assert "divisible by 32" in capsys.readouterr().err
    assert main(argv + ["--lambda-paint", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--lambda-paint 1.0" in err and "add --paint-limbs" in err
    assert main(argv + ["--paint-from", "source-limbs"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--paint-from source-limbs" in err and "add --paint-limbs" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stage, flag, reads_it_in", [
    (0, "--netE-pretrain", "stages 1 and 2"), (1, "--netG-pretrain", "stage 2"), (0, "--netDi-pretrain", "stage 2"),
    (1, "--netDp-pretrain", "stage 2")])
def test_a_pretrain_file_the_stage_would_ignore_is_refused_before_the_run(tmp_path, capsys, stage, flag, reads_it_in):
    """The release silently ignores e.g. --netG-pretrain in stage 1 (G starts fresh): a user who
    passes it believes G is warm-started. Refused with the stage that reads it; nothing written."""
    weights = tmp_path / "weights.pth"
    torch.save({}, weights)
    argv = ["train", "--dataroot", str(tmp_path), "--checkpoints", str(tmp_path / "out"), "--arch", "resnet18",
            "--height", "64", "--width", "32", "--stage", str(stage), flag, str(weights)]
    if stage == 1:
        argv += ["--netE-pretrain", str(weights)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and f"stage {stage} does not read it" in err and reads_it_in in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_readme_command_trains_one_tiny_epoch_end_to_end_and_transfers(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "visdom", None)  # the display falls back to TensorBoard + HTML
    make_dancereid(tmp_path / "data" / "DanceReID")
    argv = _readme_argv(name="tiny", data=str(tmp_path / "data"), out=str(tmp_path / "ck"))
    # the README as written, then the overrides that make it tiny (argparse keeps the last value)
    argv += ["--arch", "resnet18", "--height", "64", "--width", "32", "-b", "2", "-j", "0", "--niter", "1",
             "--niter-decay", "0", "--max-iters-per-epoch", "2", "--display-freq", "2", "--update-html-freq", "2",
             "--save-step", "1", "--device", "cpu"]
    with pytest.warns(RuntimeWarning, match="visdom is not installed") as caught:
        assert main(argv) == 0
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    run = tmp_path / "ck" / "tiny"
    for name in ("checkpoint.pth.tar", "model_best.pth.tar", "results.json", "config.json", "log.txt",
                 "1_net_E.pth", "1_net_G.pth", "1_net_Di.pth", "1_net_Dp.pth", "web/index.html", "web/images/epoch001_ach_fake2.png"):
        assert (run / name).is_file(), name
    results = json.loads((run / "results.json").read_text())
    assert 0.0 <= results["test"]["mAP"] <= 1.0
    state = torch.load(run / "checkpoint.pth.tar", weights_only=True)
    assert set(state["task"]["networks"]) == {"E", "G", "Di", "Dp"}
    assert state["task"]["config"]["lambda_recon"] == 10.0 and state["task"]["config"]["keypoints"] == "coco17"
    assert "selected epoch 1" in capsys.readouterr().out

    out = tmp_path / "swap.png"
    source = next((tmp_path / "data" / "DanceReID" / "images").glob("0000_*.jpg"))
    # another dancer's pose, in the source image's pixels
    pose = tmp_path / "pose_0003.txt"
    write_keypoints(pose, coco17_pose(3, 5), COCO17)
    assert main(["transfer", "--checkpoint", str(run / "checkpoint.pth.tar"), "--source", str(source),
                 "--pose", str(pose), "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 64)

    # resuming with other networks is refused before anything is built
    assert main(argv + ["--niter-decay", "1", "--norm", "instance", "--resume", str(run / "checkpoint.pth.tar")]) == 2
    assert "norm='batch' (now 'instance')" in capsys.readouterr().err


def test_preset_cpu_draw_sets_the_recipe_and_explicit_flags_win():
    parser = build_parser()
    model = run_config(parser.parse_args(["train", "--preset", "cpu-draw"])).model
    assert (model.ngf, model.connect_layers, model.drop, model.lr_g) == (32, 5, 0.0, 2e-4)
    assert model.lambda_d == model.lambda_dp == 0.0
    assert model.paint_limbs and model.lambda_paint == 1.0
    assert (model.paint_from, model.paint_layer) == ("source-limbs", 1)
    for argv in (["--preset", "cpu-draw", "--no-paint-limbs", "--lambda-paint", "0"],
                 ["--no-paint-limbs", "--lambda-paint", "0", "--preset", "cpu-draw"]):
        plain = run_config(parser.parse_args(["train", *argv])).model
        assert not plain.paint_limbs and plain.lambda_paint == 0.0  # before or after the preset
        assert (plain.paint_from, plain.paint_layer) == ("descriptor", 4)
        plain.validate()
    given = run_config(parser.parse_args(["train", "--preset", "cpu-draw", "--no-paint-limbs", "--lambda-paint", "0",
                                          "--paint-layer", "2"])).model
    with pytest.raises(StreidError, match="--paint-layer 2: the stage a source-limbs painting reads"):
        given.validate()  # a painting flag the user gave is not silently dropped
    descriptor = run_config(parser.parse_args(["train", "--preset", "cpu-draw", "--paint-from", "descriptor"])).model
    assert descriptor.paint_limbs and (descriptor.paint_from, descriptor.paint_layer) == ("descriptor", 4)
    # a flag given at its default value is still the user's choice, not the preset's
    release_width = run_config(parser.parse_args(["train", "--ngf", "64", "--drop", "0.2", "--preset", "cpu-draw"]))
    assert (release_width.model.ngf, release_width.model.drop, release_width.model.connect_layers) == (64, 0.2, 5)
    for argv in (["--preset", "cpu-draw", "--ngf", "16"], ["--ngf", "16", "--preset", "cpu-draw"]):
        model = run_config(parser.parse_args(["train", *argv])).model
        assert model.ngf == 16 and model.connect_layers == 5  # the flag wins, before or after
    default = run_config(parser.parse_args(["train"])).model
    assert (default.ngf, default.connect_layers, default.lr_g, default.lambda_d) == (64, 0, None, 1.0)
    assert not default.paint_limbs and default.lambda_paint == 0.0
