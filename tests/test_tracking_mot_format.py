"""MOTChallenge files written by streid read back unchanged, and broken files fail with one line
that names the file (and the line)."""
import numpy as np
import pytest

from streid_core.errors import StreidError
from streid_core.data.formats.mot import (
    SeqInfo,
    find_sequences,
    read_detections,
    read_ground_truth,
    read_results,
    read_seqinfo,
    results_file,
    write_detections,
    write_ground_truth,
    write_results,
    write_seqinfo,
)


def test_results_round_trip_exactly(tmp_path):
    rows = np.array([
        [2, 7, 10.25, 20.0, 30.5, 60.125, 0.9],
        [1, 3, 1 / 3, 2 / 3, 40.0, 80.0, 1.0],
        [1, 1, -5.5, 0.0, 12.0, 24.0, 0.123456789],
    ])
    path = tmp_path / "res.txt"
    write_results(path, rows)
    lines = path.read_text().splitlines()
    # sorted by frame then id, ten columns, the last three -1
    assert lines[0].startswith("1,1,-5.5,0,12,24,") and lines[0].endswith(",-1,-1,-1")
    assert all(len(line.split(",")) == 10 for line in lines)
    back = read_results(path)
    np.testing.assert_array_equal(back, rows[np.lexsort((rows[:, 1], rows[:, 0]))])


def test_ground_truth_and_detections_round_trip(tmp_path):
    gt = np.array([[1, 1, 10, 20, 30, 60, 1, 1, 0.75], [1, 2, 50, 20, 30, 60, 0, 7, 1.0]])
    write_ground_truth(tmp_path / "gt.txt", gt)
    np.testing.assert_array_equal(read_ground_truth(tmp_path / "gt.txt"), gt)
    assert (tmp_path / "gt.txt").read_text().splitlines()[1] == "1,2,50,20,30,60,0,7,1"

    dets = np.array([[2, 10.5, 20, 30, 60, 0.8], [1, 0, 0, 5, 10, 0.5], [2, 40, 20, 30, 60, 0.3]])
    write_detections(tmp_path / "det.txt", dets)
    by_frame = read_detections(tmp_path / "det.txt")
    assert sorted(by_frame) == [1, 2]
    np.testing.assert_array_equal(by_frame[2][0], [[10.5, 20, 30, 60], [40, 20, 30, 60]])
    np.testing.assert_array_equal(by_frame[2][1], [0.8, 0.3])


def test_short_and_mot15_style_lines_read_with_defaults(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1, 4, 10, 20, 30, 60\n2 4 12 20 30 60 1 -1 -1 -1\n")
    # Six columns: flag 1, class 1 (pedestrian), visibility 1; MOT15's -1 class/visibility -> 1.
    np.testing.assert_array_equal(read_ground_truth(path), [[1, 4, 10, 20, 30, 60, 1, 1, 1],
                                                            [2, 4, 12, 20, 30, 60, 1, 1, 1]])
    det = tmp_path / "det.txt"
    det.write_text("3,-1,1,2,3,4\n")
    assert read_detections(det)[3][1].tolist() == [1.0]  # no confidence column -> 1


def test_seqinfo_round_trip_keeps_motchallenge_key_spelling(tmp_path):
    info = SeqInfo(name="dance-01", seq_length=120, frame_rate=25.0, im_width=640, im_height=360,
                   im_dir="img1", im_ext=".png")
    write_seqinfo(tmp_path / "seqinfo.ini", info)
    text = (tmp_path / "seqinfo.ini").read_text()
    assert "[Sequence]" in text and "seqLength=120" in text and "imExt=.png" in text
    assert read_seqinfo(tmp_path / "seqinfo.ini") == info


def test_benchmark_layout_is_found(tmp_path):
    for name in ("seq-b", "seq-a"):
        write_ground_truth(tmp_path / name / "gt" / "gt.txt", np.array([[1, 1, 0, 0, 10, 10, 1, 1, 1]]))
        write_seqinfo(tmp_path / name / "seqinfo.ini", SeqInfo(name=name, seq_length=5))
    (tmp_path / "notes").mkdir()  # folders without gt/gt.txt are not sequences
    sequences = find_sequences(tmp_path)
    assert [s.name for s in sequences] == ["seq-a", "seq-b"]
    assert sequences[0].seqinfo.seq_length == 5
    assert results_file(tmp_path / "run", "seq-a") == tmp_path / "run" / "seq-a.txt"


@pytest.mark.parametrize("content, message", [
    ("1,-1,10,20,30,60,0.9\n2,-1,10,x,30,60,0.9\n", r"det\.txt:2: not a list of numbers"),
    ("1,-1,10,20,30\n", r"det\.txt:1: expected at least 6"),
    ("0,-1,10,20,30,60,0.9\n", r"det\.txt:1: frame '0' must be a whole number"),
    ("1.5,-1,10,20,30,60,0.9\n", r"det\.txt:1: frame"),
    ("1,-1,10,20,0,60,0.9\n", r"det\.txt: box with non-positive width"),
    ("1,-1,nan,20,30,60,0.9\n", r"det\.txt:1: expected at least 6 finite"),
])
def test_malformed_detection_files_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "det.txt"
    path.write_text(content)
    with pytest.raises(StreidError, match=message) as info:
        read_detections(path)
    assert "\n" not in str(info.value)


def test_missing_files_and_duplicate_ids_are_user_errors(tmp_path):
    with pytest.raises(StreidError, match=r"nope\.txt: detection file not found"):
        read_detections(tmp_path / "nope.txt")
    with pytest.raises(StreidError, match="seqinfo.ini not found"):
        read_seqinfo(tmp_path / "seqinfo.ini")
    (tmp_path / "bad.ini").write_text("[Sequence]\nname=x\n")
    with pytest.raises(StreidError, match="missing \\[Sequence\\] seqLength"):
        read_seqinfo(tmp_path / "bad.ini")
    res = tmp_path / "res.txt"
    res.write_text("1,3,0,0,10,10,1,-1,-1,-1\n1,3,5,5,10,10,1,-1,-1,-1\n")
    with pytest.raises(StreidError, match="id 3 appears twice in frame 1"):
        read_results(res)
    res.write_text("1,2.5,0,0,10,10,1,-1,-1,-1\n")
    with pytest.raises(StreidError, match="id 2.5"):
        read_results(res)
