"""A side-by-side table of several trackers scored on one MOTChallenge-layout benchmark.

Each tracker is scored twice when TrackEval is installed: by streid's own CLEAR/identity code
(mot_eval) and by TrackEval, which adds HOTA. The table shows HOTA, DetA and AssA from
TrackEval and IDF1, MOTA, IDSW, FP and FN from streid's scorer, and flags any count on which the
two evaluators disagree (they should not; see mot_eval for the one known edge case).
"""
from __future__ import annotations

import math
from pathlib import Path

from ..errors import StreidError
from .mot_eval import combine_scores, score_sequence
from ..data.formats.mot import find_sequences, read_ground_truth, read_results, results_file
from .trackeval_runner import run_trackeval, trackeval_version

# Numbers both evaluators produce; they must agree.
CROSS_CHECKED = ("IDF1", "MOTA", "IDSW", "FP", "FN", "IDTP", "IDFP", "IDFN")
_TABLE_COLUMNS = (("HOTA", "trackeval"), ("DetA", "trackeval"), ("AssA", "trackeval"),
                  ("IDF1", "streid"), ("MOTA", "streid"), ("IDSW", "streid"), ("FP", "streid"), ("FN", "streid"))


def _disagreements(ours: dict, theirs: dict) -> list[str]:
    return [key for key in CROSS_CHECKED if not math.isclose(ours[key], theirs[key], rel_tol=1e-9, abs_tol=1e-9)]


def compare_trackers(gt_root: str | Path, results: dict[str, str | Path], use_trackeval: bool = True) -> dict:
    """Score every named results folder against the ground truth under `gt_root`.

    Returns a JSON-ready dict: the sequences, which evaluators ran, and per tracker its
    combined and per-sequence scores from each evaluator plus the names of any disagreeing
    numbers.
    """
    sequences = find_sequences(gt_root)
    results = {name: Path(folder) for name, folder in results.items()}
    for name, folder in results.items():
        if not folder.is_dir():
            raise StreidError(f"{folder}: results folder of {name!r} not found; expected <folder>/<seq>.txt files")
        for seq in sequences:
            if not results_file(folder, seq.name).is_file():
                raise StreidError(f"{results_file(folder, seq.name)}: missing results for sequence {seq.name!r}")

    trackers = []
    for name, folder in results.items():
        per_sequence = {}
        for seq in sequences:
            scores = score_sequence(read_ground_truth(seq.gt_path), read_results(results_file(folder, seq.name)),
                                    seq.seqinfo.seq_length, seq.name)
            per_sequence[seq.name] = scores
        trackers.append({
            "name": name,
            "results_dir": str(folder),
            "streid": combine_scores(list(per_sequence.values())).as_dict(),
            "trackeval": None,
            "per_sequence": {seq: {"streid": s.as_dict(), "trackeval": None} for seq, s in per_sequence.items()},
            "disagreements": [],
        })

    version = trackeval_version() if use_trackeval else None
    if version is not None:
        reference = run_trackeval(sequences, results)
        for tracker in trackers:
            theirs = reference[tracker["name"]]
            tracker["trackeval"] = theirs["COMBINED"]
            tracker["disagreements"] = _disagreements(tracker["streid"], theirs["COMBINED"])
            for seq, entry in tracker["per_sequence"].items():
                entry["trackeval"] = theirs[seq]

    return {
        "gt_root": str(gt_root),
        "sequences": [seq.name for seq in sequences],
        "iou_threshold": 0.5,
        "evaluators": {"streid": True, "trackeval": version},
        "trackers": trackers,
    }


def _cell(value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{100 * value:.1f}"


def render_markdown(comparison: dict) -> str:
    """The comparison as a markdown table (percentages for ratios) with a note on its sources."""
    header = "| Tracker | " + " | ".join(name for name, _ in _TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(_TABLE_COLUMNS) + 1)]
    for tracker in comparison["trackers"]:
        cells = []
        for name, source in _TABLE_COLUMNS:
            numbers = tracker[source]
            cells.append(_cell(None if numbers is None else numbers[name]))
        lines.append(f"| {tracker['name']} | " + " | ".join(cells) + " |")

    sequences = ", ".join(comparison["sequences"])
    lines.append("")
    version = comparison["evaluators"]["trackeval"]
    if version is None:
        lines.append(f"Sequences: {sequences}. Scored by streid's CLEAR-MOT/IDF1 code at IoU 0.5; "
                     "TrackEval was not run, so HOTA, DetA and AssA are missing.")
    else:
        lines.append(f"Sequences: {sequences}. HOTA, DetA, AssA from TrackEval {version}; IDF1, MOTA, IDSW, "
                     "FP, FN from streid's CLEAR-MOT/IDF1 code at IoU 0.5, cross-checked against TrackEval.")
        for tracker in comparison["trackers"]:
            if tracker["disagreements"]:
                lines.append(f"Warning: for {tracker['name']}, TrackEval and streid disagree on "
                             f"{', '.join(tracker['disagreements'])} (see the JSON).")
    return "\n".join(lines) + "\n"
