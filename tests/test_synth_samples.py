"""The sample grid used by `streid synth`'s report and by notebooks."""
from __future__ import annotations

from dataclasses import replace

import pytest
from matplotlib.collections import LineCollection
from PIL import Image

from _make_synth import TINY
from streid_core.data.dataset import load_dataset
from streid_core.data.synth import generate
from streid_core.viz.figures import save_figure
from streid_core.viz.samples import choose_samples, sample_grid


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "synthdance"
    generate(out, replace(TINY, ids=9, videos=3))
    ds = load_dataset(out)
    return ds.trainval + ds.query


def test_rows_follow_each_identity_through_time(records):
    rows = choose_samples(records, n_per_id=4, pids=[0, 5])
    assert [pid for pid, _ in rows] == [0, 5]
    for pid, recs in rows:
        own = sorted(r.frame for r in records if r.pid == pid)
        frames = [r.frame for r in recs]
        assert all(r.pid == pid for r in recs) and frames == sorted(frames)
        assert frames[0] == own[0] and frames[-1] == own[-1]  # first and last appearance
        assert len(recs) == min(4, len(own))
    drawn = choose_samples(records, n_ids=3, seed=1)
    assert len(drawn) == 3 and drawn == choose_samples(records, n_ids=3, seed=1)


def test_grid_draws_crops_with_skeletons_and_saves_png(records, tmp_path):
    fig = sample_grid(records, "coco17", n_ids=3, n_per_id=4, seed=0, title="tiny")
    cells = [ax for ax in fig.axes if ax.images]
    assert len(cells) == 3 * 4
    assert all(any(isinstance(c, LineCollection) and len(c.get_segments()) for c in ax.collections) for ax in cells)
    bare = sample_grid(records, None, n_ids=2, n_per_id=2)
    assert all(not ax.collections for ax in bare.axes if ax.images)
    save_figure(fig, tmp_path / "out" / "samples.png", dpi=60)
    with Image.open(tmp_path / "out" / "samples.png") as im:
        assert im.format == "PNG" and im.size[0] > 200
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["samples.png"]  # no temp file left
