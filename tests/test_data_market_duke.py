"""`streid prepare market1501|dukemtmc`: raw folders -> open-reid layout + official lists."""
import dataclasses
import json
from pathlib import Path

import pytest
from _make_datasets import make_duke_raw, make_market_raw, market_name, truncate_jpeg, write_jpeg

from streid_core.cli import main
from streid_core.data import load_dataset
from streid_core.data.formats import market_duke
from streid_core.data.formats.market_duke import DUKEMTMC, MARKET1501, convert_raw

MARKET_TRAIN = [(1, 1), (1, 2), (2, 1), (2, 3), (3, 5)]
MARKET_TEST = [(4, 1), (4, 2), (5, 3), (0, 1), (0, 6), (-1, 1), (-1, 4), (5, 6)]  # 2 distractors, 2 junk
MARKET_QUERY = [(4, 3), (5, 1)]


def _market(tmp_path: Path) -> Path:
    return make_market_raw(tmp_path / "raw" / "Market-1501-v15.09.15", MARKET_TRAIN, MARKET_TEST, MARKET_QUERY)


def _pids(records):
    return sorted({r.pid for r in records})


def test_market_conversion_drops_junk_keeps_distractors_and_pids(tmp_path, capsys):
    raw = _market(tmp_path)
    (raw / "query" / "Thumbs.db").write_bytes(b"not an image")  # the real download has these
    dst = tmp_path / "data" / "market1501"
    assert main(["prepare", "market1501", "--src", str(tmp_path / "raw"), "--dst", str(dst)]) == 0  # parent folder works
    out, err = capsys.readouterr()
    assert "2 junk images dropped" in out and "2 distractor images (pid 0)" in out
    # tiny fixture: one warning line naming each count and both numbers
    assert err.count("\n") == 1 and "train 5 (published 12,936), query 2 (published 3,368), gallery 6 (published 15,913)" in err

    meta = json.loads((dst / "meta.json").read_text())
    assert len(meta["identities"]) == 1502 and meta["num_cameras"] == 6
    assert meta["identities"][0] == [["00000000_00_0000.jpg"], [], [], [], [], ["00000000_05_0000.jpg"]]
    assert json.loads((dst / "splits.json").read_text()) == [{"trainval": [1, 2, 3], "query": [4, 5], "gallery": [0, 4, 5]}]
    assert len(list((dst / "images").iterdir())) == 5 + 6 + 2

    official = load_dataset(dst)  # official lists are the default
    assert len(official.query) == 2 and len(official.gallery) == 6
    assert _pids(official.gallery) == [0, 4, 5] and _pids(official.query) == [4, 5]
    query_cams = {(r.pid, r.camid) for r in official.query}
    assert query_cams == {(4, 2), (5, 0)}  # raw c3 / c1 -> 0-based cameras
    assert _pids(official.trainval) == [1, 2, 3] and len(official.trainval) == 5

    identity = load_dataset(dst, query_mode="identity")
    # open-reid: every image of pids 4, 5 (test + query folders) / of pids 0, 4, 5
    assert len(identity.query) == 6 and len(identity.gallery) == 8


def test_market_without_count_warning_when_totals_match(tmp_path, monkeypatch, capsys):
    raw = _market(tmp_path)
    matching = dataclasses.replace(MARKET1501, published={"train": 5, "query": 2, "gallery": 6})
    convert_raw(matching, raw, tmp_path / "out")
    assert capsys.readouterr().err == ""


def test_duke_pids_reindexed_by_first_appearance_train_first(tmp_path):
    raw = make_duke_raw(
        tmp_path / "DukeMTMC-reID",
        train=[(5, 1), (5, 2), (9, 3), (2, 8)],
        test=[(7, 1), (7, 2), (3, 4), (11, 5)],
        query=[(7, 3), (3, 1)],
    )
    dst = tmp_path / "dukemtmc"
    summary = convert_raw(DUKEMTMC, raw, dst)
    assert summary.images == {"train": 4, "query": 2, "gallery": 4} and summary.junk_dropped == 0
    # sorted names per folder, train first: 0002 -> 0, 0005 -> 1, 0009 -> 2, then 0003 -> 3, 0007 -> 4, 0011 -> 5
    meta = json.loads((dst / "meta.json").read_text())
    assert len(meta["identities"]) == 6 and meta["num_cameras"] == 8
    assert meta["identities"][0][7] == ["00000000_07_0000.jpg"]  # raw pid 2, camera 8
    assert meta["identities"][4][2] == ["00000004_02_0000.jpg"]  # raw pid 7's query image, camera 3
    ds = load_dataset(dst)
    assert _pids(ds.trainval) == [0, 1, 2] and _pids(ds.gallery) == [3, 4, 5] and _pids(ds.query) == [3, 4]
    assert len(load_dataset(dst, query_mode="identity").query) == 5  # pid 7: 3 images, pid 3: 2


def test_existing_dst_is_refused_unless_overwrite(tmp_path, capsys):
    raw = _market(tmp_path)
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    assert main(["prepare", "market1501", "--src", str(raw), "--dst", str(dst)]) == 2
    err = capsys.readouterr().err
    assert f"{dst}: already exists; pass --overwrite" in err and (dst / "keep.txt").exists()
    assert main(["prepare", "market1501", "--src", str(raw), "--dst", str(dst), "--overwrite"]) == 0
    assert not (dst / "keep.txt").exists() and (dst / "meta.json").is_file()


def _corrupt(raw):
    truncate_jpeg(raw / "bounding_box_test" / market_name(5, 6, 13))
    return market_name(5, 6, 13)


def _bad_name(raw):
    write_jpeg(raw / "query" / "person_7.jpg")
    return "person_7.jpg"


def _bad_camera(raw):
    write_jpeg(raw / "bounding_box_train" / market_name(8, 7, 99))
    return "camera 7 outside 1..6"


def _empty_query(raw):
    for f in (raw / "query").iterdir():
        f.unlink()
    return "query: holds no usable Market-1501 images"


def _missing_folder(raw):
    for f in (raw / "query").iterdir():
        f.unlink()
    (raw / "query").rmdir()
    return "query: missing folder"


@pytest.mark.parametrize("damage", [_corrupt, _bad_name, _bad_camera, _empty_query, _missing_folder],
                         ids=["truncated-jpeg", "unparsable-name", "camera-out-of-range", "empty-query", "missing-folder"])
def test_bad_raw_input_exits_2_naming_the_file_and_leaves_nothing(tmp_path, capsys, damage):
    raw = _market(tmp_path)
    expected = damage(raw)
    out_parent = tmp_path / "data"
    out_parent.mkdir()
    assert main(["prepare", "market1501", "--src", str(raw), "--dst", str(out_parent / "market1501")]) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("streid: error:")]
    assert len(error_lines) == 1 and expected in error_lines[0] and "Traceback" not in err
    assert list(out_parent.iterdir()) == []  # neither dst nor a temporary folder


def test_src_that_is_not_a_folder(tmp_path, capsys):
    assert main(["prepare", "dukemtmc", "--src", str(tmp_path / "nope"), "--dst", str(tmp_path / "o")]) == 2
    assert f"{tmp_path / 'nope'}: not a folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_published_totals_are_the_standard_figures():
    # anchors.md 3.1: Market 12,936 train / 3,368 query / 19,732 - 3,819 junk = 15,913 gallery
    assert market_duke.MARKET1501.published == {"train": 12936, "query": 3368, "gallery": 19732 - 3819}
    assert market_duke.DUKEMTMC.published == {"train": 16522, "query": 2228, "gallery": 17661}
