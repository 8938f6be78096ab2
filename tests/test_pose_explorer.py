"""The pose-transfer explorer's logic without a browser: widgets drive the rendering, the figure
is saved, the headless gallery has the promised layout and statistics."""
import json

import numpy as np
import pytest
from PIL import Image

from _locality import LOCAL_CHANGE, change_near_joint
from _make_streid_batch import HEIGHT, WIDTH, one_thread
from _make_synth import TINY
from _make_transfer_checkpoint import make_transfer_checkpoint
from streid_core.data.dataset import load_dataset
from streid_core.data.keypoints import COCO17
from streid_core.data.synth import generate
from streid_core.errors import StreidError
from streid_core.reporting.pose_explorer import (
    PoseExplorer,
    SmokeTraining,
    describe_checkpoint,
    enlarge,
    ensure_smoke_checkpoint,
    explorer_people,
    gallery_statistics,
    pick_samples,
    render_gallery,
)
from streid_core.models.pose_transfer import PoseTransfer
from streid_core.training.transfer_metrics import TRANSFER_METRICS_FILE

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)
LEFT_WRIST = COCO17.names.index("left_wrist")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny SynthDance set (64x32 crops, the model's canvas size; other sizes are checked in
    test_choices_render_what_the_original_image_and_pose_give) and a random tiny model."""
    root = tmp_path_factory.mktemp("explorer")
    generate(root / "data" / "synthdance", TINY, workers=1)
    dataset = load_dataset(root / "data" / "synthdance")
    model = PoseTransfer(make_transfer_checkpoint(root / "checkpoint.pth.tar"))
    people = pick_samples(dataset.query, "coco17", 3, seed=0)
    poses = pick_samples(dataset.gallery, "coco17", 3, seed=1)
    return root, dataset, model, people, poses


def _decoded(png: bytes) -> np.ndarray:
    import io

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_pick_samples_gives_distinct_people_with_enough_joints(world):
    _, dataset, _, people, _ = world
    assert len({p.record.pid for p in people}) == 3
    for p in people:
        assert np.isfinite(p.keypoints).all(axis=1).sum() >= 12
        assert p.label.startswith(f"pid {p.record.pid} · ")
    with pytest.raises(StreidError, match="has a pose file"):
        pick_samples([r.__class__(r.path, r.pid, r.camid) for r in dataset.query[:3]], "coco17", 2)


def test_the_explorer_offers_test_dancers_or_the_dancers_g_trained_on(world):
    _, dataset, _, _, _ = world
    trained_on = {r.pid for r in dataset.train or dataset.trainval}
    unseen = explorer_people(dataset, "test", 3, seed=0)
    seen = explorer_people(dataset, "train", 3, seed=0)
    assert len({p.record.pid for p in seen}) == 3 and {p.record.pid for p in seen} <= trained_on
    assert not {p.record.pid for p in unseen} & trained_on
    assert [p.record.path for p in unseen] == [p.record.path for p in pick_samples(dataset.query, "coco17", 3, seed=0)]
    with pytest.raises(StreidError, match="people_from 'val': use 'test'"):
        explorer_people(dataset, "val", 3)


def test_moving_a_joint_slider_rerenders_the_edited_pose(world):
    root, _, model, people, poses = world
    explorer = PoseExplorer(model, people, poses, root / "out")
    before, pose_before = explorer.output_image.value, explorer.pose_image.value
    explorer.joint_choice.value = LEFT_WRIST
    x, y = explorer.pose[LEFT_WRIST]
    assert (explorer.joint_x.value, explorer.joint_y.value) == (int(x), int(y))  # sliders show the joint

    explorer.joint_x.value = (int(x) + 10) % WIDTH
    assert tuple(explorer.pose[LEFT_WRIST]) == ((int(x) + 10) % WIDTH, int(y))
    assert explorer.output_image.value != before and explorer.pose_image.value != pose_before
    expected = model.render(explorer.source.image, explorer.pose)  # what is shown is G on the edited pose
    assert np.array_equal(_decoded(explorer.output_image.value), np.asarray(enlarge(expected)))
    assert explorer.edited

    explorer.reset_button.click()
    assert not explorer.edited and explorer.output_image.value == before


@pytest.mark.parametrize("connect_layers", [5, 0])
def test_moving_the_wrist_redraws_near_the_wrist_when_g_has_skip_connections(world, connect_layers):
    """Where the drawing changes, not only that it does: with the preset's 5 skip connections the
    change of a 5-pixel wrist move concentrates around the wrist, for each person and pose; the
    release's G without skips spreads it over the whole image (so the check can fail)."""
    root, _, _, people, poses = world
    model = PoseTransfer(make_transfer_checkpoint(root / f"connect{connect_layers}.pth.tar", connect_layers=connect_layers))
    explorer = PoseExplorer(model, people, poses, root / "out")
    explorer.joint_choice.value = LEFT_WRIST
    enrichments = []
    for person in range(len(people)):
        for pose in range(len(poses)):
            explorer.source_choice.value, explorer.target_choice.value = person, pose
            explorer.reset_pose()  # the chosen image's own pose, without the previous move
            start = (explorer.joint_x.value, explorer.joint_y.value)
            before = np.asarray(explorer.generated)
            explorer.joint_x.value = start[0] + (5 if start[0] < WIDTH // 2 else -5)
            enrichments.append(change_near_joint(before, np.asarray(explorer.generated), start,
                                                 (explorer.joint_x.value, explorer.joint_y.value)))
    if connect_layers:
        assert min(enrichments) >= LOCAL_CHANGE, enrichments
    else:
        assert max(enrichments) < LOCAL_CHANGE, enrichments


def test_hiding_a_joint_and_moving_it_back(world):
    root, _, model, people, poses = world
    explorer = PoseExplorer(model, people, poses, root / "out")
    explorer.joint_choice.value = LEFT_WRIST
    shown = explorer.output_image.value
    explorer.joint_shown.value = False
    assert np.isnan(explorer.pose[LEFT_WRIST]).all() and explorer.output_image.value != shown
    explorer.joint_y.value = (explorer.joint_y.value + 5) % HEIGHT  # a slider puts the joint back
    assert explorer.joint_shown.value and np.isfinite(explorer.pose[LEFT_WRIST]).all()


def test_choices_render_what_the_original_image_and_pose_give(world):
    """Working on the model's canvas changes nothing: the explorer's image is the transfer of the
    original-size source with the target's keypoints scaled into the source's pixels."""
    root, _, model, people, poses = world
    big = [p.__class__(p.label, p.record, p.image.resize((64, 128)), p.keypoints * 2) for p in people]
    explorer = PoseExplorer(model, big, poses, root / "out")
    before = explorer.output_image.value
    explorer.source_choice.value = 2
    explorer.target_choice.value = 1
    assert explorer.output_image.value != before
    source, target = big[2], poses[1]
    scale = np.array(source.image.size) / np.array(target.image.size)
    direct = model.render(source.image, target.keypoints * scale)
    assert np.array_equal(np.asarray(explorer.generated), np.asarray(direct))


def test_save_button_writes_a_png_and_reports_failures(world):
    root, _, model, people, poses = world
    explorer = PoseExplorer(model, people, poses, root / "figures")
    explorer.save_button.click()
    saved = root / "figures" / f"04_transfer_{people[0].stem}_to_{poses[0].stem}.png"
    assert saved.is_file() and str(saved) in explorer.status.value
    with Image.open(saved) as image:
        assert image.format == "PNG" and image.width > 300
    explorer.joint_x.value = (explorer.joint_x.value + 3) % WIDTH
    assert explorer.save().name.endswith("_edited.png")

    (root / "blocked").write_text("a file, not a folder")
    explorer.output_dir = root / "blocked"
    explorer.save_button.click()
    assert "could not save" in explorer.status.value


def test_gallery_is_every_person_in_every_pose(world):
    root, _, model, people, poses = world
    gallery = render_gallery(model, people[:2], poses, root / "gallery.png", title="tiny")
    assert gallery.images.shape == (2, 3, HEIGHT, WIDTH, 3)
    assert np.array_equal(gallery.images[1, 2], np.asarray(model.render(people[1].image, poses[2].keypoints)))
    with Image.open(gallery.path) as image:
        assert image.format == "PNG"
    assert gallery.seconds_per_transfer > 0
    with pytest.raises(StreidError, match="need at least one"):
        render_gallery(model, [], poses, root / "empty.png")


def test_gallery_statistics_by_hand():
    # 2 people x 2 poses of one-pixel grey images: person 0 -> 0, 51; person 1 -> 102, 255
    images = np.array([[0, 51], [102, 255]], dtype=np.uint8)[:, :, None, None, None].repeat(3, axis=4)
    stats = gallery_statistics(images)
    # pose: person 0 |0-51|/255 = 0.2, person 1 |102-255|/255 = 0.6 -> 0.4
    # person: pose 0 |0-102|/255 = 0.4, pose 1 |51-255|/255 = 0.8 -> 0.6
    assert stats == pytest.approx({"pose_variation": 0.4, "person_variation": 0.6})
    assert gallery_statistics(images[:1]) == pytest.approx({"pose_variation": 0.2})  # one person: no person term


@pytest.mark.slow
def test_smoke_checkpoint_is_trained_once_and_loads(world, tmp_path):
    root = world[0]
    checkpoint = tmp_path / "checkpoints" / "smoke" / "checkpoint.pth.tar"
    made = ensure_smoke_checkpoint(checkpoint, root / "data", "synthdance", SmokeTraining(iterations=1))
    assert made == checkpoint and checkpoint.is_file()
    assert PoseTransfer(checkpoint).image_size == (64, 32)
    assert "trained for 1 epoch(s) of at most 1 iteration(s) (a smoke model" in describe_checkpoint(checkpoint)
    # a run that measured its drawings says what it measured instead (the last measurement)
    row = {"iteration": 1, "generator": {"pose_accuracy": 0.5, "identity_accuracy": 0.25}}
    lines = [dict(row, iteration=0), row]
    (checkpoint.parent / TRANSFER_METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert describe_checkpoint(checkpoint).endswith(
        "1 iteration(s); at iteration 1, on held-out dancers: pose accuracy 0.50, identity accuracy 0.25 (chance 0.50)")
    (checkpoint.parent / TRANSFER_METRICS_FILE).unlink()
    stamp = checkpoint.stat().st_mtime_ns
    ensure_smoke_checkpoint(checkpoint, root / "data", "synthdance", SmokeTraining(iterations=1))
    assert checkpoint.stat().st_mtime_ns == stamp  # present: reused, not retrained
    with pytest.raises(StreidError, match="must be named"):
        ensure_smoke_checkpoint(tmp_path / "model.pth", root / "data", "synthdance")
