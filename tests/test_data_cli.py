"""`streid info` and finding datasets by name (`-d DanceReid` must find `DanceReID/`)."""
import json

import pytest
from _make_datasets import make_dancereid, make_market_raw, make_openreid, truncate_jpeg

from streid_core.cli import main
from streid_core.data import resolve_dataset_dir
from streid_core.errors import StreidError


def _table(out: str) -> dict[str, tuple[int, int]]:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1].isdigit() and parts[-2].isdigit():
            rows[" ".join(parts[:-2])] = (int(parts[-2]), int(parts[-1]))
    return rows


def test_info_summarises_dancereid_and_checks_every_file(tmp_path, capsys):
    root = make_dancereid(tmp_path / "DanceReID", split_folder=True)
    assert main(["info", str(root), "--check"]) == 0
    out = capsys.readouterr().out
    assert "DanceReID (split-folder)" in out and "dancereid" in out
    assert "coco17; 21 of 21 images have a pose" in out
    assert "3 distinct camera ids" in out  # frames 0, 5, 10 fill the camera slot
    assert "videos      3: ZhuDSdmby8k (pids 0,1), Js76pyw4UDk (pids 2-4), 7jRvxkYuYvk (pids 5,6)" in out
    assert _table(out) == {"train": (4, 12), "val": (1, 3), "trainval": (5, 15), "query": (2, 6), "gallery": (2, 6)}
    assert "OK: 21 images decoded, 21 pose files parsed" in out


def test_info_finds_a_dataset_by_name_case_insensitively(tmp_path, capsys):
    make_dancereid(tmp_path / "DanceReID")
    assert main(["info", "DanceReid", "--data-dir", str(tmp_path)]) == 0
    assert str(tmp_path / "DanceReID") in capsys.readouterr().out


def test_info_shows_official_and_identity_query_sets(tmp_path, capsys):
    raw = make_market_raw(tmp_path / "raw", [(1, 1), (2, 2)], [(3, 1), (3, 2), (0, 4), (-1, 1)], [(3, 3)])
    assert main(["prepare", "market1501", "--src", str(raw), "--dst", str(tmp_path / "market1501")]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "market1501")]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["query (official)"] == (1, 1) and rows["gallery (official)"] == (2, 3)
    assert rows["query (identity)"] == (1, 3) and rows["gallery (identity)"] == (2, 4)


def test_resolve_dataset_dir(tmp_path):
    for name in ("DanceReID", "market1501", ".market1501.tmp"):
        (tmp_path / name).mkdir()
    assert resolve_dataset_dir(tmp_path, "DanceReid") == tmp_path / "DanceReID"
    assert resolve_dataset_dir(tmp_path, "Market1501") == tmp_path / "market1501"
    with pytest.raises(StreidError) as info:
        resolve_dataset_dir(tmp_path, "synthdance")
    assert "holds: DanceReID, market1501)" in str(info.value) and "`streid synth`" in str(info.value)
    with pytest.raises(StreidError, match=r"`streid prepare dukemtmc --src RAW"):
        resolve_dataset_dir(tmp_path, "dukemtmc")
    with pytest.raises(StreidError, match=r"nowhere: data folder does not exist"):
        resolve_dataset_dir(tmp_path / "nowhere", "market1501")


def _split_out_of_range(root):
    return ["--split", "3"], "splits.json: split 3 out of range"


def _empty_query(root):
    (root / "splits.json").write_text(json.dumps([{"trainval": [0, 1], "query": [], "gallery": [2]}]))
    return [], "splits.json: split 0 has an empty query set"


def _bad_json(root):
    (root / "splits.json").write_text('[{"trainval": [0,]}]')
    return [], "splits.json: invalid JSON"


def _no_meta(root):
    (root / "meta.json").unlink()
    return [], "meta.json: missing"


def _no_folder(root):
    return [str(root / "nope")], "nope: no such dataset folder"


def _truncated(root):
    truncate_jpeg(root / "images" / "00000001_01_0000.jpg")
    return ["--check"], "00000001_01_0000.jpg: corrupt or truncated image"


def _pose_lines(root):
    (root / "poses" / "00000002_00_0001.txt").write_text("3 4\n")
    return ["--check"], "00000002_00_0001.txt: pose file has 1 lines, expected 18"


def _pose_text(root):
    (root / "poses" / "00000002_00_0001.txt").write_text("x y\n" * 18)
    return ["--check"], "00000002_00_0001.txt: line 1 is 'x y', expected two numbers"


@pytest.mark.parametrize(
    "damage", [_split_out_of_range, _empty_query, _bad_json, _no_meta, _no_folder, _truncated, _pose_lines, _pose_text],
    ids=["split-range", "empty-query", "bad-json", "no-meta", "no-folder", "truncated-jpeg", "pose-lines", "pose-text"],
)
def test_info_bad_dataset_exits_2_with_one_line(tmp_path, capsys, damage):
    root = make_openreid(tmp_path / "d", trainval_pids=(0, 1), test_pids=(2,), poses=True)
    extra, expected = damage(root)
    target = [] if extra[:1] and extra[0].startswith("/") else [str(root)]
    assert main(["info", *target, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no half summary
    assert captured.err.count("\n") == 1 and expected in captured.err and "Traceback" not in captured.err


def test_info_on_a_raw_market_folder_says_how_to_convert(tmp_path, capsys):
    raw = make_market_raw(tmp_path / "Market-1501-v15.09.15", [(1, 1)], [(2, 1)], [(2, 2)])
    assert main(["info", str(tmp_path)]) == 2
    assert f"streid prepare market1501 --src {tmp_path}" in capsys.readouterr().err
    assert raw.is_dir()
