"""The exporters' preprocessing: where a frame lands in the detector input, and back.

Expected placements are worked out by hand from each exporter's rule (see
edgepose/detect/letterbox.py's docstring)."""

import numpy as np
import pytest

from edgepose.detect.letterbox import letterbox_image, plan_letterbox
from edgepose.errors import InputError


@pytest.mark.parametrize("frame, pad, expected", [
    # 640x480 into 320x320: half size, 320x240; centred: 80 px to split, 40 above.
    ((640, 480), "center", (0.5, 0, 40, (320, 240))),
    ((640, 480), "corner", (0.5, 0, 0, (320, 240))),
    # 300x500 into 320x320: r = 0.64, 192x320; centred: 128 px to split, 64 left.
    ((300, 500), "center", (0.64, 64, 0, (192, 320))),
    # 101x50 into 64x64: r = 64/101, width 64, height round(31.68) = 32, 32 px to split:
    # top = round(15.9) = 16. Corner: height int(31.68) = 31.
    ((101, 50), "center", (64 / 101, 0, 16, (64, 32))),
    ((101, 50), "corner", (64 / 101, 0, 0, (64, 31))),
    # 100x67 into 64x64: r = 0.64, height round(42.88) = 43, 21 px to split: Ultralytics
    # puts round(10.5 - 0.1) = 10 above and round(10.5 + 0.1) = 11 below.
    ((100, 67), "center", (0.64, 0, 10, (64, 43))),
])
def test_placement(frame, pad, expected):
    size = 64 if frame[0] < 200 else 320
    plan = plan_letterbox(frame, (size, size), "letterbox", pad)
    scale, left, top, resized = expected
    assert plan.scale_x == pytest.approx(scale) and plan.scale_y == pytest.approx(scale)
    assert (plan.left, plan.top, plan.resized) == (left, top, resized)


def test_the_image_is_padded_with_114_around_the_resized_frame():
    frame = np.full((480, 640, 3), 7, np.uint8)
    plan = plan_letterbox((640, 480), (320, 320), "letterbox", "center")
    canvas = letterbox_image(frame, plan, (320, 320), 114)
    assert canvas.shape == (320, 320, 3)
    assert (canvas[:40] == 114).all() and (canvas[280:] == 114).all()
    assert (canvas[40:280] == 7).all()


def test_boxes_come_back_to_the_frame_and_are_clipped():
    plan = plan_letterbox((640, 480), (320, 320), "letterbox", "center")
    back = plan.to_frame(np.array([[50, 65, 150, 165], [-10, 30, 330, 300]]), 640, 480)
    np.testing.assert_allclose(back, [[100, 50, 300, 250], [0, 0, 640, 480]])


def test_stretch_scales_each_axis():
    plan = plan_letterbox((640, 480), (320, 320), "stretch")
    assert (plan.scale_x, plan.scale_y, plan.left, plan.top) == (0.5, 320 / 480, 0, 0)
    np.testing.assert_allclose(plan.to_frame(np.array([[32, 32, 64, 64]]), 640, 480),
                               [[64, 48, 128, 96]])


@pytest.mark.parametrize("args, message", [
    (((0, 10), (32, 32)), "non-empty"),
    (((10, 10), (32, 32), "fit"), "resize"),
    (((10, 10), (32, 32), "letterbox", "left"), "pad"),
])
def test_bad_plans_are_refused(args, message):
    with pytest.raises(InputError, match=message):
        plan_letterbox(*args)
