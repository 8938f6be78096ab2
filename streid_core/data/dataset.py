"""Load any prepared dataset into train/val/trainval/query/gallery records, find dataset folders
by name, and summarise or fully check a dataset.

The layout (open-reid, with or without FD-GAN poses and streid's extra files; DanceReID flat,
split-folder or -h5) is detected from the folder itself; see `streid_core.data.formats`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import StreidError
from .formats import DatasetIndex, read_index
from .formats.openreid import OFFICIAL_SPLIT_FILE
from .records import LoadedDataset, Record

QUERY_MODES = ("official", "identity")

# How to obtain each dataset name the CLI knows, for the "not found" message.
_HOW_TO_GET = {
    "synthdance": "generate it with `streid synth`",
    "market1501": "convert the raw download with `streid prepare market1501 --src RAW --dst {dir}/market1501`",
    "dukemtmc": "convert the raw download with `streid prepare dukemtmc --src RAW --dst {dir}/dukemtmc`",
    "dancereid": "build it with DanceReID's gen_DanceReID.py (github.com/azuxmioy/DanceReID) into {dir}/DanceReID",
    "cuhk03": "put open-reid's prepared cuhk03 folder at {dir}/cuhk03",
}
_HOW_TO_GET_OTHER = "prepare your own images with `streid prepare folder --src DIR --dst {dir}/{name}`"


def resolve_dataset_dir(data_dir: str | os.PathLike, name: str) -> Path:
    """The folder for dataset `name` under `data_dir`, matched case-insensitively (so the README's
    `-d DanceReid` finds `DanceReID/`). Not found: a StreidError listing what is there and how to
    get the dataset."""
    data_dir = Path(data_dir)
    how = _HOW_TO_GET.get(name.lower(), _HOW_TO_GET_OTHER).format(dir=data_dir, name=name)
    if not data_dir.is_dir():
        raise StreidError(f"{data_dir}: data folder does not exist; {how}")
    folders = sorted(p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if name in folders:
        return data_dir / name
    matches = [f for f in folders if f.lower() == name.lower()]
    if len(matches) == 1:
        return data_dir / matches[0]
    if matches:
        raise StreidError(f"{data_dir}: several folders match {name!r} ({', '.join(matches)}); pass the exact name")
    present = ", ".join(folders) if folders else "nothing"
    raise StreidError(f"{data_dir / name}: dataset {name!r} not found ({data_dir} holds: {present}); {how}")


def default_num_val(preset: int, num_trainval_ids: int) -> int:
    """Validation identities cut from trainval: the original value (10 for DanceReID, 100 for
    open-reid's Market/Duke/CUHK03 and custom data) but never more than a fifth of the trainval
    identities, so tiny datasets keep at least 80 % of them for training (10 ids -> 2 val ids,
    4 ids -> none). On the real datasets the original values stand (71 // 5 = 14 >= 10)."""
    return min(preset, num_trainval_ids // 5)


def _records(index: DatasetIndex, pids: list[int]) -> list[Record]:
    return [r for pid in pids for r in index.identities[pid]]


def _check_split_pids(index: DatasetIndex, split: int) -> None:
    for key in ("trainval", "query", "gallery"):
        unknown = [p for p in index.splits[split][key] if p not in index.identities]
        if unknown:
            raise StreidError(
                f"{index.splits_file}: split {split} {key} pid {unknown[0]} has no images in meta.json; fix the split"
            )


def build_dataset(
    index: DatasetIndex,
    split: int = 0,
    combine_trainval: bool = False,
    num_val: int | None = None,
    query_mode: str | None = None,
) -> LoadedDataset:
    """`load_dataset` on an already read index (see there)."""
    num_splits = len(index.splits)
    if not 0 <= split < num_splits:
        raise StreidError(
            f"{index.splits_file}: split {split} out of range, the file holds {num_splits} split(s); "
            f"use --split {'0' if num_splits == 1 else f'0..{num_splits - 1}'}"
        )
    _check_split_pids(index, split)
    chosen = index.splits[split]
    trainval_pids = sorted(set(chosen["trainval"]))
    if num_val is None:
        num_val = default_num_val(index.default_num_val, len(trainval_pids))
    elif not 0 <= num_val < max(len(trainval_pids), 1):
        raise StreidError(
            f"num_val {num_val}: must be in 0..{max(len(trainval_pids) - 1, 0)} "
            f"(split {split} has {len(trainval_pids)} trainval identities)"
        )
    cut = len(trainval_pids) - num_val

    if query_mode is None:
        query_mode = "official" if index.official is not None else "identity"
    if query_mode not in QUERY_MODES:
        raise StreidError(f"query mode {query_mode!r}: use one of {', '.join(QUERY_MODES)}")
    if query_mode == "official":
        if index.official is None:
            raise StreidError(
                f"{index.root / OFFICIAL_SPLIT_FILE}: missing, so there are no official query/gallery lists "
                "(`streid prepare market1501|dukemtmc` writes them); use query mode 'identity'"
            )
        query, gallery, source = index.official["query"], index.official["gallery"], index.root / OFFICIAL_SPLIT_FILE
    else:
        query, gallery = _records(index, chosen["query"]), _records(index, chosen["gallery"])
        source = index.splits_file
    for role, records in (("query", query), ("gallery", gallery)):
        if not records:
            raise StreidError(f"{source}: split {split} has an empty {role} set; list {role} identities with images")

    return LoadedDataset(
        name=index.name,
        root=index.root,
        keypoints=index.keypoints,
        protocol=index.protocol,
        train=_records(index, trainval_pids[:cut]),
        val=_records(index, trainval_pids[cut:]),
        trainval=_records(index, trainval_pids),
        query=list(query),
        gallery=list(gallery),
        combine_trainval=combine_trainval,
        videos={k: list(v) for k, v in index.videos.items()},
        split=split,
        split_sources={"trainval": index.splits_file, "query": source, "gallery": source},
    )


def load_dataset(
    root: str | os.PathLike,
    split: int = 0,
    combine_trainval: bool = False,
    num_val: int | None = None,
    query_mode: str | None = None,
) -> LoadedDataset:
    """Load the prepared dataset at `root`, whatever its layout.

    train is trainval minus its last `num_val` identities (in pid order, as ST-ReIDNet's loader
    does); by default num_val is 10 for DanceReID and 100 for open-reid data, capped at a fifth of
    the trainval identities for tiny datasets (see `default_num_val`). Records keep the dataset's
    own pids everywhere and carry absolute paths; pose_path is set where a pose exists.

    query_mode: "official" uses the image lists of official_split.json (the default when that file
    exists, e.g. after `streid prepare market1501`); "identity" is open-reid's protocol: every image
    of every query pid is a query, every image of every gallery pid a gallery image.

    No image is decoded here (that is `validate`'s job), so loading stays fast.
    """
    return build_dataset(read_index(Path(root)), split, combine_trainval, num_val, query_mode)


@dataclass(frozen=True)
class ValidationResult:
    images: int  # images decoded
    poses: int  # pose files (or HDF5 pose entries) parsed


def validate(root: str | os.PathLike, progress: bool = True) -> ValidationResult:
    """Check everything `load_dataset` trusts: decode every image, parse every pose (and see that
    its joints fall on its image, `validation.pose_problem`), and build
    every split and check its semantics (`validation.split_problems`: no test identity in
    trainval, no duplicated query/gallery entry, every query identity matched from another
    camera). Problems are collected; the StreidError names the first and counts the rest."""
    from tqdm import tqdm

    from .images import load_image
    from .keypoints import convention
    from .validation import pose_problem, split_problems

    index = read_index(Path(root))
    problems: list[str] = []
    for split in range(len(index.splits)):
        problems += split_problems(build_dataset(index, split))
    conv = convention(index.keypoints) if index.keypoints != "none" else None
    images = poses = 0
    for record in tqdm(index.all_records(), desc=f"checking {index.name}", unit="img", disable=None if progress else True):
        size = None
        try:
            size = load_image(record.path).size
            images += 1
        except StreidError as exc:
            problems.append(str(exc))
        if record.pose_path and conv is not None:
            problem = pose_problem(record.pose_path, conv, record.path, size)
            if problem:
                problems.append(problem)
            else:
                poses += 1
    if problems:
        more = f" [{len(problems) - 1} more problem(s) found]" if len(problems) > 1 else ""
        raise StreidError(problems[0] + more)
    return ValidationResult(images, poses)


def _id_range(pids: list[int]) -> str:
    pids = sorted(pids)
    if pids and pids == list(range(pids[0], pids[-1] + 1)) and len(pids) > 2:
        return f"{pids[0]}-{pids[-1]}"
    return ",".join(map(str, pids))


def summarize(root: str | os.PathLike, split: int = 0) -> str:
    """A readable summary of the dataset at `root`: layout, protocol, keypoints and pose coverage,
    cameras, videos, and images/identities per subset of `split`."""
    index = read_index(Path(root))
    ds = build_dataset(index, split)
    everything = index.all_records()
    with_pose = sum(1 for r in everything if r.pose_path)
    coverage = f"{with_pose:,} of {len(everything):,} images have a pose" if everything else "no images"
    cameras = sorted({r.camid for r in everything})
    lines = [
        f"{index.name}  ({index.root})",
        f"  layout      {index.layout}",
        f"  protocol    {index.protocol} (default evaluation preset)",
        f"  keypoints   {index.keypoints}; {coverage}",
        f"  cameras     {index.camera_note}; {len(cameras):,} distinct camera ids",
        f"  splits      {len(index.splits)} in {index.splits_file.name}; showing split {split}",
    ]
    if index.videos:
        shown = ", ".join(f"{v} (pids {_id_range(p)})" for v, p in list(index.videos.items())[:6])
        more = f", ... {len(index.videos) - 6} more" if len(index.videos) > 6 else ""
        lines.append(f"  videos      {len(index.videos)}: {shown}{more}")
    else:
        lines.append("  videos      none")
    rows: list[tuple[str, list[Record]]] = [
        ("train", ds.train), ("val", ds.val), ("trainval", ds.trainval),
    ]
    if index.official is not None:
        rows += [("query (official)", ds.query), ("gallery (official)", ds.gallery)]
        identity = build_dataset(index, split, query_mode="identity")
        rows += [("query (identity)", identity.query), ("gallery (identity)", identity.gallery)]
    else:
        rows += [("query", ds.query), ("gallery", ds.gallery)]
    lines.append(f"  {'subset':<20}{'ids':>7}{'images':>10}")
    for label, records in rows:
        lines.append(f"  {label:<20}{len({r.pid for r in records}):>7,}{len(records):>10,}")
    return "\n".join(lines)
