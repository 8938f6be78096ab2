"""The tracker's motion model: one predict/update step checked against hand arithmetic."""
import numpy as np
import pytest

from streid_core.tracking.kalman import BoxKalmanFilter, xyah_to_xywh, xywh_to_xyah


def test_box_conversions_are_inverse_and_use_centre_aspect_height():
    boxes = np.array([[10.0, 20.0, 40.0, 100.0], [0.5, 1.5, 3.0, 6.0]])
    xyah = xywh_to_xyah(boxes)
    # centre (10 + 40/2, 20 + 100/2) = (30, 70), aspect 40/100 = 0.4, height 100
    np.testing.assert_allclose(xyah[0], [30.0, 70.0, 0.4, 100.0])
    np.testing.assert_allclose(xyah_to_xywh(xyah), boxes)


def test_initiate_predict_update_match_hand_computed_step():
    kf = BoxKalmanFilter()  # position noise h/20, velocity noise h/160
    mean, cov = kf.initiate(np.array([10.0, 20.0, 0.5, 100.0]))
    # New track: zero velocity; std of cx = 2 * 100/20 = 10 -> var 100; of vcx = 10 * 100/160 = 6.25 -> 39.0625;
    # aspect std 1e-2 -> var 1e-4.
    np.testing.assert_allclose(mean, [10, 20, 0.5, 100, 0, 0, 0, 0])
    assert cov[0, 0] == pytest.approx(100.0) and cov[4, 4] == pytest.approx(39.0625)
    assert cov[2, 2] == pytest.approx(1e-4) and cov[0, 4] == 0.0

    mean, cov = kf.predict(mean, cov)
    # var(cx) = 100 + 39.0625 (velocity carried into position) + (100/20)^2 = 164.0625;
    # cov(cx, vcx) = 39.0625; var(vcx) = 39.0625 + (100/160)^2 = 39.453125.
    np.testing.assert_allclose(mean[:4], [10, 20, 0.5, 100])
    assert cov[0, 0] == pytest.approx(164.0625)
    assert cov[0, 4] == pytest.approx(39.0625)
    assert cov[4, 4] == pytest.approx(39.453125)

    mean, cov = kf.update(mean, cov, np.array([12.0, 20.0, 0.5, 100.0]))
    # Innovation 2 px in cx; S = 164.0625 + (100/20)^2 = 189.0625.
    # Gain on cx = 164.0625 / 189.0625 = 105/121 -> cx = 10 + 210/121;
    # gain on vcx = 39.0625 / 189.0625 = 25/121 -> vcx = 50/121;
    # posterior var(cx) = 164.0625 * 25 / 189.0625 = 2625/121.
    assert mean[0] == pytest.approx(10 + 210 / 121)
    assert mean[4] == pytest.approx(50 / 121)
    assert cov[0, 0] == pytest.approx(2625 / 121)
    np.testing.assert_allclose(mean[[1, 2, 3, 5, 6, 7]], [20, 0.5, 100, 0, 0, 0], atol=1e-12)

    mean, _ = kf.predict(mean, cov)
    # Constant velocity: the centre moves by the estimated velocity.
    assert mean[0] == pytest.approx(10 + 260 / 121)
