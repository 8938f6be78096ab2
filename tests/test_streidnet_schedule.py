"""ST-ReIDNet optimisers and schedules per stage, BN-neck optimisation, exact resume of all four
networks with their optimisers and schedules, and the --save-step snapshots."""
import warnings

import pytest
import torch

from _make_streid_batch import one_thread, tiny_batch, tiny_config
from streid_core.training.hooks import TrainContext
from streid_core.training.run_logging import RunLog
from streid_core.training.streidnet import StreidNetTask
from streid_core.errors import StreidError
from streid_core.training.config import ReleaseQuirks
from streid_core.training.streidnet_run import NetworkSnapshots
from streid_core.training.streidnet_schedule import lr_factor, stage_learning_rates

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


def test_lr_factor_against_hand_computed_tables():
    # niter = 3, niter_decay = 3, factor during 1-based epoch e:
    # corrected 1 - max(0, e - 3) / 4:      e=1..3 -> 1, e=4 -> 3/4, e=5 -> 2/4, e=6 -> 1/4
    # release   1 - max(0, e + 1 - 3) / 4:  e=1,2 -> 1, e=3 -> 3/4, e=4 -> 2/4, e=5 -> 1/4, e=6 -> 0
    corrected = [lr_factor(e, 3, 3) for e in range(1, 7)]
    release = [lr_factor(e, 3, 3, zero_last_epoch=True) for e in range(1, 7)]
    assert corrected == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])
    assert release == pytest.approx([1, 1, 0.75, 0.5, 0.25, 0.0])
    # the paper's 50 + 50: release trains epoch 50 at 50/51 and epoch 100 at 0 (docs/original-system.md §3.5);
    # corrected keeps 50 full epochs and ends at 1/51
    assert lr_factor(50, 50, 50, zero_last_epoch=True) == pytest.approx(50 / 51)
    assert lr_factor(100, 50, 50, zero_last_epoch=True) == 0.0
    assert lr_factor(50, 50, 50) == 1.0 and lr_factor(100, 50, 50) == pytest.approx(1 / 51)


def _lr_per_epoch(task: StreidNetTask, epochs: int) -> list[dict[str, float]]:
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scheduler stepped without an optimiser step
        for epoch in range(1, epochs + 1):
            task.on_epoch_start(epoch)
            seen.append(task.learning_rates())
            task.on_epoch_end(epoch)
    return seen


@pytest.mark.parametrize("quirks, factors", [
    (ReleaseQuirks(), [1, 1, 2 / 3, 1 / 3]),  # niter 2, decay 2: 1 - max(0, e - 2) / 3
    (ReleaseQuirks.release(), [1, 2 / 3, 1 / 3, 0]),  # 1 - max(0, e + 1 - 2) / 3
])
def test_all_four_schedules_follow_the_rule_from_each_stage_lr(quirks, factors):
    task = StreidNetTask(tiny_config(lr=2e-5, niter=2, niter_decay=2, quirks=quirks))
    base = stage_learning_rates(0, 2e-5)
    assert base == {"E": 2e-5, "G": 1e-5, "Di": 4e-5, "Dp": 4e-5}
    for rates, factor in zip(_lr_per_epoch(task, 4), factors):
        assert rates["E/backbone"] == pytest.approx(2e-5 * factor)  # lr_mult ignored, as published
        assert rates["E/head"] == pytest.approx(2e-5 * factor)
        for net in ("G", "Di", "Dp"):
            assert rates[net] == pytest.approx(base[net] * factor)


def test_stage_learning_rates_table():
    assert stage_learning_rates(1, 1e-3) == pytest.approx({"E": 1e-3, "G": 1e-4, "Di": 1e-3, "Dp": 1e-3})
    assert stage_learning_rates(2, 1e-3) == {"E": 1e-3, "G": 1e-6, "Di": 1e-5, "Dp": 1e-5}
    # --lr-g replaces G's rate alone, in every stage
    assert stage_learning_rates(0, 2e-5, lr_g=2e-4) == {"E": 2e-5, "G": 2e-4, "Di": 4e-5, "Dp": 4e-5}
    assert stage_learning_rates(1, 1e-3, lr_g=5e-4)["G"] == 5e-4


def test_lr_g_reaches_g_optimiser_and_is_checked():
    task = StreidNetTask(tiny_config(lr=2e-5, lr_g=2e-4))
    assert task.optimizers["G"].param_groups[0]["lr"] == 2e-4
    assert task.optimizers["E"].param_groups[0]["lr"] == 2e-5
    for bad in (0.0, float("nan"), -1e-4):
        with pytest.raises(StreidError, match="--lr-g"):
            tiny_config(lr_g=bad).validate()


def test_bn_neck_optimised_by_default_and_left_out_with_release_compat():
    def optimised(task):
        return {id(p) for g in task.optimizers["E"].param_groups for p in g["params"]}

    fixed = StreidNetTask(tiny_config())
    release = StreidNetTask(tiny_config(quirks=ReleaseQuirks.release()))
    assert id(fixed.encoder.bn_neck.weight) in optimised(fixed)
    assert id(release.encoder.bn_neck.weight) not in optimised(release)
    # the release's ResNet stem has no ReLU, in E and in Di
    assert fixed.encoder.trunk.stem_relu and not release.encoder.trunk.stem_relu
    assert not release.image_discriminator.encoder.trunk.stem_relu


def test_resume_restores_networks_optimisers_and_schedules_exactly(tmp_path):
    batch = tiny_batch()
    torch.manual_seed(0)
    first = StreidNetTask(tiny_config(smooth_label=True))
    first.on_epoch_start(1)
    first.train_step(batch)
    first.on_epoch_end(1)
    torch.save(first.state_dict(), tmp_path / "state.pth")

    torch.manual_seed(99)  # different initial weights: everything must come from the file
    resumed = StreidNetTask(tiny_config(smooth_label=True))
    resumed.load_state_dict(torch.load(tmp_path / "state.pth", weights_only=True))
    for name, net in first.networks.items():
        for key, value in net.state_dict().items():
            assert torch.equal(resumed.networks[name].state_dict()[key], value), (name, key)
    for name, opt in first.optimizers.items():
        momentum = [s for s in opt.state_dict()["state"].values()]
        restored = [s for s in resumed.optimizers[name].state_dict()["state"].values()]
        assert len(momentum) == len(restored) > 0, name
        for a, b in zip(momentum, restored):
            for key in a:
                assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), (name, key)
        assert resumed.schedulers[name].last_epoch == first.schedulers[name].last_epoch == 1
    assert resumed.learning_rates() == first.learning_rates()

    # the next iteration is the same in both (dropout and label noise drawn from one seed)
    out = {}
    for label, task in (("first", first), ("resumed", resumed)):
        task.on_epoch_start(2)
        torch.manual_seed(5)
        out[label] = task.train_step(tiny_batch(seed=1))
    assert out["first"] == out["resumed"]
    for name, net in first.networks.items():
        for key, value in net.state_dict().items():
            assert torch.equal(resumed.networks[name].state_dict()[key], value), (name, key)


def test_save_step_snapshots_every_n_epochs_and_load_back(tmp_path):
    task = StreidNetTask(tiny_config())
    snapshots, ctx = NetworkSnapshots(save_step=2), TrainContext(task, RunLog(tmp_path, enabled=False), iterations=1)
    for epoch in (1, 2, 3):
        snapshots.after_epoch(ctx, epoch, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2_net_Di.pth", "2_net_Dp.pth", "2_net_E.pth", "2_net_G.pth"]
    paths = {f"net{n}_pretrain": str(tmp_path / f"2_net_{n}.pth") for n in ("E", "G", "Di", "Dp")}
    loaded = StreidNetTask(tiny_config(stage=2, **paths))
    for name, net in task.networks.items():
        for key, value in net.state_dict().items():
            assert torch.equal(loaded.networks[name].state_dict()[key], value), (name, key)
