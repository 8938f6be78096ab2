"""The pose-transfer explorer of notebook 04: pick a person and a target pose and watch a trained
ST-ReIDNet redraw the person in it.

    from streid_core.reporting.pose_explorer import PoseExplorer, pick_samples, render_gallery
    people = pick_samples(dataset.query, "coco17", 8, seed=0)
    poses = pick_samples(dataset.gallery, "coco17", 8, seed=1)
    explorer = PoseExplorer(PoseTransfer(checkpoint), people, poses, output_dir="reports/notebooks")
    explorer                      # in JupyterLab: dropdowns, joint sliders, the generated image
    render_gallery(model, people[:3], poses[:4], "reports/notebooks/04_gallery.png")   # headless

Every sample is brought onto the model's canvas once (the same bilinear resize and keypoint
truncation that PoseTransfer applies), so the pose the sliders edit is in canvas pixels — exactly
what G sees — and rendering it is identical to rendering the original image and keypoints.
"""
from __future__ import annotations

import io
import os
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image, ImageDraw

from ..data.images import load_image
from ..data.keypoints import KeypointConvention, convention, load_keypoints
from ..data.pose import keypoints_to_canvas
from ..data.records import Record
from ..data.transforms import resize
from ..errors import StreidError
from ..viz.figures import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..data.records import LoadedDataset

DISPLAY_HEIGHT = 256  # the explorer shows every image about this tall, whatever the model's canvas
# CSS classes the browser test finds the widgets by
GENERATED_CLASS, POSE_CLASS, JOINT_CLASS, SLIDER_CLASS = ("streid-generated", "streid-target-pose", "streid-joint-choice",
                                                          "streid-joint-slider")
# A run of fewer iterations than this has not yet learnt to draw people (real runs make thousands).
SMOKE_ITERATIONS = 100
LEFT, RIGHT, CENTRE, SELECTED = (31, 119, 255), (255, 127, 14), (44, 160, 44), (255, 230, 0)


class Renderer(Protocol):
    """What the explorer needs of a pose-transfer model (streid_core.models.pose_transfer.PoseTransfer)."""

    @property
    def image_size(self) -> tuple[int, int]: ...  # (height, width) of the canvas

    # source_keypoints: the source's own pose, which a G painting the source's limbs reads
    def render(self, source_image: Image.Image, target_keypoints: np.ndarray, *,
               source_keypoints: np.ndarray | None = None) -> Image.Image: ...

    def render_sequence(self, source_image: Image.Image, poses: Sequence[np.ndarray], *,
                        source_keypoints: np.ndarray | None = None) -> list[Image.Image]: ...


@dataclass(frozen=True)
class PoseSample:
    """A dataset image with its pose, as loaded from disk (image pixels, NaN = missing joint)."""

    label: str
    record: Record
    image: Image.Image
    keypoints: np.ndarray  # (K, 2) x, y

    @property
    def stem(self) -> str:
        return Path(self.record.path.split("::")[-1]).stem


PEOPLE_FROM = ("test", "train")


def explorer_people(dataset: "LoadedDataset", people_from: str, count: int, seed: int = 0) -> list[PoseSample]:
    """`count` source people for the explorer: "test", the query's dancers, whom G never saw;
    "train", the dancers G trained on, whom it draws recognisably (see reports/transfer-curve)."""
    if people_from not in PEOPLE_FROM:
        raise StreidError(f"people_from {people_from!r}: use 'test' (dancers G never saw) or 'train' (dancers it trained on)")
    from ..evaluation.pose_transfer import on_training_dancers

    pool = dataset.query if people_from == "test" else on_training_dancers(dataset).query
    return pick_samples(pool, dataset.keypoints, count, seed=seed)


def pick_samples(records: Sequence[Record], keypoints_convention: str | KeypointConvention, count: int,
                 seed: int = 0, min_joints: int = 12) -> list[PoseSample]:
    """Up to `count` images of different identities (drawn with `seed`), each with at least
    `min_joints` visible joints, loaded with their poses. Labels read "pid 12 · 0012_000045"."""
    conv = convention(keypoints_convention) if isinstance(keypoints_convention, str) else keypoints_convention
    with_pose = [r for r in records if r.pose_path]
    if not with_pose:
        raise StreidError("no image in the given records has a pose file; use a dataset with poses/ (e.g. `streid synth`)")
    rng = np.random.default_rng(seed)
    picked: list[PoseSample] = []
    seen: set[int] = set()
    for i in rng.permutation(len(with_pose)):
        record = with_pose[int(i)]
        if record.pid in seen:
            continue
        kps = load_keypoints(record.pose_path, conv)
        if int(np.isfinite(kps).all(axis=1).sum()) < min_joints:
            continue
        seen.add(record.pid)
        name = Path(record.path.split("::")[-1]).stem
        picked.append(PoseSample(f"pid {record.pid} · {name}", record, load_image(record.path), kps))
        if len(picked) == count:
            break
    if not picked:
        raise StreidError(f"no image has {min_joints} or more visible joints; lower min_joints")
    return picked


def to_canvas(sample: PoseSample, height: int, width: int) -> PoseSample:
    """The sample resized to the model's height x width canvas, its joints truncated to canvas
    pixels (outside the canvas = missing), as PoseTransfer would do it."""
    image, _ = resize(sample.image, None, height, width)
    kps = keypoints_to_canvas(sample.keypoints, sample.image.size, height, width)
    return replace(sample, image=image, keypoints=kps)


# ---------------------------------------------------------------- drawing


def _limb_colour(conv: KeypointConvention, a: int, b: int) -> tuple[int, int, int]:
    sides = {conv.names[a].split("_")[0], conv.names[b].split("_")[0]}
    return LEFT if sides == {"left"} else RIGHT if sides == {"right"} else CENTRE


def display_scale(height: int) -> int:
    """Whole-number magnification that brings a canvas `height` pixels tall near DISPLAY_HEIGHT."""
    return max(1, round(DISPLAY_HEIGHT / height))


def enlarge(image: Image.Image) -> Image.Image:
    """Nearest-neighbour magnification for display: tiny canvases stay sharp, pixels stay honest."""
    s = display_scale(image.height)
    return image if s == 1 else image.resize((image.width * s, image.height * s), Image.NEAREST)


def draw_pose(keypoints: np.ndarray, conv: KeypointConvention, height: int, width: int,
              background: Image.Image | None = None, selected: int | None = None) -> Image.Image:
    """The skeleton on a dark canvas (or on `background`), magnified for display; the
    `selected` joint is ringed. Keypoints are canvas pixels; a joint sits at its pixel's centre."""
    s = display_scale(height)
    base = background.resize((width, height)) if background is not None else Image.new("RGB", (width, height), (40, 40, 40))
    image = base.resize((width * s, height * s), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    centre = (np.asarray(keypoints, dtype=np.float64) + 0.5) * s
    line, dot = max(1, s), max(2, s + 1)
    for a, b in conv.limbs:
        if np.isfinite(centre[[a, b]]).all():
            draw.line([tuple(centre[a]), tuple(centre[b])], fill=_limb_colour(conv, a, b), width=line)
    for x, y in centre:
        if np.isfinite(x) and np.isfinite(y):
            draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=(255, 255, 255))
    if selected is not None and np.isfinite(centre[selected]).all():
        x, y = centre[selected]
        ring = 3 * dot
        draw.ellipse([x - ring, y - ring, x + ring, y + ring], outline=SELECTED, width=max(2, s // 2))
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def transfer_figure(source: PoseSample, pose: np.ndarray, generated: Image.Image, conv: KeypointConvention,
                    title: str) -> "Figure":
    """Three panels: the source person, the target pose, the generated image (canvas pixels)."""
    from matplotlib.figure import Figure

    height, width = generated.height, generated.width
    fig = Figure(figsize=(6.6, 4.6))
    axes = fig.subplots(1, 3)
    panels = (("source", enlarge(source.image)), ("target pose", draw_pose(pose, conv, height, width)),
              ("generated", enlarge(generated)))
    for ax, (name, image) in zip(axes, panels):
        ax.imshow(np.asarray(image))
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    return fig


# ---------------------------------------------------------------- headless gallery


@dataclass
class Gallery:
    path: Path
    sources: list[PoseSample]  # on the canvas
    targets: list[PoseSample]  # on the canvas
    images: np.ndarray  # (S, T, H, W, 3) uint8: source s drawn in target t's pose
    seconds_per_transfer: float


def render_gallery(renderer: Renderer, sources: Sequence[PoseSample], targets: Sequence[PoseSample],
                   path: str | os.PathLike, keypoints_convention: str | KeypointConvention = "coco17",
                   title: str | None = None) -> Gallery:
    """Every source person in every target pose, as a PNG grid: the first row shows the target
    poses over their own images, the first column the source people, cell (s, t) the transfer."""
    from matplotlib.figure import Figure

    if not sources or not targets:
        raise StreidError(f"gallery of {len(sources)} source(s) x {len(targets)} pose(s): need at least one of each")
    conv = convention(keypoints_convention) if isinstance(keypoints_convention, str) else keypoints_convention
    height, width = renderer.image_size
    sources = [to_canvas(s, height, width) for s in sources]
    targets = [to_canvas(t, height, width) for t in targets]
    start = time.perf_counter()
    rows = [renderer.render_sequence(s.image, [t.keypoints for t in targets], source_keypoints=s.keypoints)
            for s in sources]
    seconds = (time.perf_counter() - start) / (len(sources) * len(targets))
    images = np.stack([np.stack([np.asarray(im.convert("RGB")) for im in row]) for row in rows])

    cell = 1.3
    fig = Figure(figsize=(cell * (len(targets) + 1), cell * 2 * (len(sources) + 1) + (0.4 if title else 0)))
    axes = fig.subplots(len(sources) + 1, len(targets) + 1, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    axes[0, 0].text(0.5, 0.5, "person \u2193\npose \u2192", ha="center", va="center", fontsize=9)
    for t, target in enumerate(targets):
        axes[0, t + 1].imshow(np.asarray(draw_pose(target.keypoints, conv, height, width, background=target.image)))
        axes[0, t + 1].set_title(target.label, fontsize=6)
    for s, source in enumerate(sources):
        axes[s + 1, 0].imshow(np.asarray(enlarge(source.image)))
        axes[s + 1, 0].set_title(source.label, fontsize=6)
        for t in range(len(targets)):
            axes[s + 1, t + 1].imshow(np.asarray(enlarge(Image.fromarray(images[s, t]))))
    if title:
        fig.suptitle(textwrap.fill(title, 15 * (len(targets) + 1)), fontsize=8)
    return Gallery(save_figure(fig, path, dpi=100, tight=True), sources, targets, images, seconds)


def _mean_pairwise_difference(stack: np.ndarray) -> float:
    """Mean |a - b| / 255 over all pairs of images along axis 0 of (N, H, W, 3)."""
    n = stack.shape[0]
    values = stack.astype(np.float64) / 255.0
    return float(np.mean([np.abs(values[i] - values[j]).mean() for i in range(n) for j in range(i + 1, n)]))


def gallery_statistics(images: np.ndarray) -> dict[str, float]:
    """How much the generated image follows the pose and the person, both in [0, 1]:
    pose_variation: mean absolute pixel difference between renders of one person in different
    poses (averaged over people); person_variation: the same between different people in one
    pose (averaged over poses). A generator that ignores its pose input scores 0 on the first;
    one that ignores the person scores 0 on the second. A statistic needs two renders to compare,
    so it is left out when the gallery has one pose (or one person)."""
    images = np.asarray(images)
    stats: dict[str, float] = {}
    if images.shape[1] > 1:
        stats["pose_variation"] = float(np.mean([_mean_pairwise_difference(images[s]) for s in range(images.shape[0])]))
    if images.shape[0] > 1:
        stats["person_variation"] = float(np.mean([_mean_pairwise_difference(images[:, t]) for t in range(images.shape[1])]))
    return stats


# ---------------------------------------------------------------- the widget app


class PoseExplorer:
    """The interactive explorer (ipywidgets). Changing the source, the target pose, or a joint's
    x / y slider re-renders the generated image; "save figure" writes a PNG into output_dir.
    Display it by leaving it as the last expression of a cell (or `display(explorer)`)."""

    def __init__(self, renderer: Renderer, sources: Sequence[PoseSample], targets: Sequence[PoseSample],
                 output_dir: str | os.PathLike, keypoints_convention: str | KeypointConvention = "coco17",
                 model_label: str = "") -> None:
        try:
            import ipywidgets as w
        except ImportError:
            raise StreidError("the pose explorer needs ipywidgets: pip install 'streid[dev]' (or ipywidgets>=8)") from None
        if not sources or not targets:
            raise StreidError(f"explorer with {len(sources)} source(s) and {len(targets)} pose(s): need at least one of each")
        self.renderer = renderer
        self.conv = convention(keypoints_convention) if isinstance(keypoints_convention, str) else keypoints_convention
        self.height, self.width = renderer.image_size
        self.sources = [to_canvas(s, self.height, self.width) for s in sources]
        self.targets = [to_canvas(t, self.height, self.width) for t in targets]
        self.output_dir = Path(output_dir)
        self.pose = self.targets[0].keypoints.copy()  # the edited target pose, canvas pixels
        self.generated: Image.Image | None = None
        self._syncing = False  # True while the code moves the sliders, so that is not an edit

        self.source_choice = w.Dropdown(options=[(s.label, i) for i, s in enumerate(self.sources)], value=0,
                                        description="person")
        self.target_choice = w.Dropdown(options=[(t.label, i) for i, t in enumerate(self.targets)], value=0,
                                        description="pose of")
        self.joint_choice = w.Dropdown(options=[(n, k) for k, n in enumerate(self.conv.names)], value=0,
                                       description="joint")
        self.joint_x = w.IntSlider(0, 0, self.width - 1, description="x", continuous_update=False)
        self.joint_y = w.IntSlider(0, 0, self.height - 1, description="y", continuous_update=False)
        self.joint_shown = w.Checkbox(True, description="joint visible", indent=False)
        self.reset_button = w.Button(description="reset pose", tooltip="back to the chosen image's pose")
        self.save_button = w.Button(description="save figure", button_style="primary",
                                    tooltip=f"write a PNG into {self.output_dir}")
        self.status = w.HTML()
        self.source_image = w.Image(format="png")
        self.pose_image = w.Image(format="png")
        self.output_image = w.Image(format="png")
        self.output_image.add_class(GENERATED_CLASS)
        self.pose_image.add_class(POSE_CLASS)
        self.joint_choice.add_class(JOINT_CLASS)
        for slider in (self.joint_x, self.joint_y):
            slider.add_class(SLIDER_CLASS)

        self.source_choice.observe(lambda _: self.update(), names="value")
        self.target_choice.observe(lambda _: self.reset_pose(), names="value")
        self.joint_choice.observe(lambda _: self._sync_joint_controls(), names="value")
        self.joint_x.observe(lambda _: self._joint_moved(), names="value")
        self.joint_y.observe(lambda _: self._joint_moved(), names="value")
        self.joint_shown.observe(lambda _: self._joint_toggled(), names="value")
        self.reset_button.on_click(lambda _: self.reset_pose())
        self.save_button.on_click(lambda _: self._save_clicked())

        def captioned(image: Any, caption: str) -> Any:
            return w.VBox([w.HTML(f"<b>{caption}</b>"), image], layout=w.Layout(align_items="center"))

        header = w.HTML(f"<h3 style='margin:0'>Pose-transfer explorer</h3><div>{model_label}</div>")
        controls = w.VBox([self.source_choice, self.target_choice, self.joint_choice, self.joint_x, self.joint_y,
                           self.joint_shown, w.HBox([self.reset_button, self.save_button]), self.status],
                          layout=w.Layout(min_width="330px"))
        pictures = w.HBox([captioned(self.source_image, "person"), captioned(self.pose_image, "target pose"),
                           captioned(self.output_image, "generated")])
        self.widget = w.VBox([header, w.HBox([controls, pictures])])
        self.reset_pose()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def source(self) -> PoseSample:
        return self.sources[self.source_choice.value]

    @property
    def target(self) -> PoseSample:
        return self.targets[self.target_choice.value]

    @property
    def edited(self) -> bool:
        """True when the pose differs from the chosen target image's own pose."""
        return not np.array_equal(self.pose, self.target.keypoints, equal_nan=True)

    def reset_pose(self) -> None:
        """Take the pose of the chosen target image (dropping slider edits) and re-render."""
        self.pose = self.target.keypoints.copy()
        self._sync_joint_controls()
        self.update()

    def _sync_joint_controls(self) -> None:
        """Show the selected joint's position on the sliders (the canvas centre if it is missing)."""
        x, y = self.pose[self.joint_choice.value]
        shown = bool(np.isfinite(x) and np.isfinite(y))
        self._syncing = True
        try:
            self.joint_x.value = int(x) if shown else self.width // 2
            self.joint_y.value = int(y) if shown else self.height // 2
            self.joint_shown.value = shown
        finally:
            self._syncing = False
        self.pose_image.value = png_bytes(self._pose_picture())

    def _joint_moved(self) -> None:
        """A slider moved: the selected joint goes there (a missing joint reappears)."""
        if self._syncing:
            return
        self.pose[self.joint_choice.value] = (self.joint_x.value, self.joint_y.value)
        self._syncing = True
        try:
            self.joint_shown.value = True
        finally:
            self._syncing = False
        self.update()

    def _joint_toggled(self) -> None:
        if self._syncing:
            return
        joint = self.joint_choice.value
        self.pose[joint] = (self.joint_x.value, self.joint_y.value) if self.joint_shown.value else np.nan
        self.update()

    def _pose_picture(self) -> Image.Image:
        return draw_pose(self.pose, self.conv, self.height, self.width, selected=self.joint_choice.value)

    def update(self) -> None:
        """Re-render the generated image (and the pictures around it) from the current choices."""
        self.generated = self.renderer.render(self.source.image, self.pose, source_keypoints=self.source.keypoints)
        self.source_image.value = png_bytes(enlarge(self.source.image))
        self.pose_image.value = png_bytes(self._pose_picture())
        self.output_image.value = png_bytes(enlarge(self.generated))

    def save(self) -> Path:
        """Write source | target pose | generated as a PNG into output_dir; returns its path."""
        assert self.generated is not None  # the constructor renders once
        edited = self.edited
        title = f"{self.source.label}  in the pose of  {self.target.label}{' (edited)' if edited else ''}"
        name = f"04_transfer_{self.source.stem}_to_{self.target.stem}{'_edited' if edited else ''}.png"
        return save_figure(transfer_figure(self.source, self.pose, self.generated, self.conv, title),
                           self.output_dir / name, dpi=100, tight=True)

    def _save_clicked(self) -> None:
        import html

        try:
            self.status.value = f"saved <code>{html.escape(str(self.save()))}</code>"
        except (OSError, StreidError) as exc:  # shown where the user clicked, not lost in the widget log
            self.status.value = f"<span style='color:#c00'>could not save: {html.escape(str(exc))}</span>"


# ---------------------------------------------------------------- the model: describing it, or a smoke one


def describe_checkpoint(checkpoint: str | os.PathLike) -> str:
    """One line for the explorer's header: the file and how much training is behind it, so a
    blurry drawing from a few-iteration smoke model is not mistaken for the method's quality."""
    from ..models.loading import load_checkpoint
    from ..training.transfer_metrics import read_transfer_metrics

    state = load_checkpoint(checkpoint)
    epochs = int(state.get("epoch", 0))
    run = state.get("config") or {}
    per_epoch = run.get("max_iters_per_epoch")
    trained = f"{epochs} epoch(s)" + (f" of at most {per_epoch} iteration(s)" if per_epoch else "")
    measured = read_transfer_metrics(Path(checkpoint).parent)
    if measured:  # the run measured its drawings against the real frames (--transfer-eval-every)
        g = measured[-1]["generator"]
        note = (f"; at iteration {measured[-1]['iteration']}, on held-out dancers: pose accuracy {g['pose_accuracy']:.2f}, "
                f"identity accuracy {g['identity_accuracy']:.2f} (chance 0.50)")
    elif per_epoch and epochs * per_epoch < SMOKE_ITERATIONS:
        note = " (a smoke model: it has not learnt to draw people yet)"
    else:
        note = ""
    return f"{checkpoint}: ST-ReIDNet trained for {trained}{note}"



@dataclass(frozen=True)
class SmokeTraining:
    """A few iterations of ST-ReIDNet on a tiny dataset: enough for a real checkpoint whose
    networks run, nowhere near enough to draw people (pass a real run for that)."""

    iterations: int = 3
    batch_size: int = 2  # triplets
    arch: str = "resnet18"
    height: int = 64
    width: int = 32
    seed: int = 0


def ensure_smoke_checkpoint(checkpoint: str | os.PathLike, dataroot: str | os.PathLike, dataset: str,
                            training: SmokeTraining = SmokeTraining()) -> Path:
    """`checkpoint` if it exists; otherwise train one epoch of `training.iterations` iterations
    with `streid train`'s function into its folder (checkpoint = CHECKPOINTS/NAME/checkpoint.pth.tar)."""
    from ..training.checkpoint import CHECKPOINT_NAME
    from ..training.streidnet_config import StreidNetConfig, StreidNetRunConfig
    from ..training.streidnet_run import train_streidnet

    checkpoint = Path(checkpoint)
    if checkpoint.is_file():
        return checkpoint
    if checkpoint.name != CHECKPOINT_NAME:
        raise StreidError(f"{checkpoint}: not found; a smoke checkpoint to create must be named "
                          f"<folder>/<run name>/{CHECKPOINT_NAME}")
    model = StreidNetConfig(num_classes=0, arch=training.arch, height=training.height, width=training.width,
                            niter=1, niter_decay=0, lambda_recon=10.0, lambda_d=0.1, lambda_dp=0.1,
                            soft_margin=True, mask=True, device="cpu")
    train_streidnet(StreidNetRunConfig(
        model=model, dataset=dataset, dataroot=str(dataroot), checkpoints=str(checkpoint.parent.parent),
        name=checkpoint.parent.name, batch_size=training.batch_size, workers=0, seed=training.seed,
        max_iters_per_epoch=training.iterations, eval_step=1, save_step=1, display=None))
    return checkpoint
