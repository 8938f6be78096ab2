"""The top of the demo's index.html: the headline numbers and the transfer gallery, before the
list of executed notebooks and figures.

Where each number comes from (files in the demo's output folder):

    colour histogram, baseline, ST-ReIDNet: R1 and mAP   05_metrics.json (notebook 05): "models" ->
        label -> protocol -> AP convention, and "color_baseline", all on the test split under the
        dataset's own protocol (the first of "protocols"); the AP convention shown is sklearn's
        (the paper's, and the colour baseline's) when notebook 05 computed it, else its first
    pose transfer (G, source unchanged, mean image, chance)   transfer_metrics.json: the report
        of `evaluation.pose_transfer` on the demo's ST-ReIDNet checkpoint, written by
        `write_demo_transfer` after the notebooks ran
    the same on the dancers G trained on                      transfer_metrics_seen.json (the
        training frames as query and gallery: `on_training_dancers`), written with it
    the transfer gallery                                      transfer_gallery.png (its example grid)

A missing file or model leaves a dash in its cells and a line saying what is missing: the page
is still written.
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_json

if TYPE_CHECKING:
    from .transfer_report import TransferMeasurement

REPORT_JSON = "05_metrics.json"
TRANSFER_JSON = "transfer_metrics.json"
TRANSFER_SEEN_JSON = "transfer_metrics_seen.json"
TRANSFER_GALLERY = "transfer_gallery.png"
REID_ROWS = (("colour histogram", None), ("baseline", "baseline"), ("ST-ReIDNet", "ST-ReIDNet"))
TRANSFER_COLUMNS = (("body_l1", "body L1 (lower is better)"), ("ssim", "SSIM"), ("ssim_body", "body SSIM"),
                    ("pose_accuracy", "pose accuracy"), ("identity_accuracy", "identity accuracy"),
                    ("rank1", "E rank-1"))
TRANSFER_ROWS = (("generator", "G(s, pose t) of ST-ReIDNet"), ("source", "source s unchanged"),
                 ("mean", "mean image"))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def reid_headline(report: dict[str, Any] | None) -> tuple[list[dict[str, Any]], str]:
    """Rows {"model", "R1", "mAP"} (fractions, None when missing) of the colour histogram, the
    baseline and ST-ReIDNet from notebook 05's metrics, and a caption naming protocol and AP."""
    report = report or {}
    protocol = (report.get("protocols") or [None])[0]
    conventions = report.get("ap_conventions") or []
    ap = "sklearn" if "sklearn" in conventions else (conventions[0] if conventions else None)
    models = report.get("models") or {}
    rows = []
    for label, key in REID_ROWS:
        if key is None:
            found = report.get("color_baseline") or {}
        else:
            found = ((models.get(key) or {}).get(protocol) or {}).get(ap) or {}
        rows.append({"model": label, "R1": found.get("R1"), "mAP": found.get("mAP")})
    caption = (f"Test split of {report.get('dataset', '?')}, {protocol or '?'} protocol, {ap or '?'} AP "
               f"(from {REPORT_JSON}, notebook 05).")
    return rows, caption


def _percent(value: float | None) -> str:
    return "&ndash;" if value is None else f"{100 * value:.1f}"


def _fraction(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.3f}"


def reid_table_html(rows: list[dict[str, Any]], caption: str) -> str:
    body = "\n".join(f"<tr><th>{html.escape(r['model'])}</th><td>{_percent(r['R1'])}</td>"
                     f"<td>{_percent(r['mAP'])}</td></tr>" for r in rows)
    return (f'<table class="headline" id="reid"><caption>{html.escape(caption)}</caption>\n'
            f"<tr><th>model</th><th>R1 (%)</th><th>mAP (%)</th></tr>\n{body}\n</table>")


def transfer_table_html(transfer: dict[str, Any] | None, source: str = TRANSFER_JSON, table_id: str = "transfer",
                        dancers: str = "test dancers") -> str:
    """G's row beside the two references and chance, from a PoseTransferReport.to_dict() read
    from `source`; `dancers` says whose frames the pairs are."""
    if not transfer or "scores" not in transfer:
        return f'<p class="missing">No pose-transfer measurement ({source} is missing).</p>'
    head = "".join(f"<th>{html.escape(name)}</th>" for _, name in TRANSFER_COLUMNS)
    lines = []
    for key, label in TRANSFER_ROWS:
        row = transfer["scores"].get(key) or {}
        lines.append(f"<tr><th>{html.escape(label)}</th>"
                     + "".join(f"<td>{_fraction(row.get(m))}</td>" for m, _ in TRANSFER_COLUMNS) + "</tr>")
    chance = transfer.get("chance") or {}
    lines.append("<tr><th>chance</th>" + "".join(f"<td>{_fraction(chance.get(m)) if m in chance else ''}</td>"
                                                 for m, _ in TRANSFER_COLUMNS) + "</tr>")
    height, width = transfer.get("image_size") or ("?", "?")
    caption = (f"Pose transfer of the demo's ST-ReIDNet checkpoint on {transfer.get('pairs', '?')} (source s, target "
               f"t) pairs of {transfer.get('dancers', '?')} {dancers} of {transfer.get('dataset', '?')} "
               f"({height}x{width}, seed {transfer.get('seed', '?')}), against the real frame t "
               f"(from {source}).")
    return (f'<table class="headline" id="{table_id}"><caption>{html.escape(caption)}</caption>\n'
            f"<tr><th>drawing</th>{head}</tr>\n" + "\n".join(lines) + "\n</table>")


TRANSFER_NOTE = (
    "Body L1: mean |drawn - real t| in [0, 1] RGB over t's body mask. SSIM: structural similarity with the real t "
    "(whole image; body: over the mask). Pose accuracy: how often the drawing in t's pose is closer to t than the "
    "same dancer drawn in their farthest other pose. Identity accuracy: how often it is closer than another dancer "
    "of the same video drawn in t's pose. E rank-1: the drawing, as a query, finds the dancer first among the real "
    "test gallery. Pose and identity accuracy: chance 0.5.")


SEEN_NOTE = (
    "G draws the people it trained on far better than new ones: it has learnt them by heart rather than reading "
    "every person's appearance from E's feature (reports/transfer-curve/README.md measures this; more training "
    "identities narrow the gap). Notebook 04's explorer offers test dancers, or with people_from='train' the "
    "dancers G trained on.")


def demo_headline(out_dir: str | os.PathLike) -> str:
    """The HTML that opens the demo's index.html, built from the files in `out_dir` (see the module doc)."""
    out_dir = Path(out_dir)
    rows, caption = reid_headline(_read(out_dir / REPORT_JSON))
    parts = ["<h2>Headline</h2>", reid_table_html(rows, caption)]
    missing = [r["model"] for r in rows if r["R1"] is None]
    if missing:
        parts.append(f'<p class="missing">Not measured: {html.escape(", ".join(missing))} '
                     f"({REPORT_JSON} lacks them).</p>")
    parts += ["<h2>Pose transfer, measured against the real frame</h2>",
              transfer_table_html(_read(out_dir / TRANSFER_JSON)), f"<p>{html.escape(TRANSFER_NOTE)}</p>"]
    parts += ["<h3>The same on the dancers G trained on</h3>",
              transfer_table_html(_read(out_dir / TRANSFER_SEEN_JSON), TRANSFER_SEEN_JSON, "transfer_seen",
                                  "training dancers (their frames as sources and targets)"),
              f"<p>{html.escape(SEEN_NOTE)}</p>"]
    if (out_dir / TRANSFER_GALLERY).is_file():
        parts.append(f'<figure><a href="{TRANSFER_GALLERY}">'
                     f'<img src="{TRANSFER_GALLERY}" alt="transfer gallery" style="max-width:100%"></a>'
                     "<figcaption>Rows: test pairs. Columns: source s | real t | G(s, pose t) | G(s, pose u), the "
                     "dancer's farthest other pose | G(o, pose t), another dancer of the video.</figcaption></figure>")
    return "\n".join(parts)


def write_demo_transfer(out_dir: str | os.PathLike, checkpoint: str | os.PathLike, dataset_root: str | os.PathLike, *,
                        pairs: int = 64, seed: int = 0, device: str = "cpu") -> "TransferMeasurement":
    """Measure the pose transfer of the demo's ST-ReIDNet `checkpoint` (read from its run's
    transfer cache when a notebook measured it with the same settings) and write
    `<out_dir>/transfer_metrics.json` (the full report, every pair included), the same on the
    training dancers as `transfer_metrics_seen.json`, and `<out_dir>/transfer_gallery.png`."""
    from ..data import load_dataset
    from ..evaluation.pose_transfer import on_training_dancers
    from .transfer_report import measure_transfer, write_grid

    out_dir = Path(out_dir)
    dataset = load_dataset(dataset_root)
    measurement = measure_transfer(checkpoint, dataset, pairs=pairs, seed=seed, device=device)
    seen = measure_transfer(checkpoint, on_training_dancers(dataset), pairs=pairs, seed=seed, device=device)
    for found, name, identities in ((measurement, TRANSFER_JSON, "test"), (seen, TRANSFER_SEEN_JSON, "train")):
        write_json(out_dir / name, {**found.report.to_dict(), "checkpoint": str(checkpoint),
                                    "dataset_root": str(dataset_root), "identities": identities})
    write_grid(measurement, out_dir / TRANSFER_GALLERY)
    return measurement
