"""`streid track` and `streid track-eval` as a user runs them: files in, files out, and one-line
errors with exit code 2 for bad input."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from streid_core.cli import main
from streid_core.errors import StreidError
from streid_core.data.formats.mot import (
    SeqInfo,
    read_results,
    write_detections,
    write_ground_truth,
    write_seqinfo,
)

NUM_FRAMES = 6
RED_X = [4, 8, 12, 16, 20, 24]  # a red person walks right
BLUE_X = [70, 66, 62, 58, 54, 50]  # a blue person walks left


def _sequence(tmp_path):
    """Tiny 96x64 JPEG frames of two coloured people, their detections and ground truth."""
    frames = tmp_path / "img1"
    frames.mkdir()
    dets, gt = [], []
    for frame in range(1, NUM_FRAMES + 1):
        image = np.full((64, 96, 3), 128, dtype=np.uint8)
        for pid, (x, colour) in enumerate(((RED_X[frame - 1], (220, 20, 20)), (BLUE_X[frame - 1], (20, 20, 220))), 1):
            image[10:50, x:x + 20] = colour
            dets.append([frame, x, 10, 20, 40, 0.9])
            gt.append([frame, pid, x, 10, 20, 40, 1, 1, 1])
        Image.fromarray(image).save(frames / f"{frame:06d}.jpg", quality=95)
    write_detections(tmp_path / "det.txt", np.array(dets, float))
    write_ground_truth(tmp_path / "gt" / "dance" / "gt" / "gt.txt", np.array(gt, float))
    write_seqinfo(tmp_path / "gt" / "dance" / "seqinfo.ini", SeqInfo(name="dance", seq_length=NUM_FRAMES,
                                                                       im_width=96, im_height=64))
    return frames


def _track(tmp_path, frames, checkpoint="none", *extra):
    return main(["track", "--frames", str(frames), "--dets", str(tmp_path / "det.txt"),
                 "--checkpoint", checkpoint, "--out", str(tmp_path / "out" / "dance.txt"), "--n-init", "2", *extra])


def test_track_motion_only_writes_motchallenge_results(tmp_path, capsys):
    frames = _sequence(tmp_path)
    assert _track(tmp_path, frames, "none", "--seqinfo", str(tmp_path / "gt" / "dance" / "seqinfo.ini")) == 0
    out = tmp_path / "out" / "dance.txt"
    assert all(line.endswith(",-1,-1,-1") and len(line.split(",")) == 10 for line in out.read_text().splitlines())
    rows = read_results(out)
    # Confirmed at the 2nd hit, so frames 2..6 carry both people, each under one id throughout.
    assert sorted(set(rows[:, 0].astype(int))) == [2, 3, 4, 5, 6]
    assert set(rows[:, 1].astype(int)) == {1, 2}
    red = rows[rows[:, 1] == rows[rows[:, 2] < 40][0, 1]]
    np.testing.assert_allclose(red[:, 2], RED_X[1:], atol=1.0)
    assert "wrote 10 boxes of 2 tracks over 6 frames" in capsys.readouterr().out

    # The table command scores it: a perfect run on this easy sequence.
    assert main(["track-eval", "--gt-root", str(tmp_path / "gt"), "--results", f"motion-only={tmp_path / 'out'}",
                 "--out", str(tmp_path / "table.md")]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    scores = table["trackers"][0]
    assert scores["name"] == "motion-only" and scores["disagreements"] == []
    # 12 gt boxes, the 2 of frame 1 missed (not yet confirmed): MOTA = 1 - 2/12; IDTP 10, IDFN 2,
    # IDFP 0 -> IDF1 = 20/22.
    assert scores["streid"]["MOTA"] == pytest.approx(10 / 12)
    assert scores["streid"]["IDF1"] == pytest.approx(20 / 22)
    assert scores["streid"]["IDSW"] == 0
    markdown = (tmp_path / "table.md").read_text()
    assert markdown.startswith("| Tracker | HOTA |") and "| motion-only |" in markdown


def test_min_conf_drops_weak_detections(tmp_path):
    frames = _sequence(tmp_path)
    # A weak false alarm standing still in frames 2-6 becomes a third track unless filtered out.
    with open(tmp_path / "det.txt", "a") as handle:
        handle.writelines(f"{f},-1,40,5,10,20,0.2,-1,-1,-1\n" for f in range(2, NUM_FRAMES + 1))
    assert _track(tmp_path, frames) == 0
    assert set(read_results(tmp_path / "out" / "dance.txt")[:, 1].astype(int)) == {1, 2, 3}
    assert _track(tmp_path, frames, "none", "--min-conf", "0.5") == 0
    assert set(read_results(tmp_path / "out" / "dance.txt")[:, 1].astype(int)) == {1, 2}


def _fake_features_module(monkeypatch, load_encoder):
    import streid_core.models.loading as loading

    monkeypatch.setattr(loading, "load_encoder", load_encoder)


class MeanColour(torch.nn.Module):
    def forward(self, batch):
        return batch.mean(dim=(2, 3))


def test_track_with_a_checkpoint_uses_the_encoders_features(tmp_path, monkeypatch):
    frames = _sequence(tmp_path)
    checkpoint = tmp_path / "reid.pt"
    checkpoint.write_bytes(b"weights")
    calls = []

    def load_encoder(path, device):
        calls.append((str(path), str(device)))
        return MeanColour(), (32, 16)

    _fake_features_module(monkeypatch, load_encoder)
    # An appearance gate so tight that only the person's own colour passes: the tracks still hold,
    # which they could not if the embedder's features were not the crops' colours.
    assert _track(tmp_path, frames, str(checkpoint), "--device", "cpu", "--max-appearance-distance", "0.05") == 0
    assert calls == [(str(checkpoint), "cpu")]
    rows = read_results(tmp_path / "out" / "dance.txt")
    assert set(rows[:, 1].astype(int)) == {1, 2} and len(rows) == 10


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_checkpoint_that_cannot_be_loaded_is_one_line(tmp_path, monkeypatch, capsys):
    frames = _sequence(tmp_path)
    assert _track(tmp_path, frames, str(tmp_path / "missing.pt")) == 2
    assert "missing.pt: file not found" in _error_line(capsys)

    checkpoint = tmp_path / "broken.pt"
    checkpoint.write_bytes(b"not a checkpoint")

    def load_encoder(path, device):
        raise RuntimeError("invalid load key, 'n'.\nmore detail")

    _fake_features_module(monkeypatch, load_encoder)
    assert _track(tmp_path, frames, str(checkpoint), "--device", "cpu") == 2
    line = _error_line(capsys)
    assert "broken.pt: cannot load a re-ID encoder" in line and "invalid load key" in line

    def load_encoder_user_error(path, device):
        raise StreidError(f"{path}: not a streid checkpoint")

    _fake_features_module(monkeypatch, load_encoder_user_error)
    assert _track(tmp_path, frames, str(checkpoint), "--device", "cpu") == 2
    assert "broken.pt: not a streid checkpoint" in _error_line(capsys)


def test_bad_track_input_is_one_line_naming_the_file(tmp_path, capsys):
    frames = _sequence(tmp_path)
    (tmp_path / "det.txt").unlink()
    assert _track(tmp_path, frames) == 2
    assert "det.txt: detection file not found" in _error_line(capsys)

    (tmp_path / "det.txt").write_text("1,-1,4,10,20,40,0.9\n2,-1,8,10,twenty,40,0.9\n")
    assert _track(tmp_path, frames) == 2
    assert "det.txt:2: not a list of numbers" in _error_line(capsys)

    (tmp_path / "det.txt").write_text("9,-1,4,10,20,40,0.9\n")
    assert _track(tmp_path, frames) == 2
    assert "detections in frame 9, but the sequence has 6 frames" in _error_line(capsys)

    assert _track(tmp_path, tmp_path / "no-frames") == 2
    assert "no-frames: frames folder not found" in _error_line(capsys)

    assert _track(tmp_path, frames, "none", "--max-age", "-3") == 2
    assert "--max-age" in _error_line(capsys)


def test_bad_track_eval_input_is_one_line(tmp_path, capsys):
    _sequence(tmp_path)
    gt = str(tmp_path / "gt")
    assert main(["track-eval", "--gt-root", gt, "--results", "no-equals-sign", "--out", str(tmp_path / "t.md")]) == 2
    assert "expected NAME=DIR" in _error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["track-eval", "--gt-root", gt, "--results", f"x={tmp_path / 'empty'}",
                 "--out", str(tmp_path / "t.md")]) == 2
    assert "dance.txt: missing results for sequence 'dance'" in _error_line(capsys)
    assert main(["track-eval", "--gt-root", gt, "--results", f"x={tmp_path / 'empty'}",
                 "--out", str(tmp_path / "t.csv")]) == 2
    assert "name the table file with .json or .md" in _error_line(capsys)
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "t.md").exists()


def test_track_eval_without_trackeval_leaves_hota_blank(tmp_path):
    _sequence(tmp_path)
    perfect = tmp_path / "perfect"
    perfect.mkdir()
    (perfect / "dance.txt").write_text(
        "".join(f"{f},{p},{x},10,20,40,1,-1,-1,-1\n"
                for f in range(1, NUM_FRAMES + 1) for p, x in ((1, RED_X[f - 1]), (2, BLUE_X[f - 1]))))
    assert main(["track-eval", "--gt-root", str(tmp_path / "gt"), "--results", f"perfect={perfect}",
                 "--out", str(tmp_path / "table.json"), "--no-trackeval"]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["evaluators"]["trackeval"] is None and table["trackers"][0]["trackeval"] is None
    assert table["trackers"][0]["streid"]["IDF1"] == 1.0
    row = [line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("| perfect")][0]
    assert row == "| perfect | – | – | – | 100.0 | 100.0 | 0 | 0 | 0 |"
