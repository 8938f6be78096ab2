"""Losses against values computed by hand (arithmetic in the comments)."""
import math

import pytest
import torch

from streid_core.errors import StreidError
from streid_core.losses import (
    RELEASE_SWAP_PROBABILITY,
    GANLoss,
    batch_hard_distances,
    batch_hard_triplet_loss,
    euclidean_distances,
    label_smoothed_cross_entropy,
    masked_l1_loss,
    reconstruction_loss,
    siamese_verification_loss,
)

LN3 = math.log(3.0)


def _softplus(x):
    return math.log1p(math.exp(x))


def test_euclidean_distances_3_4_5():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    d = euclidean_distances(x)
    assert d[0, 1].item() == pytest.approx(5.0)
    assert d[0, 0].item() == pytest.approx(1e-6)  # sqrt of the 1e-12 clamp


def test_batch_hard_triplet_four_samples():
    # 1-D features x = [0, 1, 3, 7], labels [0, 0, 1, 1]
    # distances: d01=1 d02=3 d03=7 d12=2 d13=6 d23=4
    # row 0: d_ap=1, d_an=min(3,7)=3 -> gap 2;  row 1: d_ap=1, d_an=min(2,6)=2 -> gap 1
    # row 2: d_ap=4, d_an=min(3,2)=2 -> gap -2; row 3: d_ap=4, d_an=min(7,6)=6 -> gap 2
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    labels = torch.tensor([0, 0, 1, 1])
    d_ap, d_an = batch_hard_distances(x, labels)
    assert d_ap.tolist() == pytest.approx([1, 1, 4, 4], abs=1e-5)
    assert d_an.tolist() == pytest.approx([3, 2, 2, 6], abs=1e-5)
    # soft: mean(softplus(-2), softplus(-1), softplus(2), softplus(-2))
    #     = (0.126928 + 0.313262 + 2.126928 + 0.126928) / 4 = 0.673512
    soft = batch_hard_triplet_loss(x, labels, margin="soft")
    assert soft.item() == pytest.approx((2 * _softplus(-2) + _softplus(-1) + _softplus(2)) / 4, abs=1e-5)
    assert soft.item() == pytest.approx(0.673512, abs=1e-5)
    # hard margin 1: relu(1-2)=0, relu(1-1)=0, relu(1+2)=3, relu(1-2)=0 -> 3/4
    assert batch_hard_triplet_loss(x, labels, margin=1.0).item() == pytest.approx(0.75, abs=1e-5)


def test_distractor_rows_are_candidates_not_anchors_and_lonely_ids_get_zero_d_ap():
    # ST layout, b=2 triplets: anchors x=[0, 10], positives [1, 12], negatives [2.5, 20]
    # labels [0, 1, 0, 1, 2, 3]
    # row0 (0):   d_ap=1, d_an=min(10,12,2.5,20)=2.5 -> gap 1.5
    # row1 (10):  d_ap=2, d_an=min(10,9,7.5,10)=7.5 -> gap 5.5
    # row2 (1):   d_ap=1, d_an=min(9,11,1.5,19)=1.5  -> gap 0.5
    # row3 (12):  d_ap=2, d_an=min(12,11,9.5,8)=8    -> gap 6
    # row4 (2.5): no other id-2 sample -> d_ap=0, d_an=1.5 -> gap 1.5
    # row5 (20):  d_ap=0, d_an=8 -> gap 8
    x = torch.tensor([[0.0], [10.0], [1.0], [12.0], [2.5], [20.0]])
    labels = torch.tensor([0, 1, 0, 1, 2, 3])
    d_ap, _ = batch_hard_distances(x, labels)
    assert d_ap[4].item() == 0 and d_ap[5].item() == 0
    # margin 2, anchors = first 4 rows: (0.5 + 0 + 1.5 + 0) / 4 = 0.5
    assert batch_hard_triplet_loss(x, labels, margin=2.0, anchor_rows=4).item() == pytest.approx(0.5, abs=1e-5)
    # all rows: (0.5 + 0 + 1.5 + 0 + 0.5 + 0) / 6 = 0.416667
    assert batch_hard_triplet_loss(x, labels, margin=2.0).item() == pytest.approx(2.5 / 6, abs=1e-5)


def test_soft_margin_gap_clamped_at_minus_50():
    # positives 100 apart, negative 1 away: gap = 1 - 100 = -99 -> clamped to -50 -> softplus(50) ~ 50
    x = torch.tensor([[0.0], [100.0], [1.0], [101.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss = batch_hard_triplet_loss(x, labels, margin="soft")
    assert loss.item() == pytest.approx(50.0, abs=1e-4)
    loss.backward()
    assert torch.all(x.grad == 0)  # clamped: no gradient, as the release


def test_triplet_gradient_finite_with_identical_positives():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0], [5.0, 6.0]], requires_grad=True)
    batch_hard_triplet_loss(x, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(x.grad).all()


def test_single_identity_batch_is_a_user_error():
    with pytest.raises(StreidError, match="2 identities"):
        batch_hard_triplet_loss(torch.rand(4, 3), torch.tensor([5, 5, 5, 5]))


def test_label_smoothed_cross_entropy_three_classes():
    # logits log([1, 2, 1]) -> softmax [0.25, 0.5, 0.25]; target class 1, eps 0.1, K 3
    # q = [0.1/3, 0.9 + 0.1/3, 0.1/3] = [0.0333, 0.9333, 0.0333]
    # loss = -(2 * 0.0333 * ln 0.25 + 0.9333 * ln 0.5) = 0.092420 + 0.646939 = 0.739359
    logits = torch.log(torch.tensor([[1.0, 2.0, 1.0]]))
    loss = label_smoothed_cross_entropy(logits, torch.tensor([1]), epsilon=0.1)
    assert loss.item() == pytest.approx(-(2 * (0.1 / 3) * math.log(0.25) + (0.9 + 0.1 / 3) * math.log(0.5)), abs=1e-6)
    assert loss.item() == pytest.approx(0.739359, abs=1e-5)
    # eps 0 is the plain CE: -ln 0.5
    assert label_smoothed_cross_entropy(logits, torch.tensor([1]), epsilon=0.0).item() == pytest.approx(math.log(2), abs=1e-6)


def test_siamese_verification_pairs_the_halves():
    # labels [1, 2, 1, 5]: pair 0 = (1, 1) same -> target 1; pair 1 = (2, 5) different -> target 0
    # pair 0 logits [0, ln3] -> p(same) = 3/4 -> -ln 0.75 = 0.287682
    # pair 1 logits [ln3, 0] -> p(different) = 3/4 -> 0.287682; mean 0.287682
    # (swapped targets would give -ln 0.25 = 1.386294)
    logits = torch.tensor([[0.0, LN3], [LN3, 0.0]])
    loss = siamese_verification_loss(logits, torch.tensor([1, 2, 1, 5]))
    assert loss.item() == pytest.approx(-math.log(0.75), abs=1e-6)
    with pytest.raises(ValueError, match=r"for 3 labels \(even batch\)"):
        siamese_verification_loss(logits, torch.tensor([1, 2, 1]))


def test_gan_loss_known_logits():
    gan = GANLoss()
    # generator: logit 0 against target 1 -> -ln sigmoid(0) = ln 2
    assert gan.generator_loss(torch.zeros(2, 1)).item() == pytest.approx(math.log(2), abs=1e-6)
    # discriminator: real logits ln3 (sigmoid 0.75) vs 1 -> -ln 0.75 = 0.287682; fake logits 0 vs 0 -> ln 2
    # 0.5 * (0.287682 + 0.693147) = 0.490415 (targets the wrong way round would give 1.039721)
    loss = gan.discriminator_loss(torch.full((1, 1, 3, 2), LN3), torch.zeros(4, 1))
    assert loss.item() == pytest.approx(0.490415, abs=1e-6)


def test_gan_smoothed_targets_ranges_and_reproducible_draws():
    gan = GANLoss(smooth_labels=True)
    g = torch.Generator().manual_seed(7)
    reals = [gan.target(True, g) for _ in range(200)]
    fakes = [gan.target(False, g) for _ in range(200)]
    assert all(0.9 <= t <= 1.0 for t in reals) and all(0.0 <= t <= 0.1 for t in fakes)
    assert len(set(reals)) == 200  # a fresh draw per call
    again = torch.Generator().manual_seed(7)
    assert [gan.target(True, again) for _ in range(200)] == reals
    # generator targets are never smoothed
    assert gan.generator_loss(torch.zeros(3)).item() == pytest.approx(math.log(2), abs=1e-6)


def test_gan_one_smoothed_target_per_call():
    # with a single target t for every element, the discriminator loss equals
    # 0.5 * [mean_i BCE(x_i, t_real) + mean_j BCE(y_j, t_fake)] with t drawn in that order
    gan = GANLoss(smooth_labels=True)
    real = torch.tensor([LN3, 0.0, -LN3])
    fake = torch.tensor([2.0, -1.0])
    loss = gan.discriminator_loss(real, fake, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    t_real = 0.9 + 0.1 * float(torch.rand((), generator=g))
    t_fake = 0.1 * float(torch.rand((), generator=g))

    def bce(x, t):
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    expected = 0.5 * (sum(bce(x, t_real) for x in real.tolist()) / 3 + sum(bce(y, t_fake) for y in fake.tolist()) / 2)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_gan_swap_trades_real_and_fake_targets():
    real, fake = torch.tensor([LN3]), torch.tensor([-LN3])
    # no swap: real ln3 vs 1 -> -ln .75; fake -ln3 (sigmoid .25) vs 0 -> -ln .75; mean 0.287682
    assert GANLoss().discriminator_loss(real, fake).item() == pytest.approx(-math.log(0.75), abs=1e-6)
    # always swap: -ln3 judged against 1 and ln3 against 0 -> -ln .25 = 1.386294
    swapped = GANLoss(swap_probability=1.0).discriminator_loss(real, fake, torch.Generator().manual_seed(0))
    assert swapped.item() == pytest.approx(-math.log(0.25), abs=1e-6)
    assert RELEASE_SWAP_PROBABILITY == pytest.approx(1 / 10001)


def test_masked_l1_on_2x2():
    # pred [[1,2],[3,4]], target [[0,2],[1,1]] -> |diff| [1,0,2,3], mean 6/4 = 1.5
    # mask [[1,1],[0,0]] -> masked |diff| [1,0,0,0], mean over all 4 elements = 0.25
    # (1.5 + 9 * 0.25) / (1 + 9) = 3.75 / 10 = 0.375
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.tensor([[[[0.0, 2.0], [1.0, 1.0]]]])
    mask = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])  # (N, H, W)
    assert masked_l1_loss(pred, target).item() == pytest.approx(1.5)
    assert masked_l1_loss(pred, target, mask).item() == pytest.approx(0.375)
    assert masked_l1_loss(pred, target, mask[:, None]).item() == pytest.approx(0.375)  # (N,1,H,W)
    # three identical channels: the mask broadcasts, means stay over N*3*H*W -> same value
    assert masked_l1_loss(pred.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1), mask).item() == pytest.approx(0.375)


def test_reconstruction_combo_weights_swap_07_self_03():
    # 0.7 * 2.0 + 0.3 * 1.0 = 1.7
    assert reconstruction_loss(torch.tensor(2.0), torch.tensor(1.0)).item() == pytest.approx(1.7)
