"""Notebook 05's evaluation: several checkpoints under every protocol and AP convention from
cached features, the CMC plot, the colour baseline with its distances, ranked-list grids and
the Markdown tables."""
import numpy as np
import pytest
from _make_checkpoint import make_checkpoint

from streid_core.data import load_dataset
from streid_core.evaluation.color_baseline import rank_by_color
from streid_core.data.synth import generate
from streid_core.evaluation.distance import evaluate_features
from streid_core.evaluation.features import extract_features
from streid_core.reporting.color_report import color_baseline
from streid_core.reporting.evaluation_report import (default_protocols, evaluate_checkpoints, sample_valid_queries,
                                                     subsample, worst_failures)
from streid_core.reporting.notebook_data import SYNTH_PRESETS, ensure_dataset
from streid_core.reporting.notebook_output import markdown_table, show_figure
from streid_core.models.loading import load_encoder
from streid_core.viz.cmc import chance_cmc, cmc_figure
from streid_core.viz.ranked import first_match_ranks, ranked_grid_figure


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("eval")
    ds = load_dataset(generate(root / "synthdance", SYNTH_PRESETS["smoke"]).root)
    checkpoints = {"a": make_checkpoint(root / "a.pth.tar", seed=0), "b": make_checkpoint(root / "b.pth.tar", seed=1)}
    report = evaluate_checkpoints(checkpoints, ds, root / "cache", ap_conventions=("sklearn", "trapezoid"))
    return root, ds, checkpoints, report


def test_every_model_protocol_and_ap_convention_matches_a_direct_evaluation(setup):
    _, ds, checkpoints, report = setup
    assert default_protocols(ds) == ["dancereid", "market1501"]
    encoder, (height, width) = load_encoder(checkpoints["b"])
    q, _, _ = extract_features(encoder, ds.query, height=height, width=width)
    g, _, _ = extract_features(encoder, ds.gallery, height=height, width=width)
    labels = ([r.pid for r in ds.query], [r.pid for r in ds.gallery], [r.camid for r in ds.query],
              [r.camid for r in ds.gallery])
    for protocol in ("dancereid", "market1501"):
        for ap in ("sklearn", "trapezoid"):
            direct = evaluate_features(q.numpy(), g.numpy(), *labels, protocol=protocol, ap=ap)
            ours = report.results["b"][protocol][ap]
            assert ours.mAP == pytest.approx(direct.mAP, abs=1e-6) and np.allclose(ours.cmc, direct.cmc, atol=1e-6)
    assert len(report.rows()) == 2 * 2 * 2
    assert report.headline("a") is report.results["a"]["dancereid"]["sklearn"]
    summary = report.as_dict()["b"]
    assert summary["checkpoint"] == str(checkpoints["b"]) and len(summary["market1501"]["cmc"]) == 20


def test_second_evaluation_reads_the_feature_cache(setup):
    root, ds, checkpoints, report = setup
    again = evaluate_checkpoints(checkpoints, ds, root / "cache", protocols=["market1501"], ap_conventions=("sklearn",))
    assert all(again.cache_hits.values()) and not any(report.cache_hits.values())
    np.testing.assert_array_equal(again.features["a"], report.features["a"])


def test_ranked_lists_show_valid_queries_and_failures_worst_first(setup):
    _, ds, _, report = setup
    ranks = first_match_ranks(report.distances("a"), *report.labels())
    shown = sample_valid_queries(report, "a", 3, seed=1)
    assert len(shown) == 3 and (ranks[shown] > 0).all()
    worst = worst_failures(report, "a", 4)
    assert (ranks[worst] > 1).all() and (np.diff(ranks[worst]) <= 0).all()
    fig = ranked_grid_figure(worst, report.query, report.gallery, report.distances("a"), top_k=5, title="t")
    assert len(fig.axes) == len(worst) * 6
    first_row_titles = [ax.get_title() for ax in fig.axes[:6]]
    assert first_row_titles[0].startswith("query id") and first_row_titles[1].startswith("#1 id")


def test_colour_baseline_keeps_the_distances_behind_its_ranking(setup):
    _, ds, _, _ = setup
    colour = color_baseline(ds.query, ds.gallery, ds.protocol)
    reference = rank_by_color(ds.query, ds.gallery, ds.protocol)
    assert colour.result.mAP == pytest.approx(reference.mAP) and np.allclose(colour.result.cmc, reference.cmc)
    assert colour.distances.shape == (len(ds.query), len(ds.gallery))
    ranks = first_match_ranks(colour.distances, [r.pid for r in ds.query], [r.pid for r in ds.gallery],
                              [r.camid for r in ds.query], [r.camid for r in ds.gallery])
    failures = colour.failures(3)
    assert len(failures) == min(3, (ranks > 1).sum()) and (ranks[failures] > 1).all()


def test_cmc_plot_and_chance_curve(tmp_path, setup):
    _, _, _, report = setup
    # 4 identities, one image each competing: the true one is at rank k with probability 1/4
    np.testing.assert_allclose(chance_cmc(4, 5), [0.25, 0.5, 0.75, 1.0, 1.0])
    fig = cmc_figure({"a": report.headline("a"), "plain": [0.5, 0.9, 1.0]}, max_rank=10, chance_ids=4)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[0].startswith("a: R1") and "mAP" in labels[0] and labels[1] == "plain: R1 50.0"
    assert labels[2] == "chance (4 identities)"
    assert show_figure(fig, tmp_path / "cmc.png") == tmp_path / "cmc.png" and (tmp_path / "cmc.png").stat().st_size > 0


def test_markdown_table_shows_rates_as_percentages():
    rows = [{"model": "a", "R1": 0.5, "mAP": 0.25}, {"model": "b", "R1": 1.0, "mAP": 0.125}]
    assert markdown_table(rows, percent=("R1", "mAP")).splitlines() == [
        "| model | R1 | mAP |", "|---|---:|---:|", "| a | 50.0 | 25.0 |", "| b | 100.0 | 12.5 |"]
    assert markdown_table([]) == ""


def test_subsample_and_missing_datasets_are_generated_once(tmp_path):
    assert subsample(list(range(5)), 10).tolist() == [0, 1, 2, 3, 4]
    picked = subsample(list(range(100)), 10, seed=3)
    assert len(picked) == 10 and (np.diff(picked) > 0).all()
    root = ensure_dataset(tmp_path, "SynthDance-Smoke")
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert ensure_dataset(tmp_path, "synthdance-smoke") == root  # found again, case-insensitively
    assert (root / "meta.json").stat().st_mtime_ns == stamp
    from streid_core.errors import StreidError

    with pytest.raises(StreidError, match="not found"):
        ensure_dataset(tmp_path, "market1501", synth_preset=None)
