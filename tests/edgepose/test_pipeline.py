"""TopDownPipeline end to end with a stand-in runner that 'sees' one bright dot.

The runner finds the brightest input pixel of each crop and answers with a
Gaussian at the matching heatmap position for every keypoint, so a correct
crop → decode → inverse-transform chain must land on the dot's image position.
"""

import numpy as np
import pytest

from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import CardError, InputError
from edgepose.pipeline import TopDownPipeline, person_scores

HEIGHT, WIDTH, STRIDE, K = 64, 48, 4, 17


def _card(paradigm="top-down", refine="dark", decoder_extra=None):
    return ModelCard(family="test", variant="dot", paradigm=paradigm, keypoints="coco17",
                     input=InputSpec("input", HEIGHT, WIDTH, mean=(0, 0, 0), std=(1, 1, 1)),
                     outputs=(OutputSpec("heatmaps", "heatmaps", STRIDE),),
                     decoder=DecoderSpec("topdown", refine=refine, extra=decoder_extra or {}))


class DotRunner(RunnerBase):
    def __init__(self, card, max_batch=None):
        self.card = card
        self.inputs = (TensorSpec("input", np.dtype(np.float32), (None, 3, HEIGHT, WIDTH)),)
        self.outputs = (TensorSpec("heatmaps", np.dtype(np.float32), (None, K, HEIGHT // STRIDE, WIDTH // STRIDE)),)
        self.max_batch = max_batch
        self.batches = []

    def infer(self, feeds):
        crops = feeds["input"]
        self.batches.append(crops.shape[0])
        h, w = HEIGHT // STRIDE, WIDTH // STRIDE
        ys, xs = np.mgrid[0:h, 0:w]
        out = np.zeros((crops.shape[0], K, h, w), np.float32)
        for n, crop in enumerate(crops):
            brightness = crop.sum(axis=0)
            y, x = np.unravel_index(np.argmax(brightness), brightness.shape)
            # Pixel centres: crop pixel (x, y) sits at heatmap (x/stride, y/stride) in HRNet's convention.
            gx, gy = x / STRIDE, y / STRIDE
            out[n] = np.exp(-((xs - gx) ** 2 + (ys - gy) ** 2) / (2 * 2.0 ** 2))
        return {"heatmaps": out}


def _image_with_dot(x, y, size=(240, 320), radius=1):
    image = np.full((*size, 3), 30, np.uint8)
    image[y - radius:y + radius + 1, x - radius:x + radius + 1] = 255
    return image


@pytest.mark.parametrize("box, dot", [
    ((100, 40, 60, 120), (130, 100)),   # dot at the box centre
    ((20, 10, 100, 200), (60, 150)),    # off-centre, box taller than the input aspect
    ((200, 100, 110, 60), (260, 120)),  # box wider than the input aspect
])
def test_keypoints_land_on_the_dot(box, dot):
    runner = DotRunner(_card())
    poses = TopDownPipeline(runner)(_image_with_dot(*dot), np.array([box], np.float32))
    scale = max(box[2] / WIDTH, box[3] / HEIGHT) * 1.25
    # The 3x3 dot's brightest pixel is its first (top-left) pixel: up to 1 crop pixel of argmax
    # slack, plus linear-interpolation blur, both scaled into image pixels.
    tolerance = 1.5 * scale
    assert np.abs(poses.xy[0] - np.array(dot)).max() <= tolerance
    assert poses.scores.shape == (1, K) and poses.scores.min() > 0.9


def test_many_people_run_in_chunks_of_the_runner_batch():
    runner = DotRunner(_card(), max_batch=4)
    boxes = np.array([(10 + 20 * i, 10, 60, 120) for i in range(10)], np.float32)
    poses = TopDownPipeline(runner)(_image_with_dot(100, 60), boxes)
    assert runner.batches == [4, 4, 2]
    assert len(poses) == 10


def test_no_boxes_means_the_whole_image():
    runner = DotRunner(_card())
    # Downscaled ~8x without antialiasing, a 3x3 dot could fall between samples: use 9x9.
    poses = TopDownPipeline(runner)(_image_with_dot(150, 100, radius=4))
    assert poses.boxes.tolist() == [[0, 0, 320, 240]]
    # The brightest crop pixel can sit anywhere on the dot: its radius plus one crop pixel.
    assert np.abs(poses.xy[0] - [150, 100]).max() <= 4 + 1.5 * 320 / WIDTH * 1.25


def test_a_frame_without_people_gives_empty_poses():
    runner = DotRunner(_card())
    poses = TopDownPipeline(runner)(_image_with_dot(50, 50), np.zeros((0, 4), np.float32))
    assert len(poses) == 0 and poses.xy.shape == (0, K, 2) and runner.batches == []


def test_flip_test_runs_both_crops_and_stays_on_target():
    runner = DotRunner(_card())
    poses = TopDownPipeline(runner, flip_test=True)(_image_with_dot(130, 100),
                                                   np.array([(100, 40, 60, 120)], np.float32))
    assert runner.batches == [1, 1]
    # The official flip-back shifts one heatmap pixel; averaged, that is half a pixel of bias.
    scale = 120 / HEIGHT * 1.25
    assert np.abs(poses.xy[0] - [130, 100]).max() <= (1.5 + 0.5 * STRIDE) * scale


def test_person_score_is_box_score_times_mean_of_confident_keypoints():
    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.15, 0.2]], np.float32)
    # Person 0: (0.9 + 0.5) / 2 × 0.8; person 1: nothing above 0.2 → 0.
    assert person_scores(scores, np.array([0.8, 1.0])).tolist() == pytest.approx([0.56, 0.0])


@pytest.mark.parametrize("image, boxes, message", [
    (np.zeros((10, 10), np.uint8), None, "BGR uint8 image"),                          # grey image
    (np.zeros((10, 10, 3), np.float32), None, "BGR uint8 image"),                     # float image
    (np.zeros((100, 100, 3), np.uint8), [(10, 10, 0, 20)], "box 0"),                  # zero width
    (np.zeros((100, 100, 3), np.uint8), [(200, 200, 20, 20)], "box 0"),               # outside the image
])
def test_bad_input(image, boxes, message):
    pipeline = TopDownPipeline(DotRunner(_card()))
    with pytest.raises(InputError, match=message):
        pipeline(image, None if boxes is None else np.array(boxes, np.float32))


def test_bottom_up_card_is_refused():
    with pytest.raises(InputError, match="bottom-up"):
        TopDownPipeline(DotRunner(_card(paradigm="bottom-up")))


def test_crops_given_as_centers_and_scales_land_on_the_dot():
    from edgepose.decode.hourglass import mpii_center_scale

    runner = DotRunner(_card())
    image = _image_with_dot(150, 120)
    # An MPII-style annotation: objpos above the body centre, scale = height / 200.
    centers, scales = mpii_center_scale(np.array([[150.0, 105.0]]), np.array([0.6]))
    np.testing.assert_allclose(centers, [[150.0, 105.0 + 15 * 0.6]])
    np.testing.assert_allclose(scales, [[0.75, 0.75]])
    poses = TopDownPipeline(runner).run_centers_scales(image, centers, scales)
    assert poses.boxes is None and poses.xy.shape == (1, K, 2)
    assert np.abs(poses.xy[0] - (150, 120)).max() <= 1.5 * 0.75 * 200 / WIDTH
    with pytest.raises(InputError, match="positive scales"):
        TopDownPipeline(runner).run_centers_scales(image, centers, -scales)


def test_only_hourglass_cards_take_whole_pixel_coordinates():
    with pytest.raises(InputError, match="Hourglass"):
        TopDownPipeline(DotRunner(_card()), integer=True)


def test_dark_blur_size_comes_from_the_card():
    pipeline = TopDownPipeline(DotRunner(_card(decoder_extra={"dark_kernel": 5})))
    assert pipeline.decoder.dark_kernel == 5
    # Cards from before the key: mmpose's default.
    assert TopDownPipeline(DotRunner(_card())).decoder.dark_kernel == 11
    # It is the card's even where --refine dark overrides a card that says shift.
    card = _card(refine="shift", decoder_extra={"dark_kernel": 17})
    pipeline = TopDownPipeline(DotRunner(card), refine="dark")
    assert (pipeline.decoder.refine, pipeline.decoder.dark_kernel) == ("dark", 17)


@pytest.mark.parametrize("kernel", [4, 0, "5", True])
def test_a_bad_dark_blur_size_on_the_card_is_a_card_error(kernel):
    with pytest.raises(CardError, match="decoder.dark_kernel"):
        TopDownPipeline(DotRunner(_card(decoder_extra={"dark_kernel": kernel})))
