"""Figures of tracking results: an animated GIF of tracks in identity colours with their ID
switches marked, and a timeline of where each tracker's ID switches happen.

ID switches are the ones CLEAR-MOT counts (streid_core.tracking.mot_eval.id_switches): in the
switch's frame the person's new box gets a thick red outline, and a red banner names who
switched from which track to which; the banner stays up for a moment so the eye catches it.
"""
from __future__ import annotations

import colorsys
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SWITCH_RED = (230, 30, 30)
BANNER_FRAMES = 8  # frames a switch stays announced


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A bright colour per track id; consecutive ids get far-apart hues (golden-ratio steps)."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(255 * r), int(255 * g), int(255 * b)


def draw_tracks(image: Image.Image, boxes: np.ndarray, switched_tracks: set[int], banner: list[str],
                trails: dict[int, list[tuple[float, float]]]) -> Image.Image:
    """One annotated frame: `boxes` are results rows (frame, id, x, y, w, h, ...) of this frame."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    for track_id, points in trails.items():
        if len(points) > 1:
            draw.line(points, fill=track_colour(track_id), width=2)
    for row in boxes:
        track_id = int(row[1])
        x, y, w, h = (float(v) for v in row[2:6])
        colour = track_colour(track_id)
        if track_id in switched_tracks:
            draw.rectangle([x - 3, y - 3, x + w + 3, y + h + 3], outline=SWITCH_RED, width=4)
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=2)
        label = str(track_id)
        draw.rectangle([x, y - 11, x + 7 * len(label) + 4, y], fill=colour)
        draw.text((x + 2, y - 11), label, fill=(0, 0, 0))
    for k, line in enumerate(banner):
        draw.rectangle([0, 12 * k, out.width, 12 * k + 12], fill=SWITCH_RED)
        draw.text((4, 12 * k), line, fill=(255, 255, 255))
    return out


def tracks_gif(frames_dir: str | os.PathLike, results: np.ndarray, out: str | os.PathLike,
               switches: list[dict] | None = None, fps: float = 15.0, scale: float = 0.5,
               first_frame: int = 1, last_frame: int | None = None, trail: int = 20,
               image_ext: str = ".jpg") -> Path:
    """Write an animated GIF of tracker `results` (rows frame, id, x, y, w, h, ...) drawn over the
    frames <frames_dir>/000001.jpg ... from first_frame to last_frame (default: the last frame
    with an image), scaled by `scale`. `switches`: [{frame, gt_id, previous_track, track}], as
    benchmark.switch_events gives them. Returns the GIF's path (written atomically)."""
    from ..atomic import atomic_file

    frames_dir = Path(frames_dir)
    numbers = sorted(int(p.stem) for p in frames_dir.glob(f"*{image_ext}") if p.stem.isdigit())
    last_frame = max(numbers, default=0) if last_frame is None else last_frame
    numbers = [n for n in numbers if first_frame <= n <= last_frame]
    if not numbers:
        raise ValueError(f"{frames_dir}: no frames between {first_frame} and {last_frame}")
    results = np.asarray(results, dtype=np.float64)
    results = results if results.size else np.zeros((0, 7))
    per_frame = {int(f): results[results[:, 0] == f] for f in np.unique(results[:, 0])}
    switches = switches or []
    history: dict[int, list[tuple[float, float]]] = {}
    pictures = []
    for number in numbers:
        image = Image.open(frames_dir / f"{number:06d}{image_ext}").convert("RGB")
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
        rows = per_frame.get(number, np.zeros((0, 7))).copy()
        rows[:, 2:6] *= scale
        for row in rows:  # trails follow the feet (bottom centre of the box)
            history.setdefault(int(row[1]), []).append((row[2] + row[4] / 2, row[3] + row[5]))
        seen = {int(r[1]) for r in rows}
        trails = {t: p[-trail:] for t, p in history.items() if t in seen}
        now = [s for s in switches if s["frame"] == number]
        recent = [s for s in switches if number - BANNER_FRAMES < s["frame"] <= number]
        banner = [f"frame {s['frame']}: ID switch, person {s['gt_id']} track {s['previous_track']} -> {s['track']}"
                  for s in recent]
        picture = draw_tracks(image, rows, {s["track"] for s in now}, banner, trails)
        ImageDraw.Draw(picture).text((4, picture.height - 12), f"frame {number}", fill=(255, 255, 255))
        pictures.append(picture.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    out = Path(out)
    with atomic_file(out, "wb") as handle:
        pictures[0].save(handle, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=round(1000 / fps), loop=0, optimize=False)
    return out


def switch_timeline(comparison: dict, away: dict[str, list[tuple[int, int]]] | None = None):
    """A matplotlib figure: per sequence, a row per tracker with a mark at every ID switch, over
    grey spans where a dancer is out of the frame (`away`: {sequence: [(first, last) frame]},
    as synth_video.exit_spans gives them)."""
    import matplotlib.pyplot as plt

    sequences = comparison["sequences"]
    trackers = [t["name"] for t in comparison["trackers"]]
    fig, axes = plt.subplots(len(sequences), 1, figsize=(9, 0.6 + 0.45 * len(trackers) * len(sequences) + 0.5),
                             squeeze=False, sharex=True)
    for ax, seq in zip(axes[:, 0], sequences):
        spans = (away or {}).get(seq, [])
        for first, last in spans:
            ax.axvspan(first - 0.5, last + 0.5, color="0.5", alpha=0.2, lw=0)
        labels = []
        for row, tracker in enumerate(comparison["trackers"]):
            frames = [s["frame"] for s in tracker["id_switches"].get(seq, [])]
            ax.scatter(frames, [row] * len(frames), marker="|", s=160, color=f"C{row}")
            labels.append(f"{tracker['name']} ({len(frames)})")
        ax.set_yticks(range(len(trackers)), labels)
        ax.set_ylim(-0.7, len(trackers) - 0.3)
        ax.set_title(f"{seq}: ID switches" + (" (grey: a dancer is out of the frame)" if spans else ""), fontsize=9)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    return fig
