"""Pose transfer API: E's feature of the source image + heat-maps of the target keypoints -> G."""
import numpy as np
import pytest
import torch
from PIL import Image

from _make_streid_batch import HEIGHT, WIDTH, one_thread, tiny_config
from streid_core.cli import main
from streid_core.data.keypoints import COCO17, write_keypoints
from streid_core.data.pose import pose_maps
from streid_core.data.transforms import to_normalized_tensor
from streid_core.errors import StreidError
from streid_core.models.loading import FORMAT, VERSION
from streid_core.training.checkpoint import save_checkpoint
from streid_core.models.pose_transfer import PoseTransfer, transfer
from streid_core.training.streidnet import StreidNetTask

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)

SOURCE_SIZE = (16, 32)  # width, height: half the 32x64 canvas, so coordinates scale by 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint in the loop's format holding an ST-ReIDNet task (random weights are enough:
    the test checks the wiring, not the quality)."""
    folder = tmp_path_factory.mktemp("transfer")
    torch.manual_seed(0)
    task = StreidNetTask(tiny_config(drop=0.2))
    state = {"format": FORMAT, "version": VERSION, "epoch": 1, "task": task.state_dict(),
             "encoder": task.encoder.state_dict(), "encoder_config": task.architecture.encoder_config().as_dict()}
    save_checkpoint(folder / "checkpoint.pth.tar", state)
    save_checkpoint(folder / "model_best.pth.tar", {k: v for k, v in state.items() if k != "task"})
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 256, (SOURCE_SIZE[1], SOURCE_SIZE[0], 3), dtype=np.uint8))
    source.save(folder / "source.png")
    kps = np.stack([np.linspace(2, 13, 17), np.linspace(2, 29, 17)], axis=1).astype(np.float32)
    kps[3] = np.nan  # a missing joint
    write_keypoints(folder / "pose.txt", kps, COCO17)
    return task, folder, source, kps


def test_render_is_g_of_e_feature_and_canvas_heatmaps(trained):
    task, folder, source, kps = trained
    model = PoseTransfer(folder / "checkpoint.pth.tar")
    image = model.render(folder / "source.png", kps)
    assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"

    # by hand: resize the source to the canvas, E's pre-BN feature; keypoints x2 onto the
    # canvas, truncated to whole pixels, heat-maps sigma 5; G in eval mode; (x + 1) / 2 -> bytes
    task.encoder.eval(), task.generator.eval()
    with torch.no_grad():
        x = to_normalized_tensor(source.resize((WIDTH, HEIGHT), Image.BILINEAR))[None]
        canvas = np.floor(kps * 2.0)
        pose = torch.from_numpy(pose_maps(canvas, HEIGHT, WIDTH))[None]
        expected = (task.generator(pose, task.encoder(x))[0] + 1) / 2
    expected = (expected.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(np.asarray(image).astype(int) - expected).max() <= 1


def test_pose_file_sequence_and_one_shot_function_agree(trained):
    _, folder, source, kps = trained
    model = PoseTransfer(folder / "checkpoint.pth.tar")
    from_array = np.asarray(model.render(source, kps))
    from_file = np.asarray(transfer(folder / "checkpoint.pth.tar", folder / "source.png", folder / "pose.txt"))
    assert np.array_equal(from_array, from_file)
    moved = kps.copy()
    moved[:, 0] = 15 - moved[:, 0]
    frames = model.render_sequence(source, [kps, moved])
    assert np.array_equal(np.asarray(frames[0]), from_array)
    assert not np.array_equal(np.asarray(frames[1]), from_array)  # the pose matters


def test_wrong_inputs_are_one_line_errors(trained):
    _, folder, source, kps = trained
    model = PoseTransfer(folder / "checkpoint.pth.tar")
    with pytest.raises(StreidError, match=r"shape \(16, 2\)"):
        model.render(source, kps[:16])
    with pytest.raises(StreidError, match="openpose18"):
        model.render(source, np.zeros((18, 2)), keypoints_convention="openpose18")
    with pytest.raises(StreidError, match="holds no ST-ReIDNet generator"):
        PoseTransfer(folder / "model_best.pth.tar")
    # a pose with no joint on the canvas would still be drawn, as a person in no pose: refused
    with pytest.raises(StreidError, match="no joint lies on the"):
        model.render(source, np.full((17, 2), np.nan))
    with pytest.raises(StreidError, match="no joint lies on the"):
        model.render(source, kps + 1000.0)  # every joint beyond the source image's 16x32 pixels
    blank = folder / "blank_pose.txt"
    write_keypoints(blank, np.full((17, 2), np.nan), COCO17)
    with pytest.raises(StreidError, match="blank_pose.txt: no joint"):
        transfer(folder / "checkpoint.pth.tar", source, blank)


def test_transfer_command_writes_an_image_of_the_canvas_size(trained, tmp_path, capsys):
    _, folder, _, _ = trained
    out = tmp_path / "out.png"
    code = main(["transfer", "--checkpoint", str(folder / "checkpoint.pth.tar"), "--source", str(folder / "source.png"),
                 "--pose", str(folder / "pose.txt"), "--out", str(out)])
    assert code == 0
    assert Image.open(out).size == (WIDTH, HEIGHT)
    assert main(["transfer", "--checkpoint", str(folder / "checkpoint.pth.tar"), "--source", str(folder / "source.png"),
                 "--pose", str(folder / "pose.txt"), "--out", str(tmp_path / "out.xyz")]) == 2
    assert "unknown image extension" in capsys.readouterr().err


@pytest.fixture(scope="module")
def reads_source_limbs(trained, tmp_path_factory):
    """A checkpoint whose G paints the source's limbs from E's map (--paint-from source-limbs)."""
    from _make_transfer_checkpoint import make_transfer_checkpoint

    _, folder, source, kps = trained
    path = make_transfer_checkpoint(tmp_path_factory.mktemp("limbs") / "checkpoint.pth.tar", connect_layers=5,
                                    paint_limbs=True, paint_from="source-limbs")
    return PoseTransfer(path), path, folder, source, kps


def test_a_g_reading_the_source_limbs_needs_and_follows_the_source_keypoints(reads_source_limbs):
    model, _, _, source, kps = reads_source_limbs
    assert model.needs_source_keypoints
    with pytest.raises(StreidError, match="pass the source image's keypoints too"):
        model.render(source, kps)
    image = np.asarray(model.render(source, kps, source_keypoints=kps))
    # by hand: E's map of the canvas image, averaged under the source's strokes (keypoints x2 onto the canvas)
    with torch.no_grad():
        x = to_normalized_tensor(source.resize((WIDTH, HEIGHT), Image.BILINEAR))[None]
        feature, feature_map = model.encoder(x, map_layer=4)
        pose = torch.from_numpy(pose_maps(np.floor(kps * 2.0), HEIGHT, WIDTH))[None]
        drawn = model.generator(pose, feature, parts=model.generator.part_features(feature_map, pose))[0]
    expected = ((drawn + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5
    assert np.abs(image.astype(int) - expected.astype(np.uint8)).max() <= 1
    lowered = kps.copy()
    lowered[:, 1] = np.minimum(lowered[:, 1] + 12, 31)  # the source's limbs read lower in its image
    assert not np.array_equal(np.asarray(model.render(source, kps, source_keypoints=lowered)), image)
    sequence = model.render_sequence(source, [kps], source_keypoints=kps)
    assert np.array_equal(np.asarray(sequence[0]), image)


def test_transfer_command_takes_the_source_pose_and_names_it_when_missing(reads_source_limbs, tmp_path, capsys):
    _, path, folder, _, _ = reads_source_limbs
    args = ["transfer", "--checkpoint", str(path), "--source", str(folder / "source.png"),
            "--pose", str(folder / "pose.txt"), "--out", str(tmp_path / "out.png")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--source-pose FILE" in err and "Traceback" not in err and not (tmp_path / "out.png").exists()
    assert main(args + ["--source-pose", str(tmp_path / "nowhere.txt")]) == 2
    err = capsys.readouterr().err
    assert "nowhere.txt" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "out.png").exists()
    assert main(args + ["--source-pose", str(folder / "pose.txt")]) == 0
    assert Image.open(tmp_path / "out.png").size == (WIDTH, HEIGHT)
