"""A short synthetic dance video tracked end to end, as a user runs it: `streid synth-video`,
`streid track` by motion alone and with two re-ID checkpoints (randomly initialised ResNet-18
encoders), `streid track-eval`, then `streid track-bench`, which must give the same table."""
import json

import numpy as np
import pytest
from _make_checkpoint import make_checkpoint
from PIL import Image

from streid_core.cli import main
from streid_core.data.formats.mot import read_ground_truth, read_results
from streid_core.viz.tracks import tracks_gif

SEQ = "synthdance-01"
FRAMES = 24


def _track(root, checkpoint, name):
    seq = root / "videos" / SEQ
    out = root / "results" / name / f"{SEQ}.txt"
    assert main(["track", "--frames", str(seq / "img1"), "--dets", str(seq / "det" / "det.txt"),
                 "--seqinfo", str(seq / "seqinfo.ini"), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    # Low-noise detections: the tracker should then recover most ground-truth boxes.
    assert main(["synth-video", "--out", str(root / "videos"), "--sequences", "1", "--frames", str(FRAMES),
                 "--width", "192", "--height", "108", "--min-dancers", "3", "--max-dancers", "3",
                 "--det-noise", "0.02", "--miss-rate", "0", "--fp-rate", "0", "--workers", "1"]) == 0
    checkpoints = {name: make_checkpoint(root / f"{name}.pth.tar", arch="resnet18", height=64, width=32, seed=seed)
                   for seed, name in enumerate(("baseline", "st-reidnet"))}
    runs = {"motion-only": _track(root, "none", "motion-only")}
    runs.update({name: _track(root, path, name) for name, path in checkpoints.items()})
    assert main(["track-eval", "--gt-root", str(root / "videos"), "--out", str(root / "table.json"), "--results",
                 *(f"{name}={path.parent}" for name, path in runs.items())]) == 0
    return root, checkpoints


def test_track_and_track_eval_give_the_three_column_table(workspace):
    root, _ = workspace
    table = json.loads((root / "table.json").read_text())
    assert [t["name"] for t in table["trackers"]] == ["motion-only", "baseline", "st-reidnet"]
    markdown = (root / "table.md").read_text()
    for tracker in table["trackers"]:
        ours, theirs = tracker["streid"], tracker["trackeval"]
        assert tracker["disagreements"] == []
        for key in ("IDF1", "MOTA"):
            assert 0.0 <= ours[key] <= 1.0
        assert 0.0 <= theirs["HOTA"] <= 1.0 and isinstance(ours["IDSW"], int) and ours["IDSW"] >= 0
        assert f"| {tracker['name']} |" in markdown
    motion = table["trackers"][0]["streid"]
    gt_boxes = len(read_ground_truth(root / "videos" / SEQ / "gt" / "gt.txt"))
    # Three dancers in 24 frames, clean detections: only the frames before a track is confirmed
    # (n_init = 3) and dancers hidden from the detector are lost.
    assert motion["GT"] == gt_boxes and motion["MOTA"] > 0.75 and motion["TP"] > 0.8 * gt_boxes


def test_track_bench_matches_track_and_track_eval(workspace):
    root, checkpoints = workspace
    # One checkpoint is enough to show that the bench tracks and scores as the separate commands do.
    assert main(["track-bench", "--videos", str(root / "videos"), "--out", str(root / "bench"), "--device", "cpu",
                 "--checkpoint", f"st-reidnet={checkpoints['st-reidnet']}"]) == 0
    bench = json.loads((root / "bench" / "table.json").read_text())
    separate = {t["name"]: t for t in json.loads((root / "table.json").read_text())["trackers"]}
    assert [t["name"] for t in bench["trackers"]] == ["motion-only", "st-reidnet"]
    for ours in bench["trackers"]:
        theirs = separate[ours["name"]]
        assert ours["streid"] == theirs["streid"] and ours["trackeval"] == theirs["trackeval"]
        # Same tracker, same detections, same encoder: the same boxes as `streid track` wrote.
        np.testing.assert_array_equal(read_results(root / "bench" / "results" / ours["name"] / f"{SEQ}.txt"),
                                      read_results(root / "results" / ours["name"] / f"{SEQ}.txt"))
        # Every counted ID switch is listed with where it happened.
        events = ours["id_switches"][SEQ]
        assert len(events) == ours["streid"]["IDSW"]
        assert all(1 <= e["frame"] <= FRAMES and e["previous_track"] != e["track"] for e in events)
    assert bench["trackers"][1]["checkpoint"] == str(checkpoints["st-reidnet"])
    assert "| st-reidnet |" in (root / "bench" / "table.md").read_text()


def test_tracks_gif_has_a_frame_per_video_frame(workspace, tmp_path):
    root, _ = workspace
    results = read_results(root / "results" / "motion-only" / f"{SEQ}.txt")
    switch = [{"frame": 5, "gt_id": 1, "previous_track": 1, "track": 2}]
    gif = tracks_gif(root / "videos" / SEQ / "img1", results, tmp_path / "tracks.gif", switches=switch, scale=0.5)
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == FRAMES and image.size == (96, 54)
        image.seek(4)
        marked = np.asarray(image.convert("RGB"))
        image.seek(FRAMES - 1)
        later = np.asarray(image.convert("RGB"))
    # The switch's frame carries the red banner across its top; the last frame (long after) does not.
    red = np.array([230, 30, 30])
    assert np.mean(np.all(np.abs(marked[2:8].astype(int) - red) < 40, axis=-1)) > 0.5
    assert np.mean(np.all(np.abs(later[2:8].astype(int) - red) < 40, axis=-1)) < 0.2


def test_switch_events_say_where_motion_swapped_two_dancers():
    """The hand-made scene of two dancers who turn round while hidden (frames 40-60): each comes
    back where constant velocity predicts the other, so motion alone swaps them at frame 61."""
    from _make_tracking_scene import turning_dancers

    from streid_core.tracking.mot_eval import IdSwitch, clear_mot, id_switches, prepare_frames
    from streid_core.tracking.tracker import Tracker, run_sequence

    scene = turning_dancers()
    frames = prepare_frames(scene.gt_rows, run_sequence(Tracker(), scene.frames()), scene.num_frames)
    assert id_switches(frames) == [IdSwitch(61, 1, 1, 2), IdSwitch(61, 2, 2, 1)]
    assert clear_mot(frames).id_switches == 2


def test_track_bench_refuses_bad_checkpoint_arguments(tmp_path, capsys):
    def bench(*pairs):
        return main(["track-bench", "--videos", str(tmp_path), "--out", str(tmp_path / "out"), "--checkpoint", *pairs])

    assert bench("motion-only=x.pth") == 2
    assert "always run" in capsys.readouterr().err
    assert bench("no-equals-sign") == 2
    assert "NAME=PATH" in capsys.readouterr().err
    assert bench("my run=x.pth") == 2
    assert "tracker name" in capsys.readouterr().err
    assert bench("a=x.pth", "--checkpoint", "a=y.pth") == 2
    assert "given twice" in capsys.readouterr().err
    assert bench(f"st-reidnet={tmp_path / 'missing.pth'}") == 2
    assert "missing.pth: file not found" in capsys.readouterr().err
