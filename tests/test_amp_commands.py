"""`--amp off|bf16|fp16` of the commands that run networks outside training: `streid track`,
`track-bench`, `transfer` and `transfer-eval`. bf16 runs end to end on the CPU and gives what
float32 gives (to bf16's precision); a network whose bf16 output is far off float32 makes the
command fall back to float32 with one line (numerics.Precision); fp16 on the CPU is a one-line
error; float32 stays the default."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from _make_checkpoint import make_checkpoint
from _make_streid_batch import HEIGHT, WIDTH, one_thread
from _make_synth import TINY
from _make_transfer_checkpoint import make_transfer_checkpoint
from streid_core.cli import build_parser, main
from streid_core.data import load_dataset
from streid_core.data.formats.mot import SeqInfo, read_results, write_detections, write_ground_truth, write_seqinfo
from streid_core.data.keypoints import COCO17, write_keypoints
from streid_core.data.synth import generate
from streid_core.errors import StreidError
from streid_core.numerics import Precision, relative_error
from test_numerics import BrokenUnderBf16

pytestmark = pytest.mark.precision
_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)

FALLBACK = "running in float32 instead"
COMMANDS = ("track", "track-bench", "transfer", "transfer-eval")


def _fallback_line(capsys, what: str) -> None:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "bf16 self-check" in line]
    assert len(lines) == 1 and what in lines[0] and FALLBACK in lines[0], err


def _no_fallback(capsys) -> None:
    assert FALLBACK not in capsys.readouterr().err


# ---------------------------------------------------------------- the shared machinery


def test_precision_runs_in_float32_after_a_failed_check_and_checks_each_network_once(capsys):
    x = torch.randn(4, 3, 8, 8)
    precision = Precision("bf16", "cpu", "test")
    assert torch.equal(precision.run(lambda: BrokenUnderBf16()(x), "E"), BrokenUnderBf16()(x))
    assert precision.amp == "off"
    _fallback_line(capsys, "test E")
    precision.run(lambda: BrokenUnderBf16()(x), "G")  # already float32: no second check, no second line
    assert capsys.readouterr().err == ""

    good = Precision("bf16", "cpu", "test")
    conv = torch.nn.Conv2d(3, 4, 3).eval()
    out = good.run(lambda: conv(x), "E")
    assert good.amp == "bf16" and out.dtype == torch.float32
    assert 0 < relative_error([conv(x)], [out]) < 0.05
    _no_fallback(capsys)
    assert torch.equal(Precision("off").run(lambda: conv(x)), conv(x))  # off: plain float32


def test_fp16_on_the_cpu_is_a_one_line_error():
    with pytest.raises(StreidError, match="--amp fp16 needs a CUDA device") as error:
        Precision("fp16", "cpu")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_amp_defaulting_to_float32(command):
    parser = build_parser()
    required = {"track": ["--frames", "f", "--dets", "d", "--checkpoint", "none", "--out", "o"],
                "track-bench": ["--videos", "v", "--out", "o"],
                "transfer": ["--checkpoint", "c", "--source", "s", "--pose", "p", "--out", "o"],
                "transfer-eval": ["c", "-d", "x"]}[command]
    assert parser.parse_args([command, *required]).amp == "off"
    assert parser.parse_args([command, *required, "--amp"]).amp == "bf16"
    assert parser.parse_args([command, *required, "--amp", "fp16"]).amp == "fp16"


# ---------------------------------------------------------------- track and track-bench

NUM_FRAMES = 6


def _sequence(folder):
    """A MOTChallenge sequence of two coloured people crossing 96x64 frames (img1/, det/, gt/, seqinfo.ini)."""
    (folder / "img1").mkdir(parents=True)
    dets, gt = [], []
    for frame in range(1, NUM_FRAMES + 1):
        image = np.full((64, 96, 3), 128, dtype=np.uint8)
        for pid, (x, colour) in enumerate(((4 + 4 * frame, (220, 20, 20)), (74 - 4 * frame, (20, 20, 220))), 1):
            image[10:50, x:x + 20] = colour
            dets.append([frame, x, 10, 20, 40, 0.9])
            gt.append([frame, pid, x, 10, 20, 40, 1, 1, 1])
        Image.fromarray(image).save(folder / "img1" / f"{frame:06d}.jpg", quality=95)
    write_detections(folder / "det" / "det.txt", np.array(dets, float))
    write_ground_truth(folder / "gt" / "gt.txt", np.array(gt, float))
    write_seqinfo(folder / "seqinfo.ini", SeqInfo(name=folder.name, seq_length=NUM_FRAMES, im_width=96, im_height=64))
    return folder


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("amp_track")
    _sequence(root / "videos" / "dance")
    return root / "videos", make_checkpoint(root / "reid.pth.tar", arch="resnet18", height=64, width=32)


def _track(videos, checkpoint, out, *extra):
    seq = videos / "dance"
    return main(["track", "--frames", str(seq / "img1"), "--dets", str(seq / "det" / "det.txt"), "--seqinfo",
                 str(seq / "seqinfo.ini"), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu",
                 "--n-init", "2", *extra])


def test_the_embedders_bf16_features_are_float32_and_close():
    from streid_core.tracking.reid_embedder import make_reid_embedder

    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                  torch.nn.Flatten())
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    boxes = np.array([[4, 10, 20, 40], [50, 5, 30, 50]], float)
    fp32 = make_reid_embedder(encoder, 32, 16)(frame, boxes)
    bf16 = make_reid_embedder(encoder, 32, 16, amp="bf16")(frame, boxes)
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)
    assert relative_error([torch.from_numpy(fp32)], [torch.from_numpy(bf16)]) < 0.05


def test_track_bf16_gives_the_float32_tracks(videos, tmp_path, capsys):
    folder, checkpoint = videos
    assert _track(folder, checkpoint, tmp_path / "fp32.txt") == 0
    assert _track(folder, checkpoint, tmp_path / "bf16.txt", "--amp", "bf16") == 0
    _no_fallback(capsys)
    fp32, bf16 = read_results(tmp_path / "fp32.txt"), read_results(tmp_path / "bf16.txt")
    assert len(fp32) == 10 and np.array_equal(bf16, fp32)


def _broken_encoder(monkeypatch):
    import streid_core.models.loading as loading

    monkeypatch.setattr(loading, "load_encoder", lambda path, device: (BrokenUnderBf16(), (32, 16)))


def test_track_and_track_bench_refuse_fp16_on_the_cpu(videos, tmp_path, capsys):
    folder, checkpoint = videos
    assert _track(folder, "none", tmp_path / "out.txt", "--amp", "fp16") == 2
    assert "--amp fp16 needs a CUDA device" in capsys.readouterr().err
    assert main(["track-bench", "--videos", str(folder), "--out", str(tmp_path / "bench"), "--device", "cpu",
                 "--checkpoint", f"reid={checkpoint}", "--amp", "fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--amp fp16 needs a CUDA device" in err
    assert not (tmp_path / "bench" / "results").exists()  # refused before motion-only tracking ran


def _bench(folder, checkpoint, out, *extra):
    return main(["track-bench", "--videos", str(folder), "--out", str(out), "--device", "cpu", "--n-init", "2",
                 "--no-trackeval", "--checkpoint", f"reid={checkpoint}", *extra])


def test_track_bench_bf16_gives_the_float32_table(videos, tmp_path, capsys):
    folder, checkpoint = videos
    assert _bench(folder, checkpoint, tmp_path / "fp32") == 0
    assert _bench(folder, checkpoint, tmp_path / "bf16", "--amp", "bf16") == 0
    _no_fallback(capsys)
    fp32, bf16 = (json.loads((tmp_path / run / "table.json").read_text()) for run in ("fp32", "bf16"))
    assert fp32["amp"] == "off" and bf16["amp"] == "bf16"
    assert [t["streid"] for t in bf16["trackers"]] == [t["streid"] for t in fp32["trackers"]]
    assert np.array_equal(read_results(tmp_path / "bf16" / "results" / "reid" / "dance.txt"),
                          read_results(tmp_path / "fp32" / "results" / "reid" / "dance.txt"))


def _track_rows(folder, checkpoint, out, *extra):
    assert _track(folder, checkpoint, out / "dance.txt", *extra) == 0
    return read_results(out / "dance.txt")


def _bench_rows(folder, checkpoint, out, *extra):
    assert _bench(folder, checkpoint, out, *extra) == 0
    return read_results(out / "results" / "reid" / "dance.txt")


@pytest.mark.parametrize("tracks", [_track_rows, _bench_rows], ids=["track", "track-bench"])
def test_tracking_falls_back_to_float32_with_one_line(tracks, videos, tmp_path, monkeypatch, capsys):
    folder, checkpoint = videos
    _broken_encoder(monkeypatch)
    fp32 = tracks(folder, checkpoint, tmp_path / "fp32")
    capsys.readouterr()
    bf16 = tracks(folder, checkpoint, tmp_path / "bf16", "--amp", "bf16")
    _fallback_line(capsys, "re-ID embedder")
    assert np.array_equal(bf16, fp32)


# ---------------------------------------------------------------- transfer and transfer-eval


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("amp_transfer")
    checkpoint = make_transfer_checkpoint(folder / "checkpoint.pth.tar")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(folder / "source.png")
    kps = np.stack([np.linspace(2, 13, 17), np.linspace(2, 29, 17)], axis=1).astype(np.float32)
    write_keypoints(folder / "pose.txt", kps, COCO17)
    root = folder / "synthdance"
    generate(root, TINY, workers=1)
    return checkpoint, folder, root


def _transfer(run, out, *extra):
    checkpoint, folder, _ = run
    return main(["transfer", "--checkpoint", str(checkpoint), "--source", str(folder / "source.png"),
                 "--pose", str(folder / "pose.txt"), "--out", str(out), "--device", "cpu", *extra])


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).astype(np.float64)


def test_transfer_bf16_draws_the_float32_image(transfer_run, tmp_path, capsys):
    assert _transfer(transfer_run, tmp_path / "fp32.png") == 0
    assert _transfer(transfer_run, tmp_path / "bf16.png", "--amp", "bf16") == 0
    _no_fallback(capsys)
    fp32, bf16 = _pixels(tmp_path / "fp32.png"), _pixels(tmp_path / "bf16.png")
    assert bf16.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(bf16 - fp32).mean() < 0.05 * 255 and np.linalg.norm(bf16 - fp32) < 0.05 * np.linalg.norm(fp32)
    assert _transfer(transfer_run, tmp_path / "fp16.png", "--amp", "fp16") == 2
    assert "--amp fp16 needs a CUDA device" in capsys.readouterr().err


def test_transfer_falls_back_to_float32_with_one_line(transfer_run, capsys):
    from streid_core.models.pose_transfer import PoseTransfer

    checkpoint, folder, _ = transfer_run
    fp32, bf16 = PoseTransfer(checkpoint), PoseTransfer(checkpoint, amp="bf16")
    broken = BrokenUnderBf16()
    feature_dim = fp32.encoder.feature_dim
    # E stands in for a CPU whose bf16 kernels are wrong: its first batch fails the check
    fp32.encoder = bf16.encoder = lambda x: broken(x).repeat(1, feature_dim // 8 + 1)[:, :feature_dim]
    expected = np.asarray(fp32.render(folder / "source.png", folder / "pose.txt"))
    got = np.asarray(bf16.render(folder / "source.png", folder / "pose.txt"))
    _fallback_line(capsys, "pose transfer E")
    assert bf16.precision.amp == "off" and np.array_equal(got, expected)


def test_transfer_eval_bf16_scores_as_float32(transfer_run, tmp_path, capsys):
    checkpoint, _, root = transfer_run
    for amp in ("off", "bf16"):
        assert main(["transfer-eval", str(checkpoint), "-d", str(root), "--pairs", "8", "--device", "cpu",
                     "--amp", amp, "--out", str(tmp_path / f"{amp}.json")]) == 0
    _no_fallback(capsys)
    fp32, bf16 = (json.loads((tmp_path / f"{amp}.json").read_text()) for amp in ("off", "bf16"))
    assert fp32["amp"] == "off" and bf16["amp"] == "bf16"
    for row in ("generator", "source", "mean"):
        assert bf16["scores"][row]["body_l1"] == pytest.approx(fp32["scores"][row]["body_l1"], rel=0.05, abs=1e-3)
        assert bf16["scores"][row]["ssim"] == pytest.approx(fp32["scores"][row]["ssim"], rel=0.05, abs=1e-3)
    assert bf16["scores"]["source"]["body_l1"] == fp32["scores"]["source"]["body_l1"]  # no network drew these
    assert main(["transfer-eval", str(checkpoint), "-d", str(root), "--amp", "fp16", "--device", "cpu"]) == 2
    assert "--amp fp16 needs a CUDA device" in capsys.readouterr().err


def test_transfer_eval_falls_back_to_float32_with_one_line(transfer_run, capsys):
    from streid_core.evaluation.pose_transfer import evaluate_pose_transfer

    _, _, root = transfer_run
    dataset = load_dataset(root)
    broken = BrokenUnderBf16()
    draw = lambda sources, poses: sources.clone()  # noqa: E731
    fp32 = evaluate_pose_transfer(broken, draw, dataset, (HEIGHT, WIDTH), pairs=6)
    bf16 = evaluate_pose_transfer(broken, draw, dataset, (HEIGHT, WIDTH), pairs=6, amp="bf16")
    _fallback_line(capsys, "transfer-eval E")
    assert bf16.amp == "off" and bf16.scores == fp32.scores
