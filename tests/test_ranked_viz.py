"""Ranked-list figures and the failure-case picker, on hand-made rankings."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from _make_datasets import write_jpeg
from streid_core.data.records import Record
from streid_core.errors import StreidError
from streid_core.viz.figures import save_figure
from streid_core.viz.ranked import (FRAME_COLORS, JUNK, MATCH, WRONG, failure_cases, first_match_ranks, rank_gallery,
                                    ranked_list_figure)

# gallery (pid, camid) and the query's distances to it; the query is pid 1, camera 0.
GALLERY = [(1, 0), (2, 1), (1, 1), (3, 0), (1, 1)]
DISTANCES = np.array([0.0, 0.5, 0.7, 0.7, 0.9])


@pytest.fixture
def scene(tmp_path):
    gallery = [Record(str(write_jpeg(tmp_path / f"g{i}_p{pid}.jpg", pid, i)), pid, cam) for i, (pid, cam) in enumerate(GALLERY)]
    query = Record(str(write_jpeg(tmp_path / "query.jpg", 1, 99)), 1, 0)
    return query, gallery


def test_ranking_skips_junk_and_breaks_ties_by_gallery_order(scene):
    query, gallery = scene
    entries = rank_gallery(DISTANCES, query, gallery, top_k=3)
    # g0 is junk (same pid, same camera); g2 and g3 tie at 0.7, g2 comes first in the gallery
    assert [(e.index, e.judgement, e.rank) for e in entries] == [(1, WRONG, 1), (2, MATCH, 2), (3, WRONG, 3)]
    shown = rank_gallery(DISTANCES, query, gallery, top_k=3, show_junk=True)
    assert [(e.index, e.judgement, e.rank) for e in shown] == [(0, JUNK, None), (1, WRONG, 1), (2, MATCH, 2), (3, WRONG, 3)]
    assert len(rank_gallery(DISTANCES, query, gallery, top_k=50)) == 4  # all non-junk items


def test_figure_frames_and_names_each_gallery_image(scene, tmp_path):
    query, gallery = scene
    fig = ranked_list_figure(query, gallery, DISTANCES, top_k=3, show_junk=True, title="q")
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 5  # query + junk + 3 ranked
    frames = [to_hex(ax.spines["left"].get_edgecolor()) for ax in axes[1:]]
    assert frames == [FRAME_COLORS[k] for k in (JUNK, WRONG, MATCH, WRONG)]
    assert [ax.get_xlabel() for ax in axes] == ["query.jpg", "g0_p1.jpg", "g1_p2.jpg", "g2_p1.jpg", "g3_p3.jpg"]
    assert axes[3].get_title().startswith("#2")
    out = save_figure(fig, tmp_path / "figs" / "ranked.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["ranked.png"]


def test_first_match_ranks_and_failures_by_hand():
    g_pids, g_cams = np.array([p for p, _ in GALLERY]), np.array([c for _, c in GALLERY])
    q_pids, q_cams = np.array([1, 2, 7, 3]), np.array([0, 0, 0, 1])
    distmat = np.array([
        DISTANCES,                      # first positive g2 (0.7); g1 (0.5) is before it -> rank 2
        [0.3, 0.1, 0.2, 0.4, 0.5],      # pid 2: g1 is nearest -> rank 1
        [0.1, 0.2, 0.3, 0.4, 0.5],      # pid 7 has no gallery image -> 0 (not a valid query)
        [0.1, 0.2, 0.3, 0.4, 0.05],     # pid 3 (cam 1): g3 at 0.4; g4, g0, g1, g2 before -> rank 5
    ])
    ranks = first_match_ranks(distmat, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(ranks, [2, 1, 0, 5])
    np.testing.assert_array_equal(first_match_ranks(lambda s, e: distmat[s:e], q_pids, g_pids, q_cams, g_cams,
                                                    rows_per_chunk=1), ranks)
    np.testing.assert_array_equal(failure_cases(distmat, q_pids, g_pids, q_cams, g_cams), [3, 0])  # worst first
    np.testing.assert_array_equal(failure_cases(distmat, q_pids, g_pids, q_cams, g_cams, limit=1), [3])


def test_tie_between_a_positive_and_an_earlier_negative_counts_the_negative_first():
    # positive at index 1 and negative at index 0, both at 0.2: gallery order puts the negative first
    ranks = first_match_ranks(np.array([[0.2, 0.2]]), [1], [5, 1], [0], [1, 1])
    np.testing.assert_array_equal(ranks, [2])


def test_bad_inputs(scene):
    query, gallery = scene
    with pytest.raises(StreidError, match="one distance per gallery image"):
        rank_gallery(DISTANCES[:3], query, gallery)
    with pytest.raises(StreidError, match="at least one"):
        rank_gallery(DISTANCES, query, gallery, top_k=0)
