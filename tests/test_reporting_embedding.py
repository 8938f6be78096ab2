"""Pose clusters, the 2-D feature map and the pose-invariance probe of notebook 05."""
import numpy as np
import pytest

from streid_core.evaluation.pose_probes import (neighbour_agreement, normalise_poses, pose_clusters, pose_descriptors,
                                               pose_invariance_probe, pose_linear_probe)
from streid_core.viz.embedding import embed_2d, embedding_figure


def _skeleton(arms_up: bool, shift=(0.0, 0.0), scale=1.0, rng=None):
    """17 COCO joints; the wrists (9, 10) above the head or at the hips."""
    kps = np.array([[0, -4]] * 5 + [[-2, -2], [2, -2], [-3, 0], [3, 0], [-3, 2], [3, 2],
                                    [-1, 3], [1, 3], [-1, 6], [1, 6], [-1, 9], [1, 9]], dtype=np.float64)
    if arms_up:
        kps[[7, 8]] = [[-3, -4], [3, -4]]
        kps[[9, 10]] = [[-3, -7], [3, -7]]
    if rng is not None:
        kps = kps + rng.normal(0, 0.1, kps.shape)
    return kps * scale + np.array(shift)


def test_normalised_pose_by_hand():
    kps = np.full((1, 3, 2), np.nan)
    kps[0, 0], kps[0, 1] = (10, 20), (14, 20)  # centre (12, 20); offsets (-2, 0), (2, 0); RMS radius 2
    out = normalise_poses(kps)
    np.testing.assert_allclose(out[0, :2], [[-1, 0], [1, 0]])
    assert np.isnan(out[0, 2]).all()


def test_normalisation_ignores_position_and_size_and_fills_missing_with_the_joint_mean():
    a, b = _skeleton(True), _skeleton(True, shift=(40, 25), scale=3.0)
    np.testing.assert_allclose(normalise_poses(np.stack([a, b]))[0], normalise_poses(np.stack([a, b]))[1], atol=1e-12)
    c = b.copy()
    c[9] = np.nan
    desc = pose_descriptors(np.stack([a, c])).reshape(2, 17, 2)
    # c's missing wrist takes the mean normalised wrist: only a has one
    np.testing.assert_allclose(desc[1, 9], normalise_poses(a[None])[0, 9])


def test_pose_clusters_separate_two_poses_whoever_and_wherever_the_dancer_is():
    rng = np.random.default_rng(0)
    up = [_skeleton(True, shift=rng.uniform(0, 50, 2), scale=rng.uniform(1, 3), rng=rng) for _ in range(10)]
    down = [_skeleton(False, shift=rng.uniform(0, 50, 2), scale=rng.uniform(1, 3), rng=rng) for _ in range(10)]
    labels = pose_clusters(np.stack(up + down), k=2, seed=0)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]


def _unit(degrees):
    return np.stack([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))], axis=1)


def test_neighbour_agreement_by_hand():
    feats = _unit([0, 10, 90, 100])
    # k=1: each point's nearest neighbour has its label; chance: 1 of the 3 others shares it
    result = neighbour_agreement(feats, [0, 0, 1, 1], k=1)
    assert result.agreement == 1.0 and result.chance == pytest.approx(1 / 3) and result.skill == pytest.approx(1.0)
    # k=3: the other same-label point and both of the other label -> 1/3 agree, as chance
    result = neighbour_agreement(feats, [0, 0, 1, 1], k=3)
    assert result.agreement == pytest.approx(1 / 3) and result.skill == pytest.approx(0.0)


def test_pose_probe_tells_a_pose_feature_from_an_identity_feature():
    # two people (pids 0, 1), each seen in poses A and B
    pids, poses = [0, 0, 1, 1], [0, 1, 0, 1]
    pose_feature = _unit([0, 90, 5, 95])  # same pose -> close, whoever it is
    identity_feature = _unit([0, 5, 90, 95])  # same person -> close, whatever the pose
    by_pose = pose_invariance_probe(pose_feature, pids, poses, k=1)
    by_identity = pose_invariance_probe(identity_feature, pids, poses, k=1)
    # pose probe: each image's nearest OTHER person shares its pose for the pose feature (chance:
    # 1 of that person's 2 images does)
    assert by_pose["pose"] == {"agreement": 1.0, "chance": 0.5, "skill": 1.0}
    assert by_pose["identity"]["agreement"] == 0.0
    assert by_identity["identity"]["agreement"] == 1.0
    # identity feature, nearest other person: 0->90 (A, A: agree), 5->90 (B, A), 90->5 (A, B), 95->5 (B, B):
    # 2 of 4 agree, which is chance
    assert by_identity["pose"] == {"agreement": 0.5, "chance": 0.5, "skill": 0.0}


def test_linear_pose_probe_reads_pose_from_a_pose_feature_and_not_from_an_identity_feature():
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(10), 12)  # 10 people, 12 images each, poses 0..3 in turn
    poses = np.tile(np.arange(4), 30)
    centres = rng.normal(size=(10, 8))
    pose_dirs = rng.normal(size=(4, 8))
    identity_feature = centres[pids] + 0.05 * rng.normal(size=(120, 8))
    pose_feature = pose_dirs[poses] + 0.05 * rng.normal(size=(120, 8))
    # held-out people: a pose feature still tells the pose, an identity feature only guesses
    assert pose_linear_probe(pose_feature, poses, pids) == 1.0
    assert pose_linear_probe(identity_feature, poses, pids) < 0.45  # chance is 0.25
    with pytest.raises(ValueError, match="two identities"):
        pose_linear_probe(pose_feature[:12], poses[:12], pids[:12])


def test_linear_pose_probe_reads_pose_under_the_large_common_mean_of_a_pooled_relu_feature():
    # pooled ReLU features share a large positive mean; after L2-normalising, what tells the
    # images apart is a small part of each vector
    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(20), 10)
    poses = np.tile(np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3]), 20)  # the largest cluster holds 40 %
    feature = (10.0 + rng.normal(size=(20, 64))[pids] + 0.5 * rng.normal(size=(4, 64))[poses]
               + 0.1 * rng.normal(size=(200, 64)))
    # without standardising, the regularised classifier answered the largest cluster: 0.40
    assert pose_linear_probe(feature, poses, pids) > 0.95


def test_embedding_keeps_separate_groups_apart():
    rng = np.random.default_rng(1)
    feats = np.concatenate([rng.normal(0, 0.05, (15, 8)) + 5 * np.eye(8)[0], rng.normal(0, 0.05, (15, 8)) + 5 * np.eye(8)[1]])
    for method in ("tsne", "pca"):
        xy = embed_2d(feats, method, seed=0)
        assert xy.shape == (30, 2)
        dist = ((xy[:, None] - xy[None]) ** 2).sum(-1)
        np.fill_diagonal(dist, np.inf)
        nearest = dist.argmin(1)
        assert ((nearest < 15) == (np.arange(30) < 15)).all(), method
    fig = embedding_figure({"m1": xy, "m2": xy}, [0] * 15 + [1] * 15, [0, 1] * 15)
    assert len(fig.axes) == 4
