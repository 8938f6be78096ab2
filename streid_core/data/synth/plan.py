"""The plan of a dataset before anything is drawn: which identities dance in which video,
what they wear, which videos are held out for testing, and who is whose outfit twin.

Global pids are numbered video by video, as DanceReID numbers them. Train and test are split
by whole videos, so their identities are disjoint and every test identity keeps its video-mates
(the hard negatives that share its pose) in the test set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .appearance import Appearance, outfit_twin, sample_appearance, sample_theme
from .config import MAX_DANCERS, MIN_DANCERS, SynthConfig


@dataclass(frozen=True)
class VideoPlan:
    index: int
    key: str
    split: str  # "trainval" or "test"
    pids: tuple[int, ...]
    looks: tuple[Appearance, ...]
    frames: tuple[int, ...]  # raw frame numbers that are sampled
    themed: bool


@dataclass(frozen=True)
class DatasetPlan:
    videos: tuple[VideoPlan, ...]
    twins: tuple[tuple[int, int], ...]  # (pid, pid whose outfit it copies), always across videos

    def pids(self, split: str) -> list[int]:
        return sorted(p for v in self.videos if v.split == split for p in v.pids)


def _group_sizes(rng: np.random.Generator, ids: int, videos: int) -> list[int]:
    sizes = [MIN_DANCERS] * videos
    for _ in range(ids - MIN_DANCERS * videos):
        open_ = [v for v in range(videos) if sizes[v] < MAX_DANCERS]
        sizes[open_[int(rng.integers(len(open_)))]] += 1
    return sizes


def _test_videos(rng: np.random.Generator, sizes: list[int], fraction: float) -> set[int]:
    chosen: set[int] = set()
    for v in rng.permutation(len(sizes)):
        if len(chosen) == len(sizes) - 1 or (chosen and sum(sizes[c] for c in chosen) >= fraction * sum(sizes)):
            break
        chosen.add(int(v))
    return chosen


def plan_dataset(config: SynthConfig) -> DatasetPlan:
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0]))
    sizes = _group_sizes(rng, config.ids, config.videos)
    test = _test_videos(rng, sizes, config.test_fraction)
    themed = [bool(rng.random() < config.theme_fraction) for _ in sizes]
    looks: list[Appearance] = []
    video_of: list[int] = []
    for v, n in enumerate(sizes):
        theme = sample_theme(rng) if themed[v] else None
        looks.extend(sample_appearance(rng, theme) for _ in range(n))
        video_of.extend([v] * n)

    # Outfit twins: someone in another video of the same split wears nearly the same clothes.
    # An outfit appears at most once per video (twins are across videos, never within one), and a
    # dancer whose outfit was already copied keeps it.
    outfit = list(range(len(looks)))  # which original outfit each dancer wears
    copied: set[int] = set()
    twins = []
    for pid in range(len(looks)):
        if rng.random() >= config.twin_fraction or pid in copied:
            continue
        in_test = video_of[pid] in test
        worn_here = {outfit[m] for m in range(len(looks)) if video_of[m] == video_of[pid] and m != pid}
        candidates = [q for q in range(len(looks)) if video_of[q] != video_of[pid]
                      and (video_of[q] in test) == in_test and outfit[q] not in worn_here]
        if candidates:
            source = candidates[int(rng.integers(len(candidates)))]
            looks[pid] = outfit_twin(rng, looks[source])
            outfit[pid] = outfit[source]
            copied.add(source)
            twins.append((pid, source))

    videos, start = [], 0
    for v, n in enumerate(sizes):
        count = max(4, int(round(config.frames * rng.uniform(0.75, 1.25))))
        videos.append(
            VideoPlan(
                index=v,
                key=f"synth{v:03d}",
                split="test" if v in test else "trainval",
                pids=tuple(range(start, start + n)),
                looks=tuple(looks[start:start + n]),
                frames=tuple(range(0, count * config.frame_step, config.frame_step)),
                themed=themed[v],
            )
        )
        start += n
    return DatasetPlan(videos=tuple(videos), twins=tuple(twins))
