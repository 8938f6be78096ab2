"""The dataset plan: group sizes, a split by whole videos, outfit twins across videos, and the
parameter checks users hit first."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from streid_core.data.synth import SynthConfig
from streid_core.data.synth.plan import plan_dataset
from streid_core.errors import StreidError


def test_default_plan_shape():
    cfg = SynthConfig()
    plan = plan_dataset(cfg)
    assert len(plan.videos) == cfg.videos
    assert sorted(p for v in plan.videos for p in v.pids) == list(range(cfg.ids))
    assert all(3 <= len(v.pids) <= 8 for v in plan.videos)
    train, test = set(plan.pids("trainval")), set(plan.pids("test"))
    assert not train & test and len(test) >= cfg.test_fraction * cfg.ids and len(train) > len(test)
    for v in plan.videos:
        assert v.frames[0] == 0 and np.all(np.diff(v.frames) == cfg.frame_step)
        assert 0.75 * cfg.frames - 1 <= len(v.frames) <= 1.25 * cfg.frames + 1


def _outfit(look):
    return np.array(look.top.color + look.top.color2 + look.bottom.color, dtype=float)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outfit_twins_are_across_videos_and_still_distinguishable(seed):
    plan = plan_dataset(SynthConfig(seed=seed))
    look = {p: l for v in plan.videos for p, l in zip(v.pids, v.looks)}
    video = {p: v for v in plan.videos for p in v.pids}
    assert len(plan.twins) >= 0.2 * len(look)
    assert any(video[p].split == "test" for p, _ in plan.twins), "the test split has twins"
    for pid, source in plan.twins:
        a, b = look[pid], look[source]
        assert video[pid].index != video[source].index and video[pid].split == video[source].split
        assert a.top.kind == b.top.kind and a.top.pattern == b.top.pattern and a.bottom.kind == b.bottom.kind
        assert np.abs(_outfit(a) - _outfit(b)).max() < 40  # nearly the same colours
        hair_colour = np.abs(np.subtract(a.hair.color, b.hair.color)).sum() >= 90
        skin = np.abs(np.subtract(a.skin, b.skin)).sum() >= 60
        assert hair_colour or (a.hair.style != b.hair.style and skin)  # the head tells them apart
    # Never two copies of one outfit inside a video.
    for v in plan.videos:
        outfits = [_outfit(l) for l in v.looks]
        for i in range(len(outfits)):
            for j in range(i + 1, len(outfits)):
                same_cut = v.looks[i].top.kind == v.looks[j].top.kind and v.looks[i].top.pattern == v.looks[j].top.pattern
                assert not (same_cut and np.abs(outfits[i] - outfits[j]).max() < 15 and not v.themed)


def test_plan_is_a_function_of_the_seed():
    assert plan_dataset(SynthConfig(seed=4)) == plan_dataset(SynthConfig(seed=4))
    assert plan_dataset(SynthConfig(seed=4)) != plan_dataset(SynthConfig(seed=5))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(ids=23, videos=8), "--ids 23"),
        (dict(ids=65, videos=8), "--ids 65"),
        (dict(videos=1, ids=4), "--videos 1"),
        (dict(width=8), "--width 8"),
        (dict(frames=3), "--frames 3"),
        (dict(frame_step=0), "--frame-step 0"),
        (dict(twin_fraction=1.5), "twin_fraction"),
    ],
)
def test_impossible_parameters_are_named(change, message):
    with pytest.raises(StreidError, match=message):
        replace(SynthConfig(), **change).validate()
