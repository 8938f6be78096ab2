"""The colour-histogram matcher: its descriptor checked by hand, its ranking on a case colour
solves, and the dataset claim: colour alone does not solve SynthDance."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from streid_core.evaluation.color_baseline import ColorHistogram, color_descriptor, rank_by_color
from streid_core.data.records import Record


def test_descriptor_by_hand():
    # Top half pure red, bottom half pure blue, two stripes, 8 x 4 x 4 HSV bins (256 levels each).
    image = np.zeros((8, 4, 3), np.uint8)
    image[:4] = (255, 0, 0)
    image[4:] = (0, 0, 255)
    hist = ColorHistogram(stripes=2, size=(8, 4))
    d = color_descriptor(image, hist)
    assert d.shape == (2 * 128,)
    # Red: H 0, S 255, V 255 -> bins (0, 255*4>>8 = 3, 3) -> code 0*16 + 3*4 + 3 = 15.
    # Blue: H 240/360*256 = 170 (OpenCV's HSV_FULL) -> 170*8>>8 = 5 -> code 5*16 + 15 = 95,
    # in the second stripe: 128 + 95 = 223. Each stripe is one full bin: sqrt(1) = 1.
    expected = np.zeros(256, np.float32)
    expected[[15, 223]] = 1.0
    np.testing.assert_array_equal(d, expected)


def test_descriptor_is_a_unit_root_histogram_per_stripe():
    rng = np.random.default_rng(0)
    hist = ColorHistogram()
    d = color_descriptor(rng.integers(0, 256, (256, 128, 3), dtype=np.uint8), hist)
    per_stripe = (d.reshape(hist.stripes, -1) ** 2).sum(1)
    np.testing.assert_allclose(per_stripe, 1.0, rtol=1e-5)  # squares of sqrt-histograms sum to 1


def _records(folder, colours):
    """Three frames per identity; identity i wears colours[i] (top, bottom) with pixel noise."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    records = []
    for pid, (top, bottom) in enumerate(colours):
        for frame in (0, 5, 10):
            img = np.zeros((64, 32, 3), np.float64)
            img[:32], img[32:] = top, bottom
            img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
            path = folder / f"{pid:04d}_{frame:06d}.jpg"
            Image.fromarray(img).save(path, quality=95)
            records.append(Record(str(path), pid, frame, frame, "v"))
    return records


def test_colour_solves_distinct_outfits_but_not_swapped_twins(tmp_path):
    red, blue, green, yellow = (200, 30, 30), (30, 30, 200), (30, 160, 40), (230, 210, 40)
    distinct = _records(tmp_path / "distinct", [(red, blue), (blue, red), (green, yellow), (yellow, green)])
    result = rank_by_color(distinct, distinct, "dancereid")
    # Stripes tell "red over blue" from "blue over red".
    assert result.rank1 == pytest.approx(1.0) and result.mAP == pytest.approx(1.0)
    twins = _records(tmp_path / "twins", [(red, blue), (red, blue), (green, yellow)])
    assert rank_by_color(twins, twins, "dancereid").rank1 < 0.9


@pytest.mark.slow
def test_colour_alone_does_not_solve_synthdance(tmp_path):
    """The default dataset (60 ids, 12 videos, 60 frames) at 64x32 to keep it quick: colour helps
    (far above chance) but does not solve it (the same statistic at 256x128: rank-1 about 0.35-0.55)."""
    from streid_core.data.dataset import load_dataset
    from streid_core.data.synth import SynthConfig, generate

    generate(tmp_path / "synthdance", SynthConfig(height=64, width=32), workers=2)
    ds = load_dataset(tmp_path / "synthdance")
    result = rank_by_color(ds.query, ds.gallery, ds.protocol)
    chance = 1 / len({r.pid for r in ds.query})
    assert result.rank1 < 0.9
    assert result.rank1 > 3 * chance and result.mAP > 3 * chance
