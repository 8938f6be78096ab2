"""`streid synth-video`: dance videos in the MOTChallenge layout, their ground truth (boxes,
identities, visibility from the owner map), the simulated detector, exits, and determinism."""
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from streid_core.cli import main
from streid_core.data.synth import SynthConfig
from streid_core.data.synth.formation import Formation
from streid_core.data.synth.plan import plan_dataset
from streid_core.data.synth.smooth import SmoothCurve
from streid_core.data.synth_video import IDENTITY_BASE, DetectorNoise, VideoConfig, exit_spans, generate_videos
from streid_core.data.synth_video.detector import detect
from streid_core.data.synth_video.sequence import DanceSequence, FrameTruth
from streid_core.tracking.mot_eval import score_sequence
from streid_core.data.formats.mot import find_sequences, read_detections, read_ground_truth, read_seqinfo
from streid_core.tracking.tracker import Tracker, run_sequence

TINY = VideoConfig(seed=5, sequences=2, frames=12, width=160, height=96, min_dancers=3, max_dancers=4)


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_is_motchallenge_and_bytes_do_not_depend_on_workers(tmp_path):
    one = generate_videos(tmp_path / "one", TINY, workers=1)
    generate_videos(tmp_path / "two", TINY, workers=2)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")

    sequences = find_sequences(tmp_path / "one")
    assert [s.name for s in sequences] == ["synthdance-01", "synthdance-02"]
    meta = json.loads((tmp_path / "one" / "synth_video.json").read_text())
    identities = []
    for seq, seq_meta, result in zip(sequences, meta["sequences"], one.sequences):
        folder = tmp_path / "one" / seq.name
        info = read_seqinfo(folder / "seqinfo.ini")
        assert (info.seq_length, info.im_width, info.im_height, info.frame_rate) == (12, 160, 96, 15.0)
        frames = sorted((folder / "img1").iterdir())
        assert [f.name for f in frames] == [f"{n:06d}.jpg" for n in range(1, 13)]
        assert Image.open(frames[0]).size == (160, 96)
        gt = read_ground_truth(folder / "gt" / "gt.txt")
        n = len(seq_meta["dancers"])
        assert 3 <= n <= 4 and set(gt[:, 1].astype(int)) <= set(range(1, n + 1))
        assert np.all((gt[:, 8] >= 0) & (gt[:, 8] <= 1)) and np.all(gt[:, 6:8] == 1)
        # Boxes stay inside the frame, and every frame holds most of the group.
        assert np.all(gt[:, 2] >= 0) and np.all(gt[:, 2] + gt[:, 4] <= 160) and np.all(gt[:, 3] + gt[:, 5] <= 96)
        assert len(gt) >= 12 * (n - 1)
        detections = read_detections(folder / "det" / "det.txt")
        assert sum(len(b) for b, _ in detections.values()) == seq_meta["statistics"]["detections"]
        assert seq_meta["statistics"]["gt_boxes"] == len(gt) == sum(len(t.ids) for t in result.truth)
        identities += [d["identity"] for d in seq_meta["dancers"]]
    # Video identities are numbered above any `streid synth` pid (0..9999), never twice.
    assert min(identities) == IDENTITY_BASE and len(set(identities)) == len(identities)


def test_detector_noise_leaves_frames_and_ground_truth_alone(tmp_path):
    config = replace(TINY, sequences=1, frames=6)
    generate_videos(tmp_path / "a", config)
    generate_videos(tmp_path / "b", replace(config, detector=DetectorNoise(box_noise=0.2, miss_rate=0.3, fp_rate=1.0)))
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    for name in a:
        if name.parts[-1] in ("det.txt", "synth_video.json"):
            continue
        assert a[name] == b[name], name
    det = [n for n in a if n.parts[-1] == "det.txt"][0]
    assert a[det] != b[det]


def _two_dancers(dx: float) -> FrameTruth:
    """Dancer 2 stands 1 m behind dancer 1, shifted sideways by dx metres, nobody moving."""
    sequence = DanceSequence(VideoConfig(seed=2, sequences=1, frames=2, width=320, height=180, min_dancers=2,
                                         max_dancers=2, exits_per_100_frames=0), 0)
    sequence.formation = Formation(starts=np.array([0.0]), slots=np.array([[[0.0, 0.0], [dx, 1.0]]]),
                                   transition=1.0, sway=SmoothCurve(spacing=1.0, values=np.zeros((3, 4))))
    _, truth = next(sequence.render([1]))
    return truth


def test_visibility_comes_from_the_owner_map_and_boxes_are_whole_bodies():
    hidden, apart = _two_dancers(0.0), _two_dancers(1.5)
    assert list(hidden.ids) == list(apart.ids) == [1, 2]
    # Side by side both are fully seen; straight behind the front dancer, the back one mostly is not.
    assert np.all(apart.visibility > 0.95)
    assert hidden.visibility[0] > 0.95 and hidden.visibility[1] < 0.6
    # The hidden dancer's box is its whole silhouette, the same size as when nothing covers it.
    np.testing.assert_allclose(hidden.boxes[1, 2:], apart.boxes[1, 2:], atol=2)


def test_exits_take_dancers_out_of_the_frame_and_back(tmp_path):
    config = VideoConfig(seed=1, sequences=1, frames=150, width=128, height=72, min_dancers=3, max_dancers=3,
                         exits_per_100_frames=6.0, min_exit_gap=10, max_exit_gap=20)
    generate_videos(tmp_path / "v", config)
    meta = json.loads((tmp_path / "v" / "synth_video.json").read_text())["sequences"][0]
    gt = read_ground_truth(tmp_path / "v" / "synthdance-01" / "gt" / "gt.txt")
    frames_of = {i: set(gt[gt[:, 1] == i, 0].astype(int)) for i in (1, 2, 3)}
    complete = [e for e in meta["exits"] if e["in_place_at"] is not None]
    assert complete, "expected at least one exit and re-entry in 150 frames at this rate"
    for e in complete:
        away = set(range(e["gone_from"], e["walks_back_at"]))
        assert len(away) >= 10 and not away & frames_of[e["gt_id"]]
        assert e["in_place_at"] in frames_of[e["gt_id"]]
    spans = exit_spans(tmp_path / "v")["synthdance-01"]
    assert all((e["gone_from"], e["walks_back_at"] - 1) in spans for e in complete)


def test_detector_follows_its_noise_model():
    truth = FrameTruth(1, np.array([1, 2, 3]), np.array([[10, 20, 30, 80], [60, 20, 30, 80], [100, 20, 30, 80.0]]),
                       np.array([1.0, 0.5, 0.1]))
    exact = detect(np.random.default_rng(0), truth, (200, 120), DetectorNoise(0.0, 0.0, 0.0, min_visibility=0.3))
    # Perfect boxes for the two visible dancers; the one 10 % visible is never found.
    assert list(exact.sources) == [1, 2]
    np.testing.assert_allclose(exact.boxes, truth.boxes[:2])
    assert exact.confidences[0] > exact.confidences[1]

    one = FrameTruth(1, np.array([1]), np.array([[50, 20, 40, 80.0]]), np.array([1.0]))
    rng, noise = np.random.default_rng(1), DetectorNoise(box_noise=0.1, miss_rate=0.2, fp_rate=0.5)
    runs = [detect(rng, one, (200, 120), noise) for _ in range(3000)]
    found = [r.boxes[r.sources == 1] for r in runs if np.any(r.sources == 1)]
    false = np.array([np.sum(r.sources == -1) for r in runs])
    assert 1 - len(found) / len(runs) == pytest.approx(0.2, abs=0.025)
    assert false.mean() == pytest.approx(0.5, abs=0.05)
    # Left edges move by 10 % of the width (4 px); the clip at x = 0 is far away.
    assert np.std([b[0, 0] - 50 for b in found]) == pytest.approx(4.0, rel=0.08)
    boxes = np.concatenate([r.boxes for r in runs])
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 0] + boxes[:, 2] <= 200 + 1e-9)


def test_video_dancers_are_not_training_identities():
    seed = 0
    training = {look for video in plan_dataset(SynthConfig(seed=seed)).videos for look in video.looks}
    dancers = [look for i in range(3) for look in DanceSequence(VideoConfig(seed=seed), i).looks]
    assert not training & set(dancers)


def test_bad_values_and_existing_folders_are_one_line_errors(tmp_path, capsys):
    assert main(["synth-video", "--out", str(tmp_path / "v"), "--frames", "1"]) == 2
    assert "--frames 1" in capsys.readouterr().err
    assert main(["synth-video", "--out", str(tmp_path / "v"), "--miss-rate", "1.5"]) == 2
    assert "--miss-rate 1.5" in capsys.readouterr().err
    (tmp_path / "v").mkdir()
    assert main(["synth-video", "--out", str(tmp_path / "v"), "--frames", "3"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_motion_alone_loses_identities_on_a_default_sequence():
    """Without ID switches for motion-only tracking, appearance would have nothing to fix."""
    config = VideoConfig()
    sequence = DanceSequence(config, 0)
    truths = [truth for _, truth in sequence.render()]
    rng = np.random.default_rng(0)
    detections = [detect(rng, t, (config.width, config.height), config.detector) for t in truths]
    rows = run_sequence(Tracker(), ((d.frame, None, d.boxes, d.confidences) for d in detections))
    gt = np.array([[t.frame, i, *b, 1, 1, v] for t in truths for i, b, v in zip(t.ids, t.boxes, t.visibility)])
    scores = score_sequence(gt, rows, config.frames).as_dict()
    assert scores["MOTA"] > 0.6 and scores["IDSW"] >= 3
