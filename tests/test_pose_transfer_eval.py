"""Pose transfer measured against the truth (evaluation/pose_transfer.py, `streid transfer-eval`):
hand-computed measures, the pair sampling, oracle drawings whose scores are known, the command."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from _make_checkpoint import make_checkpoint
from _make_streid_batch import HEIGHT, WIDTH, one_thread
from _make_synth import TINY
from _make_transfer_checkpoint import make_transfer_checkpoint
from streid_core.cli import main
from streid_core.data import load_dataset
from streid_core.data.synth import generate
from streid_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from streid_core.errors import StreidError
from streid_core.evaluation.pose_transfer import (
    METRICS,
    GeneratorDraw,
    _nearest_hits,
    body_l1,
    closer_score,
    evaluate_pose_transfer,
    load_test_frames,
    mean_image,
    normalise,
    pose_distance,
    records_to_draw,
    reference_mean_image,
    sample_pairs,
)

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
SIZE = (HEIGHT, WIDTH)  # 64x32: the tiny set's crop size and the tiny checkpoint's canvas


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("pte") / "synthdance"
    generate(root, TINY, workers=1)
    dataset = load_dataset(root)
    records = list(dict.fromkeys([*dataset.query, *dataset.gallery]))
    return dataset, load_test_frames(records, HEIGHT, WIDTH, dataset.keypoints)


def colour_embed(images: torch.Tensor) -> torch.Tensor:
    """A cheap stand-in for E: the mean colour of the upper and lower half."""
    h = images.shape[2] // 2
    return torch.cat([images[:, :, :h].mean(dim=(2, 3)), images[:, :, h:].mean(dim=(2, 3))], dim=1)


# ---------------------------------------------------------------- the measures, by hand


def test_body_l1_on_a_two_by_two_mask():
    real = torch.zeros(1, 3, 2, 2)
    drawn = torch.zeros(1, 3, 2, 2)
    drawn[0, :, 0, 0] = torch.tensor([0.2, 0.4, 0.6])  # inside the mask: |d| = 0.2, 0.4, 0.6
    drawn[0, :, 1, 1] = 1.0  # inside: 1, 1, 1
    drawn[0, :, 0, 1] = 0.9  # outside the mask: ignored
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # (0.2 + 0.4 + 0.6 + 3 * 1.0) / (3 channels * 2 pixels) = 4.2 / 6 = 0.7
    assert body_l1(drawn, real, mask).item() == pytest.approx(0.7)
    with pytest.raises(StreidError, match="empty body mask"):
        body_l1(drawn, real, torch.zeros_like(mask))


def test_closer_counts_ties_as_half():
    closer = torch.tensor([0.1, 0.3, 0.2, 0.2])
    farther = torch.tensor([0.2, 0.1, 0.2, 0.2 + 1e-12])
    assert closer_score(closer, farther).tolist() == [1.0, 0.0, 0.5, 0.5]


def test_pose_distance_is_mean_joint_distance_over_mean_body_height():
    a = np.array([[0.0, 0.0], [0.0, 10.0], [5.0, 5.0]])  # height 10
    b = np.array([[3.0, 4.0], [0.0, 20.0], [np.nan, np.nan]])  # height 16; joint 2 missing
    # joints 0 and 1: distances 5 and 10, mean 7.5; mean height (10 + 16) / 2 = 13
    assert pose_distance(a, b) == pytest.approx(7.5 / 13)
    assert pose_distance(a, np.full((3, 2), np.nan)) == float("inf")


def test_rank1_hit_and_chance_by_hand():
    gallery = torch.tensor([[0.0], [1.0], [5.0], [6.0]])
    g_pids = np.array([1, 2, 1, 3])
    query = torch.tensor([[0.9], [0.9]])
    allowed = np.array([[True, True, True, True], [True, False, True, True]])
    hits, chance = _nearest_hits(query, gallery, g_pids, allowed, np.array([1, 1]))
    # query 0: nearest is gallery 1 (pid 2) -> miss; query 1: gallery 1 removed, nearest gallery 0 -> hit
    assert hits.tolist() == [0.0, 1.0]
    assert chance.tolist() == [pytest.approx(2 / 4), pytest.approx(2 / 3)]


# ---------------------------------------------------------------- pairs


def test_pairs_are_one_dancer_in_one_video_with_u_farthest_and_o_a_co_dancer(synth):
    dataset, frames = synth
    recs, kps = frames.records, frames.keypoints
    pairs = sample_pairs(frames, 40, seed=5, min_pose_distance=0.05)
    assert len(pairs) == 40 and len({(p.source, p.target) for p in pairs}) == 40
    for p in pairs:
        s, t, u, o = recs[p.source], recs[p.target], recs[p.other_pose], recs[p.other_dancer]
        assert s.pid == t.pid == u.pid and s.video == t.video == u.video and p.source != p.target
        assert p.pose_change == pytest.approx(pose_distance(kps[p.source], kps[p.target])) and p.pose_change >= 0.05
        mine = [i for i, r in enumerate(recs) if r.pid == t.pid and i not in (p.source, p.target)]
        assert p.other_pose in mine
        assert p.other_pose_change == pytest.approx(max(pose_distance(kps[p.target], kps[i]) for i in mine))
        assert o.pid != s.pid and o.video == s.video and not p.other_video
        assert o.frame == s.frame  # every dancer of a synth video has the same sampled frames
    assert sample_pairs(frames, 40, seed=5) == sample_pairs(frames, 40, seed=5)
    assert sample_pairs(frames, 40, seed=6) != pairs
    assert len(sample_pairs(frames, 100_000, seed=0)) < 100_000  # capped at the candidates


def test_a_video_with_one_test_dancer_takes_o_from_another_video(synth):
    dataset, _ = synth
    keep = [r for r in dataset.query if r.video != dataset.query[-1].video or r.pid == dataset.query[-1].pid]
    alone = dataset.query[-1].pid
    records = list(dict.fromkeys(keep))
    frames = load_test_frames(records, HEIGHT, WIDTH, dataset.keypoints)
    pairs = sample_pairs(frames, 60, seed=0)
    lonely = [p for p in pairs if records[p.target].pid == alone]
    assert lonely and all(p.other_video and records[p.other_dancer].pid != alone for p in lonely)
    assert not any(p.other_video for p in pairs if records[p.target].pid != alone)


def test_impossible_requests_are_one_line_errors(synth):
    _, frames = synth
    with pytest.raises(StreidError, match="--pairs 0"):
        sample_pairs(frames, 0, seed=0)
    with pytest.raises(StreidError, match="min-pose-distance"):
        sample_pairs(frames, 4, seed=0, min_pose_distance=50.0)


# ---------------------------------------------------------------- oracle drawings


def truth_oracle(frames):
    """draw(s, pose p) = the real frame of s's dancer with pose p, looked up by the pixels of the
    source and the heat-maps of the pose; for another dancer's pose (G(o, pose t)), o's frame
    with the frame number of the pose's frame."""
    dancer_of = {frames.images([i])[0].numpy().tobytes(): frames.records[i].pid for i in range(len(frames.records))}
    frames_of_pose: dict[bytes, list[int]] = {}
    for i in range(len(frames.records)):
        frames_of_pose.setdefault(frames.poses([i])[0].numpy().tobytes(), []).append(i)
    calls = []

    def draw(sources, poses):
        calls.append(len(sources))
        out = []
        for source, pose in zip(sources, poses):
            pid = dancer_of[source.numpy().tobytes()]
            owners = frames_of_pose[pose.numpy().tobytes()]
            own = [i for i in owners if frames.records[i].pid == pid]
            if not own:
                frame = frames.records[owners[0]].frame
                own = [min((i for i, r in enumerate(frames.records) if r.pid == pid),
                           key=lambda i: abs(frames.records[i].frame - frame))]
            out.append(frames.images([own[0]])[0])
        return torch.stack(out)

    draw.calls = calls
    return draw


def test_the_true_frame_scores_perfectly(synth):
    dataset, frames = synth
    draw = truth_oracle(frames)
    report = evaluate_pose_transfer(colour_embed, draw, dataset, SIZE, pairs=24, seed=1, batch_size=16)
    g = report.scores["generator"]
    assert g["body_l1"] == 0.0 and g["ssim"] == pytest.approx(1.0) and g["ssim_body"] == pytest.approx(1.0)
    assert g["pose_accuracy"] == 1.0 and g["identity_accuracy"] == 1.0
    assert draw.calls == [16, 16, 16, 16, 8]  # 3 x 24 drawings, in batches of 16
    assert report.pairs == 24 and report.seed == 1 and report.other_video_pairs == 0
    # the references are worse than the truth
    assert report.scores["source"]["body_l1"] > 0 and report.scores["mean"]["body_l1"] > 0
    for row in report.scores.values():
        assert all(0.0 <= row[m] <= 1.0 for m in METRICS if m not in ("ssim", "ssim_body"))


def test_a_drawing_that_ignores_the_pose_is_at_chance_and_equals_the_source_reference(synth):
    dataset, frames = synth
    report = evaluate_pose_transfer(colour_embed, lambda sources, poses: sources.clone(), dataset, SIZE,
                                    pairs=24, seed=2)
    assert report.scores["generator"]["pose_accuracy"] == 0.5  # every comparison a tie
    assert report.scores["generator"] == report.scores["source"]
    assert report.scores["source"]["pose_accuracy"] == 0.5


def test_a_drawing_that_ignores_identity_scores_half(synth):
    dataset, frames = synth
    mean = mean_image(dataset.trainval, HEIGHT, WIDTH)
    report = evaluate_pose_transfer(colour_embed, lambda sources, poses: mean.expand(len(sources), -1, -1, -1),
                                    dataset, SIZE, pairs=24, seed=3)
    g = report.scores["generator"]
    assert g["identity_accuracy"] == 0.5 and g["pose_accuracy"] == 0.5
    assert g == report.scores["mean"]
    assert report.mean_image_from == f"{len(dataset.trainval)} training images"


def test_without_training_images_the_mean_is_the_test_images(synth):
    dataset, frames = synth
    test_only = dataclasses.replace(dataset, train=[], val=[], trainval=[])
    test_mean = frames.images().double().mean(dim=0).float()
    report = evaluate_pose_transfer(colour_embed, lambda s, p: test_mean.expand(len(s), -1, -1, -1), test_only, SIZE,
                                    pairs=8, seed=0)
    assert report.mean_image_from == f"{len(frames.records)} test images (no training images)"
    g, ref = report.scores["generator"], report.scores["mean"]
    assert g["body_l1"] == pytest.approx(ref["body_l1"], abs=1e-6)


def test_rank1_gallery_drops_the_frames_of_s_and_t(synth):
    """E = a one-hot code of the frame: a copy of s is at distance 0 from s and sqrt(2) from every
    other frame. With s's and t's frame numbers removed (DanceReID's camera slot), all are tied and
    the first remaining gallery image (gallery order) decides the hit."""
    dataset, frames = synth
    index = {frames.pixels[i].numpy().tobytes(): i for i in range(len(frames.records))}
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def one_hot(normalised):
        pixels = ((normalised * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)
        codes = torch.zeros(len(pixels), len(frames.records))
        for row, image in enumerate(pixels):
            if image.numpy().tobytes() in index:
                codes[row, index[image.numpy().tobytes()]] = 1.0
        return codes

    assert one_hot(normalise(frames.images([3, 5]))).argmax(dim=1).tolist() == [3, 5]  # the code works
    report = evaluate_pose_transfer(one_hot, lambda s, p: s.clone(), dataset, SIZE, pairs=20, seed=7)
    gallery = dataset.gallery
    for row in report.per_pair:
        s = next(r for r in frames.records if r.path == row["source_image"])
        t = next(r for r in frames.records if r.path == row["target_image"])
        first = next(g for g in gallery if g.camid not in (s.camid, t.camid))
        assert row["source"]["rank1"] == float(first.pid == t.pid)
    assert report.scores["source"]["rank1"] < 1.0  # s itself would give 1.0


def test_table_and_json_carry_every_row(synth):
    dataset, _ = synth
    report = evaluate_pose_transfer(colour_embed, lambda s, p: s.clone(), dataset, SIZE, pairs=6, seed=0)
    table = report.format()
    for label in ("G(s, pose t)", "source s unchanged", "mean image", "chance", "6 pairs"):
        assert label in table
    data = json.loads(json.dumps(report.to_dict()))
    assert data["pairs"] == 6 and data["seed"] == 0 and set(data["scores"]) == {"generator", "source", "mean"}
    assert len(data["per_pair"]) == 6 and data["per_pair"][0]["generator"]["body_l1"] >= 0


# ---------------------------------------------------------------- the command


def test_transfer_eval_command_on_a_tiny_checkpoint(synth, tmp_path, capsys):
    dataset, _ = synth
    checkpoint = make_transfer_checkpoint(tmp_path / "run" / "checkpoint.pth.tar")
    out, figure = tmp_path / "out" / "metrics.json", tmp_path / "out" / "grid.png"
    code = main(["transfer-eval", str(checkpoint), "--dataset", str(dataset.root), "--pairs", "12", "--seed", "4",
                 "--out", str(out), "--figure", str(figure), "--figure-rows", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| G(s, pose t) |" in printed and "12 pairs" in printed
    data = json.loads(out.read_text())
    assert data["pairs"] == 12 and data["seed"] == 4 and data["checkpoint"] == str(checkpoint)
    for row in data["scores"].values():
        assert 0.0 <= row["body_l1"] <= 1.0 and 0.0 <= row["pose_accuracy"] <= 1.0 and 0.0 <= row["rank1"] <= 1.0
    from PIL import Image

    with Image.open(figure) as grid:
        assert grid.width > 5 * WIDTH and grid.height > 3 * HEIGHT
    assert not list(out.parent.glob(".*.tmp"))


def test_transfer_eval_refuses_a_checkpoint_without_g(synth, tmp_path, capsys):
    dataset, _ = synth
    baseline = make_checkpoint(tmp_path / "baseline.pth.tar")
    code = main(["transfer-eval", str(baseline), "--dataset", str(dataset.root)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "holds no ST-ReIDNet generator" in err
    assert main(["transfer-eval", str(baseline), "--dataset", str(dataset.root), "--pairs", "0"]) == 2


def test_identities_train_draws_the_training_dancers_only(synth, tmp_path):
    """--identities train: every pair's dancer is a training identity, and the frames are the
    training frames; the default draws test dancers only."""
    dataset, _ = synth
    checkpoint = make_transfer_checkpoint(tmp_path / "run" / "checkpoint.pth.tar")
    train_pids = {r.pid for r in (dataset.train or dataset.trainval)}
    test_pids = {r.pid for r in [*dataset.query, *dataset.gallery]}
    assert train_pids and not train_pids & test_pids
    for identities, pids in (("train", train_pids), ("test", test_pids)):
        out = tmp_path / f"{identities}.json"
        assert main(["transfer-eval", str(checkpoint), "--dataset", str(dataset.root), "--pairs", "8",
                     "--identities", identities, "--out", str(out)]) == 0
        data = json.loads(out.read_text())
        assert data["identities"] == identities
        assert data["drawn_from"] == {"train": "training", "test": "test"}[identities]
        assert {row["pid"] for row in data["per_pair"]} <= pids


def test_preloaded_frames_and_mean_score_as_loading_them_does(synth):
    """What the training hook passes once loaded gives the same report; frames of other images
    are refused."""
    dataset, frames = synth
    oracle = truth_oracle(frames)
    loaded = evaluate_pose_transfer(colour_embed, oracle, dataset, SIZE, pairs=10, seed=2)
    mean, _ = reference_mean_image(dataset, *SIZE)
    given = evaluate_pose_transfer(colour_embed, oracle, dataset, SIZE, pairs=10, seed=2, frames=frames, mean=mean)
    assert given.scores == loaded.scores and given.per_pair == loaded.per_pair
    fewer = load_test_frames(records_to_draw(dataset)[:-1], HEIGHT, WIDTH, dataset.keypoints)
    with pytest.raises(ValueError, match="not this dataset's test images"):
        evaluate_pose_transfer(colour_embed, oracle, dataset, SIZE, pairs=10, frames=fewer)


def test_a_g_reading_the_source_limbs_is_scored_with_each_source_under_its_own_pose(synth, tmp_path):
    from streid_core.models.pose_transfer import PoseTransfer

    dataset, frames = synth
    path = make_transfer_checkpoint(tmp_path / "checkpoint.pth.tar", connect_layers=5, paint_limbs=True,
                                    paint_from="source-limbs")
    model = PoseTransfer(path)
    report = evaluate_pose_transfer(model.encoder, GeneratorDraw(model.encoder, model.generator), dataset, SIZE,
                                    pairs=6, seed=1, examples=2)
    records = records_to_draw(dataset)
    for k in range(2):  # G(s, pose t) of the report is what PoseTransfer draws from s's image and keypoints
        pair = report.per_pair[k]
        s, t = (records.index(next(r for r in records if r.path == pair[key])) for key in ("source_image", "target_image"))
        source = Image.fromarray(frames.pixels[s].permute(1, 2, 0).numpy())
        expected = model.render(source, frames.keypoints[t], source_keypoints=frames.keypoints[s])
        drawn = (report.examples[k, 2].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.abs(drawn.astype(int) - np.asarray(expected).astype(int)).max() <= 1
