"""G's training path is correct: through StreidNetTask's own iteration (pose heat-maps, target
range, masked L1, swap reconstruction), G learns a tiny set of stick-figure dancers to a near-
perfect drawing, and moving a limb in the pose input moves it in the drawing. A bug in the pose
maps, the target range or the wiring of E's feature would look exactly like "not enough
budget" in a real run; here it fails in a minute."""
import numpy as np
import pytest
import torch
from _make_streid_batch import normalise, one_thread

from streid_core.data.keypoints import convention
from streid_core.data.pose import pose_maps, skeleton_mask
from streid_core.models.reid import ReIDEncoder
from streid_core.training.streidnet import StreidNetTask
from streid_core.training.streidnet_config import StreidNetConfig

_one_thread = pytest.fixture(scope="module", autouse=True)(one_thread)

HEIGHT, WIDTH = 64, 32
COCO = convention("coco17")
# four dancers: clothing colour (RGB in [0, 1]) on a grey floor
COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.2, 0.9], [0.1, 0.8, 0.2], [0.9, 0.8, 0.1]])
BACKGROUND = 0.5


def _pose(arms_up: bool) -> np.ndarray:
    """COCO-17 keypoints (x, y) on the 32x64 canvas: a standing figure, arms down or raised."""
    head = [(16, 8)] * 5  # nose, eyes, ears at one point
    shoulders, hips = [(11, 16), (21, 16)], [(12, 36), (20, 36)]
    if arms_up:
        elbows, wrists = [(7, 10), (25, 10)], [(6, 3), (26, 3)]
    else:
        elbows, wrists = [(9, 26), (23, 26)], [(8, 34), (24, 34)]
    knees, ankles = [(12, 48), (20, 48)], [(12, 60), (20, 60)]
    order = head + shoulders + elbows + wrists + hips + knees + ankles
    return np.array(order, dtype=np.float64)


def _frame(dancer: int, arms_up: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image in [0, 1], pose maps, body mask) of one dancer in one pose."""
    kps = _pose(arms_up)
    mask = torch.from_numpy(skeleton_mask(kps, HEIGHT, WIDTH, COCO))
    image = BACKGROUND + mask * (COLOURS[dancer].view(3, 1, 1) - BACKGROUND)
    return image, torch.from_numpy(pose_maps(kps, HEIGHT, WIDTH)), mask


def _batch(anchor_pose_up: bool) -> dict[str, torch.Tensor]:
    """Two triplets [anchors; positives; negatives]: dancers 0 and 1 in one pose (anchors) and
    the other pose (positives); dancers 2 and 3 as negatives."""
    rows = [(0, anchor_pose_up), (1, anchor_pose_up), (0, not anchor_pose_up), (1, not anchor_pose_up),
            (2, anchor_pose_up), (3, not anchor_pose_up)]
    images, poses, masks = zip(*(_frame(d, up) for d, up in rows))
    unit = torch.stack(images)
    return {"image": normalise(unit), "target": normalise(unit), "pose": torch.stack(poses),
            "mask": torch.stack(masks), "label": torch.tensor([d for d, _ in rows])}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Stage 1 around a fixed random E, reconstruction only (no discriminators), 160 iterations."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("g")
    encoder_file = folder / "E.pth"
    torch.save(ReIDEncoder("resnet18", 4).state_dict(), encoder_file)
    config = StreidNetConfig(num_classes=4, stage=1, arch="resnet18", height=HEIGHT, width=WIDTH, mask=True,
                             soft_margin=True, netE_pretrain=str(encoder_file), lambda_d=0.0, lambda_dp=0.0,
                             lambda_recon=1.0, drop=0.0, connect_layers=5, ngf=16, lr=1e-2, niter=1, niter_decay=0)
    task = StreidNetTask(config)
    task.on_epoch_start(1)
    first = None
    for step in range(160):
        losses = task.train_step(_batch(anchor_pose_up=step % 2 == 0))
        first = first if first is not None else losses["G_r"]
    assert losses["D_i"] == 0.0 and losses["D_p"] == 0.0  # the discriminators never ran
    return task, first, losses["G_r"]


def _draw(task: StreidNetTask, source: tuple[int, bool], pose_up: bool) -> torch.Tensor:
    """G(pose, E(source image)) in [0, 1], eval mode."""
    image, _, _ = _frame(*source)
    _, pose, _ = _frame(source[0], pose_up)
    task.encoder.eval()
    task.generator.eval()
    with torch.no_grad():
        feature = task.encoder(normalise(image[None]))
        return task.generated_to_unit(task.generator(pose[None], feature))[0]


def test_g_learns_the_tiny_set_to_a_near_perfect_drawing(trained):
    task, first, last = trained
    assert last < 0.2 * first  # the reconstruction loss fell fivefold (measured: 0.372 -> 0.046)
    for dancer in (0, 1):
        for up in (False, True):
            real, _, mask = _frame(dancer, up)
            drawn = _draw(task, (dancer, not up), up)  # the dancer's other frame, redrawn in this pose
            body_error = float(((drawn - real).abs() * mask).sum() / (3 * mask.sum()))
            assert body_error < 0.06, (dancer, up, body_error)  # clothing colours are 0.4-0.8 from the floor


def test_g_draws_each_dancers_own_colours(trained):
    task, _, _ = trained
    _, _, mask = _frame(0, False)
    inside = mask[0] > 0
    red = _draw(task, (0, True), False)[:, inside].mean(dim=1)
    blue = _draw(task, (1, True), False)[:, inside].mean(dim=1)
    assert torch.allclose(red, COLOURS[0], atol=0.12) and torch.allclose(blue, COLOURS[1], atol=0.12)


def test_moving_the_arms_in_the_pose_moves_them_in_the_drawing(trained):
    task, _, _ = trained
    down, up = _draw(task, (0, False), False), _draw(task, (0, False), True)
    _, _, mask_down = _frame(0, False)
    _, _, mask_up = _frame(0, True)
    moved = (mask_down != mask_up)[0]  # where the arms were or went
    still = (mask_down + mask_up == 0)[0]  # floor far from both poses
    change = (down - up).abs().mean(dim=0)
    assert float(change[moved].mean()) > 0.25  # the arms moved: red appears and disappears
    assert float(change[still].mean()) < 0.05  # the floor stayed
