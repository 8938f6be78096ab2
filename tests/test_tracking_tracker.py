"""The tracker's behaviour on hand-made box scenes: what motion alone gets wrong and appearance
fixes, and the rules of its life cycle (confirmation, loss, re-linking)."""
import numpy as np
import pytest

from _make_tracking_scene import BOX_H, BOX_W, IdentityEmbedder, Scene, turning_dancers
from streid_core.errors import StreidError
from streid_core.tracking.config import TrackerConfig
from streid_core.tracking.mot_eval import score_sequence
from streid_core.tracking.tracker import Tracker, run_sequence


def _ids_at(rows: np.ndarray, frame: int) -> dict[int, float]:
    """{track id: box x} in one frame of result rows."""
    return {int(r[1]): float(r[2]) for r in rows[rows[:, 0] == frame]}


def test_motion_alone_swaps_the_turning_dancers_and_appearance_keeps_them():
    scene = turning_dancers()
    motion_rows = run_sequence(Tracker(TrackerConfig()), scene.frames())
    appearance_rows = run_sequence(Tracker(TrackerConfig(), IdentityEmbedder(scene)), scene.frames())

    # Before the gap both trackers follow A (left, x~252) with id 1 and B (right, x~348) with id 2.
    for rows in (motion_rows, appearance_rows):
        before = _ids_at(rows, 39)
        assert sorted(before) == [1, 2] and before[1] < before[2]
    # After it, A is back on the left (x~260), B on the right (x~340).
    motion_after, appearance_after = _ids_at(motion_rows, 61), _ids_at(appearance_rows, 61)
    assert motion_after[1] > motion_after[2]  # constant velocity handed each id to the other dancer
    assert sorted(appearance_after) == [1, 2] and appearance_after[1] < appearance_after[2]

    motion_score = score_sequence(scene.gt_rows, motion_rows, scene.num_frames)
    appearance_score = score_sequence(scene.gt_rows, appearance_rows, scene.num_frames)
    assert motion_score.clear.id_switches == 2
    assert appearance_score.clear.id_switches == 0
    assert appearance_score.identity.idf1 > motion_score.identity.idf1


def test_lookalike_dancers_are_not_relinked_on_an_ambiguous_match():
    scene = turning_dancers()
    same = np.ones(16) / 4.0  # both identities share one appearance: no match can win by a margin
    embedder = IdentityEmbedder(scene, noise=0.01, prototypes={1: same, 2: same})
    rows = run_sequence(Tracker(TrackerConfig(), embedder), scene.frames())
    # Neither old id is handed out after the gap; the dancers come back as new tracks.
    assert set(_ids_at(rows, 39)) == {1, 2}
    assert set(_ids_at(rows, 75)).isdisjoint({1, 2})


def _one_dancer_jumping(jump_px: float, gap: int) -> Scene:
    """One person at x=100 for 10 frames, unseen for `gap` frames, then at x=100+jump_px."""
    detections, gt = {}, []
    num_frames = 10 + gap + 10
    for frame in range(1, num_frames + 1):
        x = 100.0 if frame <= 10 else 100.0 + jump_px
        gt.append([frame, 1, x, 50.0, BOX_W, BOX_H, 1, 1, 1])
        seen = frame <= 10 or frame > 10 + gap
        box = np.array([[x, 50.0, BOX_W, BOX_H]]) if seen else np.zeros((0, 4))
        detections[frame] = (box, np.ones(len(box), dtype=int))
    return Scene(num_frames, detections, np.array(gt))


def test_relink_gate_widens_with_time_lost():
    # 5 frames lost -> the gate is 1 + 0.1 * 5 = 1.5 heights = 150 px around where the track was.
    near = _one_dancer_jumping(jump_px=140.0, gap=5)
    far = _one_dancer_jumping(jump_px=400.0, gap=5)
    for scene, expected_ids in ((near, {1}), (far, {1, 2})):
        rows = run_sequence(Tracker(TrackerConfig(), IdentityEmbedder(scene)), scene.frames())
        assert set(rows[:, 1].astype(int)) == expected_ids
    # A faster-growing gate (1 + 1.0 * 5 = 6 heights) lets the far jump re-link.
    wide = TrackerConfig(relink_radius_growth=1.0)
    rows = run_sequence(Tracker(wide, IdentityEmbedder(far)), far.frames())
    assert set(rows[:, 1].astype(int)) == {1}


def test_tracks_are_reported_from_the_n_init_th_hit_and_tentative_ones_die_at_a_miss():
    tracker = Tracker(TrackerConfig(n_init=3))
    box = np.array([[10.0, 10.0, 20.0, 50.0]])
    assert tracker.update(box) == [] and tracker.update(box) == []
    reported = tracker.update(box)
    assert [t.track_id for t in reported] == [1]
    np.testing.assert_allclose(reported[0].box, box[0], atol=1e-6)

    other = Tracker(TrackerConfig(n_init=3))
    other.update(box)
    other.update(box)
    other.update(np.zeros((0, 4)))  # a miss before confirmation ends the tentative track
    assert other.num_tracks == 0
    assert other.update(box) == [] and other.update(box) == []
    assert [t.track_id for t in other.update(box)] == [1]


@pytest.mark.parametrize("gap, same_id", [(5, True), (6, False)])
def test_motion_only_track_survives_exactly_max_age_missed_frames(gap, same_id):
    tracker = Tracker(TrackerConfig(max_age=5, n_init=1))
    box = np.array([[10.0, 10.0, 20.0, 50.0]])
    assert [t.track_id for t in tracker.update(box)] == [1]
    for _ in range(gap):
        assert tracker.update(np.zeros((0, 4))) == []
    expected = 1 if same_id else 2
    assert [t.track_id for t in tracker.update(box)] == [expected]


def test_tracking_is_deterministic():
    scene = turning_dancers(seed=3)
    first = run_sequence(Tracker(TrackerConfig(), IdentityEmbedder(scene, seed=1)), scene.frames())
    second = run_sequence(Tracker(TrackerConfig(), IdentityEmbedder(scene, seed=1)), scene.frames())
    np.testing.assert_array_equal(first, second)


def test_embedder_output_must_have_one_row_per_box():
    tracker = Tracker(TrackerConfig(), embedder=lambda frame, boxes: np.ones((len(boxes) + 1, 8)))
    with pytest.raises(ValueError, match="embedder returned shape"):
        tracker.update(np.array([[0.0, 0.0, 10.0, 10.0]]), frame=np.zeros((4, 4, 3), np.uint8))


def test_out_of_range_setting_names_its_flag():
    with pytest.raises(StreidError, match="--max-age"):
        TrackerConfig(max_age=-1)
    with pytest.raises(StreidError, match="--embedding-momentum"):
        TrackerConfig(embedding_momentum=1.0)


def test_frames_without_detections_need_no_image_even_with_an_embedder():
    calls = []

    def embedder(frame, boxes):
        calls.append(len(boxes))
        return np.ones((len(boxes), 4))

    tracker = Tracker(TrackerConfig(n_init=1), embedder)
    box = np.array([[10.0, 10.0, 20.0, 50.0]])
    assert [t.track_id for t in tracker.update(box, frame=np.zeros((60, 40, 3), np.uint8))] == [1]
    assert tracker.update(np.zeros((0, 4))) == []  # no frame passed, nothing to embed
    assert calls == [1]
    with pytest.raises(ValueError, match="pass the frame"):
        tracker.update(box)


class _TurningAround:
    """One person's appearance: `before` for the first 10 frames with detections, then `after`."""

    def __init__(self, cosine_after: float) -> None:
        self.before = np.array([1.0, 0.0])
        self.after = np.array([cosine_after, np.sqrt(1.0 - cosine_after ** 2)])
        self.calls = 0

    def __call__(self, frame, boxes):
        self.calls += 1
        return np.tile(self.before if self.calls <= 10 else self.after, (len(boxes), 1))


@pytest.mark.parametrize("gap, cosine_after, same_id", [
    (2, 0.45, True),    # a short miss, changed look (distance 0.55: no confident re-link): IoU bridges it
    (2, 0.0, False),    # a short miss, but someone else by appearance (distance 1.0 > 0.8): not bridged
    (8, 0.45, False),   # a long gap needs a confident re-link; IoU alone does not bring the id back
])
def test_short_misses_are_bridged_by_iou_when_the_appearance_allows_it(gap, cosine_after, same_id):
    scene = _one_dancer_jumping(jump_px=0.0, gap=gap)
    rows = run_sequence(Tracker(TrackerConfig(), _TurningAround(cosine_after)), scene.frames())
    assert (set(rows[:, 1].astype(int)) == {1}) is same_id
    # motion alone keeps the id in all three cases: the box never moved
    assert set(run_sequence(Tracker(TrackerConfig()), scene.frames())[:, 1].astype(int)) == {1}
