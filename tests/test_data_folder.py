"""`streid prepare folder`: one folder per identity, or a CSV, -> a loadable dataset."""
import json

import pytest
from _make_datasets import make_custom_csv, make_custom_folder, truncate_jpeg

from streid_core.cli import main
from streid_core.data import load_dataset
from streid_core.data.formats.folder import convert_csv, convert_folder

FOLDER_IDS = {"alice": 3, "bob": 2, "carol": 4, "dave": 1, "erin": 2}


def _pids(records):
    return sorted({r.pid for r in records})


def test_folder_per_identity_without_cameras(tmp_path, capsys):
    src = make_custom_folder(tmp_path / "photos", FOLDER_IDS)
    dst = tmp_path / "data" / "mine"
    assert main(["prepare", "folder", "--src", str(src), "--dst", str(dst), "--seed", "3"]) == 0
    assert "cameras per-image" in capsys.readouterr().out
    meta = json.loads((dst / "meta.json").read_text())
    assert meta["identity_names"] == ["alice", "bob", "carol", "dave", "erin"]  # labels -> pids 0..4, sorted
    assert meta["camera_ids"] == "per-image"

    ds = load_dataset(dst, num_val=0)
    # round(0.5 * 5) = 2 test identities (whole identities), 3 for training
    assert len(_pids(ds.query)) == 2 and len(_pids(ds.trainval)) == 3
    assert set(_pids(ds.query)).isdisjoint(_pids(ds.trainval))
    assert ds.query == ds.gallery and ds.protocol == "market1501" and ds.keypoints == "none"
    count_of = {meta["identity_names"][pid]: n for pid, n in ((p, sum(r.pid == p for r in ds.trainval + ds.query))
                                                              for p in range(5))}
    assert count_of == FOLDER_IDS
    everything = ds.trainval + ds.query
    assert len({r.camid for r in everything}) == len(everything) == 12  # every image its own camera

    again = tmp_path / "again"
    convert_folder(src, again, seed=3)
    assert (again / "splits.json").read_text() == (dst / "splits.json").read_text()  # the seed fixes the split
    assert convert_folder(src, tmp_path / "f", test_fraction=0.2).test_ids == 1  # round(0.2 * 5)


def test_csv_with_integer_pids_cameras_frames_and_videos(tmp_path):
    rows = [
        {"path": "cam0/a.jpg", "pid": 10, "camid": 0, "frame": 1, "video": "clipA"},
        {"path": "cam1/a.jpg", "pid": 10, "camid": 1, "frame": 7, "video": "clipA"},
        {"path": "cam0/b.jpg", "pid": 20, "camid": 0, "frame": 2, "video": "clipA"},
        {"path": "cam1/b.jpg", "pid": 20, "camid": 1, "frame": None, "video": "clipB"},
        {"path": "cam0/c.jpg", "pid": 30, "camid": 0, "frame": 3, "video": "clipB"},
        {"path": "cam1/c.jpg", "pid": 30, "camid": 1, "frame": 4, "video": "clipB"},
        {"path": "cam2/d.jpg", "pid": 40, "camid": 2, "frame": 5, "video": None},
        {"path": "cam0/d.jpg", "pid": 40, "camid": 0, "frame": 6, "video": None},
    ]
    csv_file = make_custom_csv(tmp_path / "src", rows, columns=("path", "pid", "camid", "frame", "video"))
    summary = convert_csv(csv_file, tmp_path / "out", test_fraction=0.5, seed=1)
    assert (summary.trainval_ids, summary.test_ids, summary.cameras) == (2, 2, "3")
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert "identity_names" not in meta and "camera_ids" not in meta and meta["num_cameras"] == 3
    ds = load_dataset(tmp_path / "out", num_val=0)
    everything = ds.trainval + ds.query
    assert sorted({r.pid for r in everything}) == [10, 20, 30, 40]  # integer labels keep their numbers
    seen = {(r.pid, r.camid, r.frame, r.video) for r in everything}
    assert seen == {(10, 0, 1, "clipA"), (10, 1, 7, "clipA"), (20, 0, 2, "clipA"), (20, 1, -1, "clipB"),
                    (30, 0, 3, "clipB"), (30, 1, 4, "clipB"), (40, 2, 5, ""), (40, 0, 6, "")}
    assert ds.videos == {"clipA": [10, 20], "clipB": [20, 30]}


def test_csv_without_camids_gets_per_image_cameras(tmp_path):
    rows = [{"path": f"img{i}.png", "pid": name} for i, name in enumerate(["x", "x", "y", "y", "z", "z"])]
    csv_file = make_custom_csv(tmp_path, rows)
    convert_csv(csv_file, tmp_path / "out")
    ds = load_dataset(tmp_path / "out")
    everything = ds.trainval + ds.query
    assert len(everything) == 6 and len({r.camid for r in everything}) == 6
    assert all(r.path.endswith(".png") for r in everything)  # bytes copied unchanged, extension kept
    assert not (tmp_path / "out" / "image_info.json").exists()


def test_help_documents_the_camera_fallback(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "folder", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "every image gets its own camera id" in text and "image_info.json" in text


GOOD_ROWS = [{"path": "a.jpg", "pid": 1}, {"path": "b.jpg", "pid": 2}]


def _csv(tmp_path, rows=GOOD_ROWS, columns=("path", "pid"), header=None):
    csv_file = make_custom_csv(tmp_path / "src", rows, columns=columns)
    if header is not None:
        lines = csv_file.read_text().splitlines()
        csv_file.write_text("\n".join([header] + lines[1:]) + "\n")
    return ["--csv", str(csv_file)]


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda t: _csv(t, header="file,person"), "labels.csv: header is 'file,person'"),
        (lambda t: _csv(t, header="path,pid,camera"), "labels.csv: header is 'path,pid,camera'"),
        (lambda t: _csv(t) + ["--test-fraction", "1.0"], "--test-fraction 1.0: must be between 0 and 1"),
        (lambda t: _csv(t, rows=GOOD_ROWS + [{"path": "a.jpg", "pid": 3}]), "labels.csv: line 4: 'a.jpg' is already listed on line 2"),
        (lambda t: _csv(t, rows=[{**r, "camid": 0} for r in GOOD_ROWS] + [{"path": "c.jpg", "pid": 1, "camid": "left"}],
                        columns=("path", "pid", "camid")), "labels.csv: line 4: camid is 'left'"),
        (lambda t: _csv(t, rows=GOOD_ROWS, columns=("path", "pid", "camid")), "labels.csv: line 2: camid is ''"),
        (lambda t: _csv(t, rows=[{"path": "a.jpg", "pid": 1}, {"path": "b.jpg", "pid": 1}]), "labels.csv: only one identity"),
        (lambda t: (_csv(t), (t / "src" / "b.jpg").unlink())[0], "labels.csv: line 3: image"),
        (lambda t: (_csv(t), truncate_jpeg(t / "src" / "b.jpg"))[0], "b.jpg: corrupt or truncated image"),
        (lambda t: ["--src", str(make_custom_folder(t / "ids", {"p": 2, "q": 0}))], "only one identity"),
        (lambda t: ["--src", str(t / "missing")], "missing: not a folder"),
        (lambda t: ["--csv", str(t / "none.csv")], "none.csv: missing"),
    ],
    ids=["bad-header", "unknown-column", "fraction", "duplicate-path", "bad-camid", "blank-camid", "one-identity", "missing-image",
         "truncated-jpeg", "folder-one-identity", "no-folder", "no-csv"],
)
def test_bad_custom_input_exits_2_naming_the_problem(tmp_path, capsys, make_args, expected):
    args = make_args(tmp_path)
    dst = tmp_path / "out" / "mine"
    assert main(["prepare", "folder", *args, "--dst", str(dst)]) == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("streid: error:")]
    assert len(error_lines) == 1 and expected in error_lines[0]
    assert not dst.exists() and (not dst.parent.exists() or list(dst.parent.iterdir()) == [])
