"""`streid synth` end to end: the DanceReID layout, the loader reading it back, determinism,
atomic output, the CLI and its report."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from _make_synth import TINY, tree_digest
from streid_core.cli import main
from streid_core.data.dataset import load_dataset
from streid_core.data.keypoints import COCO17, read_keypoints
from streid_core.data.synth import generate
from streid_core.data.synth import writer as synth_writer
from streid_core.errors import StreidError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "synthdance"
    generate(out, TINY)
    return out


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_layout_is_dancereid(tiny):
    meta, splits, videos = _json(tiny / "meta.json"), _json(tiny / "splits.json"), _json(tiny / "video.json")
    assert meta["name"] == "SynthDance" and meta["shot"] == "single"
    assert len(meta["identities"]) == TINY.ids
    names = [n for names in meta["identities"] for n in names]
    assert all(meta["identities"][pid] for pid in range(TINY.ids)), "every identity has images"
    assert meta["total_detects"] == sum(meta["n_detects"]) == len(names) == len(list((tiny / "images").iterdir()))
    assert len(meta["n_detects"]) == TINY.videos
    for pid, own in enumerate(meta["identities"]):
        for name in own:
            m = re.fullmatch(r"(\d{4})_(\d{6})\.jpg", name)
            assert m and int(m[1]) == pid and int(m[2]) % TINY.frame_step == 0
            assert (tiny / "images" / name).is_file() and (tiny / "poses" / f"{name[:-4]}.txt").is_file()
    # One split: query = gallery = the test identities, disjoint from trainval, all pids covered.
    assert len(splits) == 1 and splits[0]["query"] == splits[0]["gallery"]
    train, test = set(splits[0]["trainval"]), set(splits[0]["query"])
    assert train and test and not train & test and train | test == set(range(TINY.ids))
    # Videos: 3-8 dancers, whole videos on one side of the split, pids numbered video by video.
    assert len(videos) == TINY.videos
    assert sorted(p for pids in videos.values() for p in pids) == list(range(TINY.ids))
    for pids in videos.values():
        assert 3 <= len(pids) <= 8 and pids == list(range(pids[0], pids[0] + len(pids)))
        assert set(pids) <= train or set(pids) <= test
    with Image.open(tiny / "images" / names[0]) as im:
        assert im.size == (TINY.width, TINY.height) and im.format == "JPEG"
    params = _json(tiny / "synth.json")["params"]
    assert params["seed"] == TINY.seed and params["ids"] == TINY.ids and params["height"] == TINY.height


def test_poses_are_coco17_inside_the_crop(tiny):
    kps = np.stack([read_keypoints(p, COCO17) for p in sorted((tiny / "poses").glob("*.txt"))])
    assert kps.shape[1:] == (17, 2)
    ok = np.isfinite(kps)
    assert ok.mean() > 0.8, "most joints are found"
    assert (~ok).any(), "some joints are missing (outside the crop, hidden, or a face turned away)"
    assert (kps[ok[..., 0], 0] >= 0).all() and (kps[ok[..., 0], 0] < TINY.width).all()
    assert (kps[ok[..., 1], 1] >= 0).all() and (kps[ok[..., 1], 1] < TINY.height).all()
    # Anatomy in image coordinates: the nose sits above the hips, which sit above the ankles.
    both = ok[:, [0, 11, 12, 15, 16], 1].all(axis=1)
    nose, hips, ankles = kps[both, 0, 1], kps[both][:, [11, 12], 1].mean(1), kps[both][:, [15, 16], 1].mean(1)
    assert np.mean(nose < hips) > 0.9 and np.mean(hips < ankles) > 0.9


def test_loader_reads_the_output(tiny):
    meta, splits, videos = _json(tiny / "meta.json"), _json(tiny / "splits.json"), _json(tiny / "video.json")
    ds = load_dataset(tiny)
    assert ds.protocol == "dancereid" and ds.keypoints == "coco17"
    assert {r.pid for r in ds.trainval} == set(splits[0]["trainval"])
    assert {r.pid for r in ds.query} == {r.pid for r in ds.gallery} == set(splits[0]["query"])
    assert len(ds.trainval) + len(ds.query) == meta["total_detects"]
    assert ds.videos == videos
    video_of = {p: k for k, pids in videos.items() for p in pids}
    for r in ds.trainval + ds.query:
        assert r.camid == r.frame and r.video == video_of[r.pid] and r.pose_path


def test_same_seed_same_bytes_with_any_number_of_workers(tmp_path):
    small = replace(TINY, ids=9, videos=3, frames=5)
    generate(tmp_path / "a", small, workers=1)
    generate(tmp_path / "b", small, workers=2)
    generate(tmp_path / "c", replace(small, seed=small.seed + 1))
    a = tree_digest(tmp_path / "a")
    assert a == tree_digest(tmp_path / "b")
    c = tree_digest(tmp_path / "c")
    images = [k for k in a if k.startswith("images")]
    assert sum(a[k] != c.get(k) for k in images) > len(images) // 2, "another seed draws another dataset"


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "synthdance"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    small = replace(TINY, ids=6, videos=2, frames=4)
    with pytest.raises(StreidError, match="--overwrite"):
        generate(out, small)
    assert (out / "mine.txt").read_text() == "keep me"
    generate(out, small, overwrite=True)
    assert not (out / "mine.txt").exists() and (out / "meta.json").is_file()


def test_a_crash_leaves_nothing_behind(tmp_path, monkeypatch):
    real = synth_writer.render_video
    calls = []

    def crash_on_second_video(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args)

    monkeypatch.setattr(synth_writer, "render_video", crash_on_second_video)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(tmp_path / "synthdance", replace(TINY, ids=6, videos=2, frames=4))
    assert list(tmp_path.iterdir()) == []  # neither the dataset nor its temporary folder


def test_cli_writes_dataset_and_report(tiny, tmp_path, capsys):
    out, report = tmp_path / "data" / "synthdance", tmp_path / "report"
    code = main(["synth", "--out", str(out), "--report-dir", str(report), "--seed", "3", "--height", "64",
                 "--width", "32", "--ids", "14", "--videos", "4", "--frames", "8", "--workers", "1"])
    assert code == 0
    assert tree_digest(out) == tree_digest(tiny)  # the CLI and the API write the same dataset
    summary = _json(report / "summary.json")
    meta = _json(out / "meta.json")
    counts = summary["counts"]
    assert counts["ids"] == 14 and counts["videos"] == 4 and counts["images"] == meta["total_detects"]
    assert counts["trainval"]["images"] + counts["test"]["images"] == counts["images"]
    assert counts["trainval"]["ids"] + counts["test"]["ids"] == 14
    baseline = summary["color_baseline"]
    assert baseline["protocol"] == "dancereid" and 0 <= baseline["rank1"] <= 1 and 0 <= baseline["mAP"] <= 1
    with Image.open(report / "samples.png") as im:
        assert im.format == "PNG" and im.size[0] > 300
    printed = capsys.readouterr().out
    assert "colour-histogram baseline" in printed and str(out) in printed
    # A second run without --overwrite is refused with one line, exit code 2.
    assert main(["synth", "--out", str(out), "--no-report", "--ids", "14", "--videos", "4"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ids", "40", "--videos", "4"], "--ids 40"),
        (["--ids", "10", "--videos", "4"], "--ids 10"),
        (["--videos", "1", "--ids", "5"], "--videos 1"),
        (["--height", "16"], "--height 16"),
        (["--frames", "2"], "--frames 2"),
    ],
)
def test_cli_rejects_impossible_parameters(tmp_path, capsys, args, message):
    assert main(["synth", "--out", str(tmp_path / "x"), "--no-report", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_distant_frames_are_harder_positives():
    """Light, zoom, place and neighbours drift over a video, so a dancer 150+ raw frames later
    looks much less like itself than 5 frames later (what sparse-temporal sampling exploits)."""
    from streid_core.evaluation.color_baseline import color_descriptor
    from streid_core.data.synth.appearance import sample_appearance
    from streid_core.data.synth.scene import Dancer, VideoScene

    rng = np.random.default_rng(0)
    scene = VideoScene(rng, [Dancer(p, sample_appearance(rng)) for p in range(3)], list(range(0, 300, 5)), (64, 32))
    dets = list(scene.detections())
    desc = {(d.pid, d.frame): color_descriptor(d.image) for d in dets}
    near = [((desc[a] - desc[b]) ** 2).sum() for a in desc for b in desc if a[0] == b[0] and b[1] - a[1] == 5]
    far = [((desc[a] - desc[b]) ** 2).sum() for a in desc for b in desc if a[0] == b[0] and b[1] - a[1] >= 150]
    assert near and far and np.mean(far) > 2 * np.mean(near)
