"""Convert raw Market-1501 and DukeMTMC-reID into the open-reid layout, keeping the official
query/gallery image lists.

Raw layout: `bounding_box_train/`, `bounding_box_test/` and `query/`, with names
    Market-1501     PPPP_cCsS_FFFFFF_BB.jpg   (pid, camera 1-6, sequence, frame, box)
    DukeMTMC-reID   PPPP_cC_fFFFFFFF.jpg      (pid, camera 1-8, frame)

What the conversion does, as open-reid's own converters do (docs/original-system.md §6.1):
  - images are renamed `{pid:08d}_{cam:02d}_{idx:04d}.jpg` with 0-based cameras, registered in the
    order train, test, query (sorted names within each folder);
  - pid -1 ("junk") images are dropped; Market's pid 0000 distractors are kept in the gallery;
  - Market keeps its own pid numbers (identities has 1,502 slots on the full set); Duke's pids
    are re-indexed 0.. in order of first appearance, train first;
  - splits.json holds one split: trainval = train pids, query = query pids, gallery = test pids.

Open-reid evaluates by identity (every image of a query pid is a query). To also allow the
official image-level protocol, `official_split.json` keeps the converted names of the `query/`
images and of the (junk-free) `bounding_box_test/` images.

Every image is decoded before it is copied, and the output is built in a temporary folder that
replaces `dst` only when everything succeeded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...atomic import atomic_directory
from ...errors import StreidError
from .common import copy_verified, image_files, refuse_dst_over_input, refuse_existing, warn
from .openreid import OpenReidBuilder, write_openreid_files

SUBSETS = ("bounding_box_train", "bounding_box_test", "query")
JUNK_PID = -1


@dataclass(frozen=True)
class RawFormat:
    title: str
    meta_name: str
    num_cameras: int
    pattern: re.Pattern[str]  # groups: pid, camera (1-based)
    name_format: str
    reindex_pids: bool  # Duke: 0.. in order of first appearance; Market keeps its numbers
    num_slots: int  # identities pre-allocated (Market: 1,501 ids + background 0)
    max_pid: int | None
    published: dict[str, int]  # images per subset after junk removal


MARKET1501 = RawFormat(
    title="Market-1501",
    meta_name="Market1501",
    num_cameras=6,
    pattern=re.compile(r"^(-1|\d+)_c(\d+)s\d+_\d+_\d+\.jpg$"),
    name_format="PPPP_cCsS_FFFFFF_BB.jpg",
    reindex_pids=False,
    num_slots=1502,
    max_pid=1501,
    published={"train": 12936, "query": 3368, "gallery": 15913},
)

DUKEMTMC = RawFormat(
    title="DukeMTMC-reID",
    meta_name="DukeMTMC",
    num_cameras=8,
    pattern=re.compile(r"^(-1|\d+)_c(\d+)_f\d+\.jpg$"),
    name_format="PPPP_cC_fFFFFFFF.jpg",
    reindex_pids=True,
    num_slots=0,
    max_pid=None,
    published={"train": 16522, "query": 2228, "gallery": 17661},
)

_SUBSET_ROLE = {"bounding_box_train": "train", "bounding_box_test": "gallery", "query": "query"}


@dataclass(frozen=True)
class ConversionSummary:
    dst: Path
    images: dict[str, int]  # "train" / "query" / "gallery" -> images written
    ids: dict[str, int]  # same keys -> identities
    junk_dropped: int
    distractor_images: int  # Market pid 0 images kept in the gallery


def find_raw_dir(src: Path, fmt: RawFormat) -> Path:
    """The folder holding the three raw sub-folders: `src` itself or one of its children (so both
    `.../Market-1501-v15.09.15` and its parent work)."""
    fix = f"point --src at the extracted {fmt.title} folder (holding {', '.join(s + '/' for s in SUBSETS)})"
    if not src.is_dir():
        raise StreidError(f"{src}: not a folder; {fix}")
    if all((src / s).is_dir() for s in SUBSETS):
        return src
    children = [c for c in sorted(src.iterdir()) if c.is_dir() and all((c / s).is_dir() for s in SUBSETS)]
    if len(children) == 1:
        return children[0]
    if len(children) > 1:
        raise StreidError(f"{src}: holds several {fmt.title} copies ({', '.join(c.name for c in children)}); {fix}")
    missing = next(s for s in SUBSETS if not (src / s).is_dir())
    raise StreidError(f"{src / missing}: missing folder (also in every sub-folder of {src}); {fix}")


def _parse(raw: Path, fmt: RawFormat) -> tuple[list[tuple[str, Path, int, int]], int]:
    """All non-junk images as (role, path, raw pid, 0-based camera), and the junk count."""
    items: list[tuple[str, Path, int, int]] = []
    junk = 0
    for subset in SUBSETS:
        for name in image_files(raw / subset):
            match = fmt.pattern.match(name)
            path = raw / subset / name
            if match is None:
                raise StreidError(f"{path}: not a {fmt.title} name ({fmt.name_format}); remove or rename this file")
            pid, cam = int(match.group(1)), int(match.group(2))
            if pid == JUNK_PID:
                junk += 1
                continue
            if not 1 <= cam <= fmt.num_cameras:
                raise StreidError(f"{path}: camera {cam} outside 1..{fmt.num_cameras}; remove or rename this file")
            if fmt.max_pid is not None and pid > fmt.max_pid:
                raise StreidError(f"{path}: pid {pid} outside 0..{fmt.max_pid}; remove or rename this file")
            items.append((_SUBSET_ROLE[subset], path, pid, cam - 1))
    for role, subset in (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test")):
        if not any(item[0] == role for item in items):
            raise StreidError(f"{raw / subset}: holds no usable {fmt.title} images; the query/gallery/train sets cannot be empty")
    return items, junk


def convert_raw(fmt: RawFormat, src: Path, dst: Path, overwrite: bool = False) -> ConversionSummary:
    """Convert raw `src` (Market-1501 or DukeMTMC-reID per `fmt`) into the open-reid layout at `dst`."""
    from tqdm import tqdm

    refuse_dst_over_input(dst, src, f"--src {src}")
    refuse_existing(dst, overwrite)
    raw = find_raw_dir(src, fmt)
    refuse_dst_over_input(dst, raw, f"the {fmt.title} folder {raw}")
    items, junk = _parse(raw, fmt)

    new_pid: dict[int, int] = {}
    for _, _, pid, _ in items:  # train items come first, so train pids get the lowest numbers
        new_pid.setdefault(pid, len(new_pid) if fmt.reindex_pids else pid)
    builder = OpenReidBuilder(fmt.num_cameras, fmt.num_slots)
    pids: dict[str, set[int]] = {"train": set(), "query": set(), "gallery": set()}
    names: dict[str, list[str]] = {"train": [], "query": [], "gallery": []}
    with atomic_directory(dst, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        for role, path, raw_pid, cam in tqdm(items, desc=f"{fmt.title} -> {dst.name}", unit="img", disable=None):
            pid = new_pid[raw_pid]
            name = builder.add(pid, cam)
            copy_verified(path, tmp / "images" / name)
            pids[role].add(pid)
            names[role].append(name)
        if pids["train"] & pids["gallery"]:
            warn(f"{raw}: {len(pids['train'] & pids['gallery'])} pids are in both train and test; the split leaks identities")
        splits = [{"trainval": sorted(pids["train"]), "query": sorted(pids["query"]), "gallery": sorted(pids["gallery"])}]
        official = {"query": names["query"], "gallery": names["gallery"]}
        write_openreid_files(tmp, fmt.meta_name, builder, splits, official=official)

    counts = {role: len(n) for role, n in names.items()}
    _warn_if_not_published(fmt, counts)
    distractors = sum(1 for role, _, pid, _ in items if role == "gallery" and pid == 0 and not fmt.reindex_pids)
    return ConversionSummary(dst, counts, {r: len(p) for r, p in pids.items()}, junk, distractors)


def _warn_if_not_published(fmt: RawFormat, counts: dict[str, int]) -> None:
    differ = [f"{k} {counts[k]:,} (published {v:,})" for k, v in fmt.published.items() if counts[k] != v]
    if differ:
        warn(
            f"{fmt.title} image counts differ from the published totals: {', '.join(differ)}; "
            "expected for a subset, otherwise check that --src is complete"
        )


def convert_market1501(src: Path, dst: Path, overwrite: bool = False) -> ConversionSummary:
    return convert_raw(MARKET1501, Path(src), Path(dst), overwrite)


def convert_dukemtmc(src: Path, dst: Path, overwrite: bool = False) -> ConversionSummary:
    return convert_raw(DUKEMTMC, Path(src), Path(dst), overwrite)
