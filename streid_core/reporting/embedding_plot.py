"""Does a re-ID feature encode pose? A 2-D map of test features coloured by identity and by pose
cluster, and a number for it.

Pose clusters: k-means on normalised keypoints (each skeleton centred on the mean of its
present joints and scaled to unit RMS radius, so position and size in the crop do not count;
missing joints take the mean normalised position of that joint).

Probe (`pose_invariance_probe`): how many of an image's nearest neighbours in feature space
show the same identity, and how many of its nearest neighbours among OTHER people are in the
same pose cluster. A pose-invariant feature scores high on the first and at chance on the
second. Chance is the share expected from neighbours drawn at random; "skill" rescales the
agreement so that chance is 0 and full agreement is 1: (agreement - chance) / (1 - chance).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..data.keypoints import KeypointConvention
from ..data.records import Record

# t-SNE and k-means on at most a few thousand points: one OpenMP thread takes a few seconds,
# while two spin-waiting threads on a 2-core machine that is doing anything else took 6x longer.
ONE_THREAD = 1


def normalise_poses(keypoints: np.ndarray) -> np.ndarray:
    """(N, K, 2) pixel keypoints (NaN = missing) -> (N, K, 2) centred on each skeleton's mean
    present joint and divided by its RMS distance to that centre; missing joints stay NaN.
    A skeleton with fewer than 2 present joints becomes all NaN."""
    kps = np.asarray(keypoints, dtype=np.float64)
    present = np.isfinite(kps).all(axis=2)
    counts = present.sum(axis=1)
    filled = np.where(present[..., None], kps, 0.0)
    centre = filled.sum(axis=1) / np.maximum(counts, 1)[:, None]
    offset = np.where(present[..., None], kps - centre[:, None, :], 0.0)
    radius = np.sqrt((offset ** 2).sum(axis=(1, 2)) / np.maximum(counts, 1))
    ok = (counts >= 2) & (radius > 0)
    out = np.full_like(kps, np.nan)
    out[ok] = np.where(present[ok][..., None], offset[ok] / radius[ok, None, None], np.nan)
    return out


def pose_descriptors(keypoints: np.ndarray) -> np.ndarray:
    """(N, 2K) vectors for clustering: normalised poses with missing joints set to that joint's
    mean over the set (0 where a joint is never seen)."""
    norm = normalise_poses(keypoints)
    mean = np.zeros(norm.shape[1:])
    seen = np.isfinite(norm).any(axis=0)
    with np.errstate(invalid="ignore"):
        mean[seen] = np.nanmean(np.where(np.isfinite(norm), norm, np.nan), axis=0)[seen]
    filled = np.where(np.isfinite(norm), norm, mean[None])
    return filled.reshape(len(norm), -1)


def pose_clusters(keypoints: np.ndarray, k: int = 8, seed: int = 0) -> np.ndarray:
    """(N,) k-means cluster of each pose (k is capped at the number of distinct poses)."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    desc = pose_descriptors(keypoints)
    k = max(1, min(k, len(np.unique(desc.round(6), axis=0))))
    with threadpool_limits(ONE_THREAD):
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(desc)


def records_keypoints(records: Sequence[Record], conv: KeypointConvention) -> np.ndarray:
    """(N, K, 2) keypoints of every record (all NaN for a record without a pose file)."""
    from ..data.keypoints import load_keypoints

    out = np.full((len(records), conv.num_joints, 2), np.nan, dtype=np.float32)
    for i, record in enumerate(records):
        if record.pose_path:
            out[i] = load_keypoints(record.pose_path, conv)
    return out


def embed_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(N, 2) map of (N, D) features: t-SNE (PCA-initialised, perplexity at most 30 and below
    N / 3) or plain PCA (`method="pca"`, or when there are too few points for t-SNE)."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method not in ("tsne", "pca"):
        raise ValueError(f"method {method!r}: use 'tsne' or 'pca'")
    if method == "pca" or len(x) < 10:
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, (len(x) - 1) / 3.0))
    with threadpool_limits(ONE_THREAD):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


@dataclass
class ProbeResult:
    agreement: float  # mean share of a sample's k nearest eligible neighbours carrying its label
    chance: float  # the same share when the neighbours are drawn at random among the eligible

    @property
    def skill(self) -> float:
        """(agreement - chance) / (1 - chance): 0 at chance, 1 when every neighbour agrees."""
        return (self.agreement - self.chance) / (1.0 - self.chance) if self.chance < 1 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"agreement": float(self.agreement), "chance": float(self.chance), "skill": float(self.skill)}


def neighbour_agreement(features: np.ndarray, labels: Sequence[int], k: int = 5,
                        groups: Sequence[int] | None = None) -> ProbeResult:
    """For each sample, the share of its k nearest neighbours (Euclidean on L2-normalised
    features) with the same label, averaged over samples. Eligible neighbours: every other
    sample, or with `groups` only samples of another group. Chance: for each sample, the share of
    its label among its eligible neighbours, averaged. Samples with no eligible neighbour are
    skipped. Memory: an N x N distance matrix, so subsample large sets first."""
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y = np.asarray(labels)
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    eligible = g[:, None] != g[None, :]
    np.fill_diagonal(eligible, False)
    counts = eligible.sum(axis=1)
    rows = np.flatnonzero(counts > 0)
    if len(rows) == 0:
        raise ValueError("no sample has an eligible neighbour; the probe needs at least two groups")
    dist = np.where(eligible, 2.0 - 2.0 * (x @ x.T), np.inf)  # squared distance of unit vectors
    same = y[:, None] == y[None, :]
    kk = np.minimum(k, counts[rows])
    order = np.argsort(dist[rows], axis=1, kind="stable")
    agree = [same[r, order[i, :kk[i]]].mean() for i, r in enumerate(rows)]
    chance = (same & eligible)[rows].sum(axis=1) / counts[rows]
    return ProbeResult(float(np.mean(agree)), float(np.mean(chance)))


def pose_invariance_probe(features: np.ndarray, pids: Sequence[int], pose_labels: Sequence[int],
                          k: int = 5) -> dict[str, dict[str, float]]:
    """Identity: do a sample's nearest neighbours show the same person? Pose: among OTHER people,
    are its nearest neighbours in the same pose cluster? (Other people only, because a person's
    own neighbouring frames share both identity and pose.) A pose-invariant feature scores high
    on the first and at chance on the second."""
    return {"identity": neighbour_agreement(features, pids, k).as_dict(),
            "pose": neighbour_agreement(features, pose_labels, k, groups=pids).as_dict()}


def embedding_figure(panels: dict[str, np.ndarray], pids: Sequence[int], pose_labels: Sequence[int],
                     probes: dict[str, dict[str, dict[str, float]]] | None = None):
    """One row per model (label -> (N, 2) map): points coloured by identity (left) and by pose
    cluster (right); the probe's skills in the titles when given."""
    from matplotlib.figure import Figure

    pids, pose_labels = np.asarray(pids), np.asarray(pose_labels)
    _, pid_index = np.unique(pids, return_inverse=True)
    size = float(np.clip(3000 / max(len(pids), 1), 4, 30))  # bigger dots when there are few
    rows = max(len(panels), 1)
    fig = Figure(figsize=(10, 4.3 * rows))
    axes = fig.subplots(rows, 2, squeeze=False)
    for row, (label, xy) in enumerate(panels.items()):
        for col, (colours, what, cmap) in enumerate(((pid_index, "identity", "tab20"), (pose_labels, "pose cluster", "tab10"))):
            ax = axes[row, col]
            ax.scatter(xy[:, 0], xy[:, 1], c=colours, cmap=cmap, s=size, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            key = "identity" if col == 0 else "pose"
            note = f"\n{probe_text(probes[label][key])}" if probes and label in probes else ""
            ax.set_title(f"{label}: coloured by {what}{note}", fontsize=9)
    fig.tight_layout()
    return fig


def probe_text(probe: dict[str, float]) -> str:
    """One line: the neighbour agreement and its chance level."""
    return f"nearest neighbours agree {100 * probe['agreement']:.0f} % (chance {100 * probe['chance']:.0f} %)"


def pose_linear_probe(features: np.ndarray, pose_labels: Sequence[int], pids: Sequence[int], folds: int = 5,
                      seed: int = 0) -> float:
    """Accuracy of a logistic-regression classifier predicting the pose cluster from the
    (L2-normalised) feature, cross-validated with whole identities held out of training, so a
    feature cannot score by recognising the person. Compare with always answering the largest
    cluster; lower = less pose in the feature."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y, groups = np.asarray(pose_labels), np.asarray(pids)
    splits = min(folds, len(np.unique(groups)))
    if splits < 2:
        raise ValueError("the linear pose probe needs at least two identities")
    correct = 0
    with threadpool_limits(ONE_THREAD):
        for train, test in GroupKFold(n_splits=splits).split(x, y, groups):
            if len(np.unique(y[train])) < 2:  # one pose in training: the classifier can only answer it
                correct += int((y[test] == y[train][0]).sum())
                continue
            model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x[train], y[train])
            correct += int((model.predict(x[test]) == y[test]).sum())
    return correct / len(y)
