"""Score tracker results with TrackEval (the MOTChallenge reference code), HOTA included.

TrackEval is optional: `trackeval_version()` is None when it cannot be imported, and callers
fall back to streid's own CLEAR/identity scores. TrackEval 1.3.0 runs unchanged on numpy 2 for
the MOTChallenge 2D-box dataset and the HOTA, CLEAR and Identity metrics (checked), so no shim
is applied.

The inputs are first re-written into a temporary folder in the exact layout TrackEval expects,
from the files as streid reads them (the same defaults for short lines), so that both
evaluators score the same boxes; TrackEval's console chatter is swallowed.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from ..errors import StreidError
from ..data.formats.mot import (
    GroundTruthSequence,
    read_ground_truth,
    read_results,
    results_file,
    write_ground_truth,
    write_results,
)

_DATASET = "MotChallenge2DBox"
_CLASS = "pedestrian"


def trackeval_version() -> str | None:
    """The installed TrackEval version, or None when it does not import."""
    try:
        import trackeval  # noqa: F401
    except Exception:  # an ImportError, or an old TrackEval tripping over a newer numpy
        return None
    try:
        return metadata.version("trackeval")
    except metadata.PackageNotFoundError:
        return "unknown"


def _summary(metrics: dict) -> dict[str, float]:
    """The headline numbers of one TrackEval result; HOTA family averaged over its IoU thresholds."""
    hota, clear, identity = metrics["HOTA"], metrics["CLEAR"], metrics["Identity"]
    return {
        "HOTA": float(np.mean(hota["HOTA"])), "DetA": float(np.mean(hota["DetA"])),
        "AssA": float(np.mean(hota["AssA"])), "LocA": float(np.mean(hota["LocA"])),
        "IDF1": float(identity["IDF1"]), "IDTP": int(identity["IDTP"]), "IDFP": int(identity["IDFP"]),
        "IDFN": int(identity["IDFN"]), "MOTA": float(clear["MOTA"]), "MOTP": float(clear["MOTP"]),
        "IDSW": int(clear["IDSW"]), "TP": int(clear["CLR_TP"]), "FP": int(clear["CLR_FP"]),
        "FN": int(clear["CLR_FN"]),
    }


def run_trackeval(sequences: list[GroundTruthSequence],
                  results: dict[str, Path]) -> dict[str, dict[str, dict[str, float]]]:
    """TrackEval scores: {tracker name: {"COMBINED" or sequence name: summary numbers}}."""
    import trackeval

    with tempfile.TemporaryDirectory(prefix="streid-trackeval-") as tmp:
        root = Path(tmp)
        for seq in sequences:
            write_ground_truth(root / "gt" / seq.name / "gt" / "gt.txt", read_ground_truth(seq.gt_path))
        # Folders named by position: a tracker's display name need not be a valid folder name.
        folders = {f"tracker{i}": name for i, name in enumerate(results)}
        for folder, name in folders.items():
            for seq in sequences:
                rows = read_results(results_file(results[name], seq.name))
                write_results(root / "trackers" / folder / f"{seq.name}.txt", rows)

        eval_config = trackeval.Evaluator.get_default_eval_config()
        eval_config.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_CONFIG=False, TIME_PROGRESS=False,
                           OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False, LOG_ON_ERROR=None,
                           BREAK_ON_ERROR=True)
        dataset_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
        dataset_config.update(
            GT_FOLDER=str(root / "gt"), TRACKERS_FOLDER=str(root / "trackers"), OUTPUT_FOLDER=str(root / "out"),
            TRACKERS_TO_EVAL=list(folders), TRACKER_SUB_FOLDER="", OUTPUT_SUB_FOLDER="", SKIP_SPLIT_FOL=True,
            SEQ_INFO={seq.name: seq.seqinfo.seq_length for seq in sequences}, BENCHMARK="MOT17",
            DO_PREPROC=True, PRINT_CONFIG=False,
        )
        metric_config = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
        chatter = io.StringIO()
        try:
            with contextlib.redirect_stdout(chatter):
                output, _ = trackeval.Evaluator(eval_config).evaluate(
                    [trackeval.datasets.MotChallenge2DBox(dataset_config)],
                    [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(metric_config),
                     trackeval.metrics.Identity(metric_config)],
                )
        except trackeval.utils.TrackEvalException as exc:
            raise StreidError(f"TrackEval rejected the input: {str(exc).splitlines()[0]}") from None

    scores = {}
    for folder, name in folders.items():
        per_sequence = output[_DATASET][folder]
        scores[name] = {"COMBINED": _summary(per_sequence["COMBINED_SEQ"][_CLASS])}
        for seq in sequences:
            scores[name][seq.name] = _summary(per_sequence[seq.name][_CLASS])
    return scores
