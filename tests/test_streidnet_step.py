"""One ST-ReIDNet iteration: which networks move in each stage, how the losses combine, what Dp
sees, and the release's doubled generator gradient."""
import math

import pytest
import torch

from _make_streid_batch import HEIGHT, NUM_JOINTS, WIDTH, normalise, one_thread, tiny_batch, tiny_config
from streid_core.errors import StreidError
from streid_core.models.image_range import generated_to_unit, imagenet_to_unit
from streid_core.training.streidnet import StreidNetTask
from streid_core.training.config import ReleaseQuirks
from streid_core.training.streidnet_losses import generator_objective, pose_discriminator_pairs
from streid_core.training.task import TrainingTask

_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


def _snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], net: torch.nn.Module) -> set[str]:
    return {k for k, v in net.state_dict().items() if not torch.equal(before[k], v)}


def _bn_buffers(net: torch.nn.Module) -> set[str]:
    return {k for k in net.state_dict() if k.endswith(("running_mean", "running_var"))}


def _new_task(seed: int = 0, **overrides) -> StreidNetTask:
    torch.manual_seed(seed)
    task = StreidNetTask(tiny_config(**overrides))
    task.on_epoch_start(1)
    return task


@pytest.fixture(scope="module")
def stepped():
    """A stage-0 task, its networks before, and the losses of one iteration on tiny_batch()."""
    task = _new_task()
    assert task.visuals() is None  # nothing to show before the first iteration
    before = {name: _snapshot(net) for name, net in task.networks.items()}
    losses = task.train_step(tiny_batch())
    return task, before, losses


def test_stage0_iteration_moves_every_network_but_keeps_di_batchnorm_statistics(stepped):
    task, before, losses = stepped
    assert isinstance(task, TrainingTask)
    assert all(math.isfinite(v) for v in losses.values())
    first_and_last = {
        "E": ("trunk.conv1.weight", "trunk.layer4.1.conv2.weight", "classifier.weight"),
        "G": ("encoder.0.weight", "pose_head.1.weight", "decoder_stem.1.weight", "up_blocks.4.1.weight"),
        "Di": ("encoder.trunk.conv1.weight", "encoder.trunk.layer4.1.conv2.weight", "encoder.classifier.weight"),
        "Dp": ("model.0.weight", "model.11.weight"),
    }
    for name, net in task.networks.items():
        assert set(first_and_last[name]) <= _changed(before[name], net), name
        # every trainable parameter got a gradient from this iteration (some BN weights move by
        # less than float32 resolves at lr 4e-5, so "changed" is checked on the layers above)
        for key, p in net.named_parameters():
            if p.requires_grad:
                assert p.grad is not None and p.grad.abs().sum() > 0, (name, key)
    # the corrected default optimises E's BN-neck weight (the release leaves it at 1)
    assert "bn_neck.weight" in _changed(before["E"], task.encoder)
    # Di's BatchNorm is frozen in every stage: running statistics stay ImageNet's
    assert not _bn_buffers(task.image_discriminator) & _changed(before["Di"], task.image_discriminator)
    assert _bn_buffers(task.pose_discriminator) <= _changed(before["Dp"], task.pose_discriminator)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained-from-init task's four networks saved as DataParallel state dicts ("module." keys)."""
    folder = tmp_path_factory.mktemp("nets")
    source = _new_task(seed=1)
    paths = {}
    for name, net in source.networks.items():
        path = folder / f"best_net_{name}.pth"
        torch.save({"module." + k: v for k, v in net.state_dict().items()}, path)
        paths[f"net{name}_pretrain"] = str(path)
    return source, paths, folder


def test_stage1_leaves_the_loaded_encoder_untouched(saved):
    source, paths, _ = saved
    task = _new_task(seed=2, stage=1, netE_pretrain=paths["netE_pretrain"])
    assert not task.encoder.training
    encoder_before = _snapshot(task.encoder)
    for k, v in source.encoder.state_dict().items():
        assert torch.equal(encoder_before[k], v), k  # loaded, `module.` stripped
    others = {name: _snapshot(net) for name, net in task.networks.items() if name != "E"}
    losses = task.train_step(tiny_batch())
    assert not _changed(encoder_before, task.encoder)  # weights and BN statistics
    assert losses["E_c"] == 0.0
    for name, snapshot in others.items():
        assert _changed(snapshot, task.networks[name]), name
    # stage 1 follows --lr: G at lr / 10, the discriminators at lr
    lr = task.config.lr
    rates = task.learning_rates()
    assert rates["G"] == pytest.approx(0.1 * lr) and rates["Di"] == pytest.approx(lr) == rates["Dp"]


def test_stage2_loads_all_four_and_freezes_encoder_batchnorm(saved):
    source, paths, _ = saved
    task = _new_task(seed=2, stage=2, **paths)
    for name, net in task.networks.items():
        for k, v in source.networks[name].state_dict().items():
            assert torch.equal(net.state_dict()[k], v), (name, k)
    before = _snapshot(task.encoder)
    task.train_step(tiny_batch())
    changed = _changed(before, task.encoder)
    assert "trunk.conv1.weight" in changed
    assert not _bn_buffers(task.encoder) & changed
    rates = task.learning_rates()
    assert (rates["G"], rates["Di"], rates["Dp"]) == (1e-6, 1e-5, 1e-5)


def test_stage1_without_encoder_weights_names_the_flag():
    with pytest.raises(StreidError, match="--netE-pretrain"):
        StreidNetTask(tiny_config(stage=1))


def test_release_weight_names_load_and_a_wrong_architecture_is_refused(saved):
    source, paths, tmp_path = saved
    # the release's module names: base_model/bottleneck in E, en_conv/de_conv in G
    release_e = {"module." + k.replace("trunk.", "base_model.").replace("bn_neck.", "bottleneck."): v
                 for k, v in source.encoder.state_dict().items()}
    torch.save(release_e, tmp_path / "50_net_E.pth")
    release_g = {}
    renames = {"encoder.0.": "en_conv1.", "encoder.1.": "en_conv2.", "encoder.2.": "en_conv3.",
               "encoder.3.": "en_conv4.", "encoder.4.": "en_conv5.", "pose_head.": "en_avg.",
               "decoder_stem.": "de_avg.", "up_blocks.0.": "de_conv5.", "up_blocks.1.": "de_conv4.",
               "up_blocks.2.": "de_conv3.", "up_blocks.3.": "de_conv2.", "up_blocks.4.": "de_conv1."}
    for k, v in source.generator.state_dict().items():
        prefix = next(p for p in renames if k.startswith(p))
        release_g[renames[prefix] + k[len(prefix):]] = v
    torch.save(release_g, tmp_path / "50_net_G.pth")
    paths = dict(paths)
    paths.update(netE_pretrain=str(tmp_path / "50_net_E.pth"), netG_pretrain=str(tmp_path / "50_net_G.pth"))
    task = StreidNetTask(tiny_config(stage=2, **paths))
    assert torch.equal(task.generator.state_dict()["up_blocks.4.1.weight"], source.generator.state_dict()["up_blocks.4.1.weight"])
    assert torch.equal(task.encoder.state_dict()["bn_neck.running_var"], source.encoder.state_dict()["bn_neck.running_var"])
    with pytest.raises(StreidError, match="--netE-pretrain .*--arch"):
        StreidNetTask(tiny_config(stage=1, arch="resnet34", netE_pretrain=paths["netE_pretrain"]))


def _gradients(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}


@pytest.mark.slow
def test_generator_gradient_counted_once_and_release_compat_counts_it_twice():
    # Identical networks and batch; only the gradient quirk differs. Without dropout and label
    # noise the forward passes are identical, so
    #   corrected: dE = dL_G + dL_reid          release: dE = 2 dL_G + dL_reid
    # With the re-ID weights at 0 the ratio is exactly 2 (for E and G alike); with them on,
    # release - corrected = dL_G alone.
    common = dict(drop=0.0, smooth_label=False)
    batch = tiny_batch()
    grads = {}
    for name, double, reid in (("once", False, 1.0), ("twice", True, 1.0), ("gen_only", False, 0.0)):
        quirks = ReleaseQuirks(double_generator_gradient=double)
        task = _new_task(seed=3, quirks=quirks, lambda_tri=reid, lambda_class=reid, **common)
        task.train_step(batch)
        grads[name] = {"E": _gradients(task.encoder), "G": _gradients(task.generator)}
    # G only receives the generator loss: exactly twice the gradient
    for key, once in grads["once"]["G"].items():
        torch.testing.assert_close(grads["twice"]["G"][key], 2 * once, rtol=1e-4, atol=1e-9)
    for key, once in grads["once"]["E"].items():
        if key.startswith("classifier") or key.startswith("bn_neck"):
            continue  # G never sees the BN-neck / classifier: no generator gradient there
        # the re-ID gradient is up to 100x larger: allow float32 cancellation relative to it
        torch.testing.assert_close(grads["twice"]["E"][key] - once, grads["gen_only"]["E"][key],
                                   rtol=1e-3, atol=1e-5 * float(once.abs().max()))


def test_generator_objective_by_hand():
    # 0.1 * 0.5 + 0.2 * 0.25 + 10 * (0.7 * 0.1 + 0.3 * 0.2) = 0.05 + 0.05 + 10 * 0.13 = 1.4
    t = torch.tensor
    value = generator_objective(t(0.5), t(0.25), rec_self=t(0.2), rec_swap=t(0.1),
                                lambda_d=0.1, lambda_dp=0.2, lambda_recon=10.0)
    assert value.item() == pytest.approx(1.4)


def test_pose_discriminator_pairs_has_three_kinds_of_fakes():
    # b = 1: rows are anchor, positive, negative; each tensor value names its row
    pose = torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1, 1)
    targets = torch.tensor([10.0, 11.0, 12.0]).view(3, 1, 1, 1)
    fake = torch.tensor([20.0, 21.0, 22.0]).view(3, 1, 1, 1)
    swap = torch.tensor([30.0, 31.0]).view(2, 1, 1, 1)  # G(p, e+), G(p+, e)
    (real_pose, real_img), (fake_pose, fake_img) = pose_discriminator_pairs(pose, targets, fake, swap)
    assert real_pose.flatten().tolist() == [0, 1, 2] and real_img.flatten().tolist() == [10, 11, 12]
    # (a) self-reconstructions in their pose, (b) swaps in the pose they were drawn for,
    # (c) real anchor/positive images paired with each other's pose
    assert fake_pose.flatten().tolist() == [0, 1, 2, 0, 1, 1, 0]
    assert fake_img.flatten().tolist() == [20, 21, 22, 30, 31, 10, 11]


def test_iteration_with_stubbed_networks_combines_losses_as_the_spec():
    # G always outputs 0, Di always says logit 0, Dp always logit ln 3 (forward hooks keep the
    # graph). Targets, in G's [-1, 1] range: anchors 1, positives 0, negatives -0.5; mask on
    # anchors only. Masked L1 = (L1 + 9 * L1 inside mask) / 10, both means over every pixel:
    #   self (3 rows): L1 = (1 + 0 + 0.5) / 3 = 0.5; masked = (1 + 0 + 0) / 3 -> (0.5 + 3) / 10 = 0.35
    #   swap (anchor, positive): L1 = (1 + 0) / 2 = 0.5; masked 0.5 -> (0.5 + 4.5) / 10 = 0.5
    #   G_r = 0.7 * 0.5 + 0.3 * 0.35 = 0.455
    # Di's logit is its input's mean: 1, 0, -0.5 for the real thirds, 0 for every fake.
    # G_gan_Di = BCE(0, 1) = ln 2; G_gan_Dp = BCE(ln 3, 1) = ln(1 + 1/3) = ln(4/3)
    # G = 0.1 ln 2 + 0.2 ln(4/3) + 10 * 0.455
    # D_i = (mean over reals of BCE(x, 1) + BCE(0, 0)) / 2, BCE(x, 1) = ln(1 + e^-x):
    #       ((ln(1 + e^-1) + ln 2 + ln(1 + e^0.5)) / 3 + ln 2) / 2
    # D_p = (ln(4/3) + ln(1 + 3)) / 2
    task = _new_task(lambda_d=0.1, lambda_dp=0.2, lambda_recon=10.0)
    task.generator.register_forward_hook(lambda m, i, out: out * 0.0)
    task.image_discriminator.register_forward_hook(lambda m, i, out: out * 0.0 + i[0].mean(dim=(1, 2, 3)).view(-1, 1))
    task.pose_discriminator.register_forward_hook(lambda m, i, out: out * 0.0 + math.log(3.0))
    seen = []
    task.pose_discriminator.register_forward_pre_hook(lambda m, args: seen.append([a.detach().clone() for a in args]))

    b = 2
    batch = tiny_batch(b)
    unit = torch.cat([torch.full((b, 3, HEIGHT, WIDTH), v) for v in (1.0, 0.5, 0.25)])
    batch["target"] = normalise(unit)
    batch["mask"] = torch.cat([torch.ones(b, 1, HEIGHT, WIDTH), torch.zeros(2 * b, 1, HEIGHT, WIDTH)])
    losses = task.train_step(batch)

    assert losses["G_r"] == pytest.approx(0.455, abs=1e-5)
    assert losses["G_gan_Di"] == pytest.approx(math.log(2), abs=1e-6)
    assert losses["G_gan_Dp"] == pytest.approx(math.log(4 / 3), abs=1e-6)
    assert losses["G"] == pytest.approx(0.1 * math.log(2) + 0.2 * math.log(4 / 3) + 4.55, abs=1e-5)
    real_di = (math.log(1 + math.exp(-1)) + math.log(2) + math.log(1 + math.exp(0.5))) / 3
    assert losses["D_i"] == pytest.approx((real_di + math.log(2)) / 2, abs=1e-6)
    assert losses["D_p"] == pytest.approx((math.log(4 / 3) + math.log(4)) / 2, abs=1e-6)
    assert losses["E"] == pytest.approx(losses["G"] + losses["E_t"] + losses["E_c"], abs=1e-5)
    assert losses["loss"] == pytest.approx(losses["E"] + losses["D_i"] + losses["D_p"], abs=1e-5)

    # Dp calls: real pairs, the Dp step's fakes, the generator step's fakes
    assert [len(args[0]) for args in seen] == [3 * b, 7 * b, 7 * b]
    real_pose, real_img = seen[0]
    assert torch.equal(real_pose, batch["pose"])
    for fake_pose, fake_img in seen[1:]:
        assert torch.all(fake_img[: 5 * b] == 0)  # (a) and (b): G's output
        torch.testing.assert_close(fake_img[5 * b:], real_img[: 2 * b])  # (c) real anchor, positive images ...
        assert torch.equal(fake_pose[5 * b: 6 * b], batch["pose"][b: 2 * b])  # ... in the other's pose
        assert torch.equal(fake_pose[6 * b:], batch["pose"][:b])
    torch.testing.assert_close(real_img[0], torch.ones(3, HEIGHT, WIDTH))  # targets in [-1, 1]


def test_siamese_encoder_iteration():
    task = _new_task(emb_type="Siamese")
    assert task.encoder.classifier.out_features == 2
    losses = task.train_step(tiny_batch())
    assert all(math.isfinite(v) for v in losses.values())
    assert losses["E_c"] > 0


def test_visuals_are_the_release_panel_in_unit_range(stepped):
    task = stepped[0]
    visuals = task.visuals()
    assert list(visuals) == ["ach", "ach_pose", "ach_mask", "ach_fake1", "ach_fake2",
                             "pos", "pos_pose", "pos_mask", "pos_fake1", "pos_fake2"]
    for name, image in visuals.items():
        assert image.shape[-2:] == (HEIGHT, WIDTH) and image.shape[0] in (1, 3), name
        assert 0.0 <= image.min() and image.max() <= 1.0, name
    # the anchor tile is E's input un-normalised
    torch.testing.assert_close(visuals["ach"], torch.clamp(_unit_of(tiny_batch()["image"][0]), 0, 1), atol=1e-5, rtol=0)
    # G's tanh output maps back by (x + 1) / 2; with the release's ImageNet targets, by un-normalising
    ones = torch.ones(1, 3, 2, 2)
    assert torch.all(task.generated_to_unit(-ones) == 0) and torch.all(task.generated_to_unit(ones) == 1)
    torch.testing.assert_close(generated_to_unit(normalise(ones * 0.25), imagenet_targets=True), ones * 0.25)


def _unit_of(image: torch.Tensor) -> torch.Tensor:
    return imagenet_to_unit(image[None])[0]


@pytest.mark.precision
def test_bf16_autocast_iteration_runs_on_cpu():
    task = _new_task(amp="bf16")
    losses = task.train_step(tiny_batch())
    assert all(math.isfinite(v) for v in losses.values())
    assert tiny_batch()["pose"].shape[1] == NUM_JOINTS


def test_limb_painting_loss_by_hand_and_it_teaches_the_colours():
    # Every row in the same standing pose, so every painting covers the same pixels; targets in
    # G's range: anchors 1, positives 0, negatives -1. The colour map starts at 0, so the first
    # iteration's paintings are 0 under the strokes:
    #   self (3 rows) = (1 + 0 + 1) / 3; swap (anchor, positive rows) = (1 + 0) / 2
    #   G_paint = 0.7 * 0.5 + 0.3 * 2/3 = 0.55, added to G as lambda_recon * lambda_paint * 0.55
    import numpy as np

    from streid_core.data.pose import pose_maps
    from test_limb_painting import STANDING

    task = _new_task(lambda_d=0.0, lambda_dp=0.0, lambda_recon=10.0, paint_limbs=True, lambda_paint=0.5)
    b = 2
    batch = tiny_batch(b)
    standing = torch.from_numpy(pose_maps(STANDING * np.float32(HEIGHT / 128), HEIGHT, WIDTH))
    batch["pose"] = standing.expand(3 * b, -1, -1, -1).clone()
    batch["target"] = normalise(torch.cat([torch.full((b, 3, HEIGHT, WIDTH), v) for v in (1.0, 0.5, 0.0)]))
    colour = task.generator.limb_painting.colour
    assert torch.count_nonzero(colour.weight) == 0
    losses = task.train_step(batch)
    assert losses["G_paint"] == pytest.approx(0.55, abs=1e-5)
    assert losses["G"] == pytest.approx(10.0 * losses["G_r"] + 10.0 * 0.5 * 0.55, abs=1e-4)
    assert torch.count_nonzero(colour.weight) > 0  # E's feature -> limb colours, learnt from the loss
    assert "G_paint" not in _new_task(lambda_d=0.0, lambda_dp=0.0).train_step(tiny_batch(b))


def test_lambda_paint_without_the_painting_names_the_flag():
    with pytest.raises(StreidError, match="--lambda-paint 1.0: .* add --paint-limbs, or pass --lambda-paint 0"):
        tiny_config(lambda_paint=1.0).validate()


def test_source_limbs_painting_reads_each_feature_under_its_own_image_pose(monkeypatch):
    # G draws [G(p,e); G(p+,e+); G(p-,e-); G(p,e+); G(p+,e)]: a swap's painting reads the parts of
    # the image whose feature it draws (e+ under p+), not the target pose's
    from streid_core.models.limb_painting import LimbPainting

    task = _new_task(lambda_d=0.0, lambda_dp=0.0, lambda_recon=10.0, paint_limbs=True, lambda_paint=0.5,
                     paint_from="source-limbs")
    read = []
    forward = LimbPainting.forward
    monkeypatch.setattr(LimbPainting, "forward", lambda self, pose, feature, masks=None, parts=None:
                        read.append(parts.detach().clone()) or forward(self, pose, feature, masks, parts))
    losses = task.train_step(tiny_batch(2))
    assert len(read) == 5
    assert torch.equal(read[3], read[1]) and torch.equal(read[4], read[0]) and not torch.equal(read[0], read[1])
    assert losses["G_paint"] > 0 and torch.count_nonzero(task.generator.limb_painting.part_weight) > 0


def test_source_limbs_with_a_fixed_encoder_and_without_the_painting(saved):
    task = _new_task(stage=1, lambda_d=0.0, lambda_dp=0.0, paint_limbs=True, lambda_paint=1.0,
                     paint_from="source-limbs", netE_pretrain=saved[1]["netE_pretrain"])
    assert math.isfinite(task.train_step(tiny_batch(2))["G_paint"])
    with pytest.raises(StreidError, match="--paint-from source-limbs: .* add --paint-limbs"):
        tiny_config(paint_from="source-limbs").validate()


def test_paint_layer_names_its_flag_without_the_source_limbs():
    with pytest.raises(StreidError, match="--paint-layer 2: the stage a source-limbs painting reads"):
        tiny_config(paint_limbs=True, paint_layer=2).validate()
    with pytest.raises(StreidError, match="--paint-layer 5: a stage of E's ResNet trunk"):
        tiny_config(paint_limbs=True, paint_from="source-limbs", paint_layer=5).validate()
