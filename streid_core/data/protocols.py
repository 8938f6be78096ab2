"""What a dataset's evaluation protocol is: open-reid's `cmc` flags and their presets, by name.

A dataset names its protocol (`LoadedDataset.protocol`), and some protocols constrain the split
(DanceReID's needs query = gallery), so the definitions live with the data; the scoring that
follows them is `evaluation.protocols`.

ST-ReIDNet evaluates with open-reid (docs/original-system.md §7): mAP through sklearn's
`average_precision_score` on the junk-removed ranking, and a CMC controlled by three flags:

    separate_camera_set  drop every gallery item from the query's camera (not only the
                         same-identity ones) from the CMC ranking.
    single_gallery_shot  per query and repeat, keep one randomly chosen gallery item per
                         identity; the CMC is the mean over `repeats` draws.
    first_match_break    count only the first positive (the usual CMC). Without it every
                         positive adds 1/#positives at its position among the *negatives*
                         ("allshots"), a different metric (45.1 vs 95.1 R1 measured on Market).

Presets, by name:
    market1501  first_match_break only: the standard CMC (same as `evaluate_rank`).
    cuhk03      separate_camera_set + single_gallery_shot (CUHK03 classic).
    dancereid   the cuhk03 flags on DanceReID, where query set = gallery set and the camera
                slot holds the frame index: the mAP excludes only the query itself (same
                dancer, same frame), the CMC drops every image of the query's frame number.
    allshots    no flag; open-reid returns its top-1 for model selection.

mAP and mINP are always computed on the ranking with only same-pid same-camera junk removed
(separate_camera_set and sampling affect the CMC alone), with the protocol's AP convention:
"sklearn" for all presets, as open-reid computes it; pass `ap=` to choose another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..errors import StreidError

FLAG_NAMES = ("separate_camera_set", "single_gallery_shot", "first_match_break")


@dataclass(frozen=True)
class Protocol:
    """open-reid's CMC flags plus the AP convention used for mAP."""

    name: str
    separate_camera_set: bool = False
    single_gallery_shot: bool = False
    first_match_break: bool = True
    ap: str = "sklearn"
    same_sets: bool = False  # query set must equal gallery set (DanceReID)


PRESETS: dict[str, Protocol] = {
    "market1501": Protocol("market1501", first_match_break=True),
    "cuhk03": Protocol("cuhk03", separate_camera_set=True, single_gallery_shot=True,
                       first_match_break=False),
    "dancereid": Protocol("dancereid", separate_camera_set=True, single_gallery_shot=True,
                          first_match_break=False, same_sets=True),
    "allshots": Protocol("allshots", first_match_break=False),
}

PROTOCOLS: dict[str, str] = {
    "market1501": "standard CMC (first match) and mAP; same-pid same-camera gallery items are junk",
    "cuhk03": "CMC with the query camera removed and one random image per identity (10 seeded "
              "repeats); mAP as market1501",
    "dancereid": "query = gallery, camera slot = frame: mAP excludes only the query itself, CMC as "
                 "cuhk03 (every image of the query's frame number removed)",
    "allshots": "open-reid's all-shots CMC: every positive counts at its position among negatives "
                "(open-reid's model-selection score); mAP as market1501",
}


def resolve_protocol(protocol: str | Protocol | Mapping) -> Protocol:
    """A preset name, a '+'-joined flag list ('separate_camera_set+first_match_break'), a
    mapping of flags, or a Protocol."""
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, Mapping):
        unknown = set(protocol) - set(FLAG_NAMES) - {"ap"}
        if unknown:
            raise StreidError(f"unknown protocol flag(s) {sorted(unknown)}; use {', '.join(FLAG_NAMES)}")
        flags = {k: bool(protocol.get(k, False)) for k in FLAG_NAMES}
        name = "+".join(k for k in FLAG_NAMES if flags[k]) or "allshots"
        return Protocol(name, ap=protocol.get("ap", "sklearn"), **flags)
    if isinstance(protocol, str):
        key = protocol.strip().lower()
        if key in PRESETS:
            return PRESETS[key]
        parts = [p.strip() for p in key.split("+") if p.strip()]
        if parts and all(p in FLAG_NAMES for p in parts):
            return Protocol("+".join(p for p in FLAG_NAMES if p in parts),
                            **{k: k in parts for k in FLAG_NAMES})
    raise StreidError(f"unknown protocol {protocol!r}; use a preset ({', '.join(PRESETS)}) or flags "
                      f"joined by '+' ({', '.join(FLAG_NAMES)})")
