"""The demo trainer: its targets must agree with the runtime's decoder, and its output must load."""

import json

import numpy as np
import pytest
import torch

from export.training.synthetic import SyntheticConfig, write_coco_dataset
from edgepose.decode.dark import dark_kernel_for_sigma
from edgepose.decode.topdown import TopDownDecoder
from edgepose.errors import InputError
from edgepose.preprocess import box_to_center_scale
from export.checkpoints import load_checkpoint_into
from export.families import prepare_hrnet
from export.models.hrnet import build_hrnet, parse_hrnet_variant
from export.training.hrnet import (CropDataset, TrainConfig, gaussian_targets, load_people,
                                   target_sigma, train, weighted_mse)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    annotations = write_coco_dataset(folder, 6, SyntheticConfig(seed=5), workers=1,
                                     progress=False)
    return annotations, folder / "images"


def test_gaussian_targets_peak_on_the_joint():
    joints = np.array([[3.0, 5.0], [10.0, 2.0], [7.0, 7.0]])
    maps = gaussian_targets(joints, np.array([1.0, 1.0, 0.0]), (12, 9), sigma=1.0)
    assert maps.shape == (3, 9, 12)
    for k in range(2):
        y, x = np.unravel_index(np.argmax(maps[k]), maps[k].shape)
        assert (x, y) == tuple(joints[k].astype(int))
        assert maps[k].max() == pytest.approx(1.0)
    assert not maps[2].any()  # an invisible joint teaches "nothing here"


def test_unaugmented_targets_decode_back_to_the_annotations(tiny_set):
    annotations, images = tiny_set
    people = load_people(annotations, images)
    config = TrainConfig()
    dataset = CropDataset(people, config, train=False)
    decoder = TopDownDecoder(refine="dark",
                             dark_kernel=dark_kernel_for_sigma(target_sigma(config)))
    for index in range(min(5, len(people))):
        _, targets, weights = dataset[index]
        person = people[index]
        center, scale = box_to_center_scale(person.box[None], 96 / 128)
        xy, _ = decoder.decode(targets.numpy()[None], center, scale)
        labelled = weights.numpy() > 0
        # The runtime's decoder must put each target peak back on its keypoint: the
        # trainer and the runtime share one crop convention. DARK with the trainer's
        # blur on an exact Gaussian is sub-pixel (measured ≤ 0.073 image px here; a
        # heatmap pixel is about scale*200/24 image pixels).
        error = np.abs(xy[0][labelled] - person.keypoints[labelled, :2]).max()
        assert error < 0.2, (index, error)


def test_training_writes_a_strictly_loadable_float16_checkpoint(tiny_set, tmp_path):
    annotations, images = tiny_set
    out = tmp_path / "demo.pth"
    # Eager: compiling a whole HRNet costs minutes (the compiled loop has its own test).
    config = TrainConfig(variant="w8_128x96", steps=2, batch_size=2, compile="off")
    record = train(annotations, images, out, config)
    assert record["steps"] == 2 and out.with_suffix(".json").is_file()
    assert record["compiled"] is False
    # Targets 1 heatmap pixel wide (the default at 32x24 maps): DARK, blurring with
    # OpenCV's size 5 ([1 4 6 4 1]/16, sigma 1); the export carries it into the card.
    assert record["decoder"] == {"refine": "dark", "dark_kernel": 5}
    assert prepare_hrnet(config.variant, out).card.decoder.extra == {"dark_kernel": 5}
    assert 0 < record["first_step_seconds"] <= record["train_seconds"]
    state = torch.load(out, weights_only=True)
    assert state["final_layer.weight"].dtype == torch.float16
    model = build_hrnet(parse_hrnet_variant(config.variant), 17)
    assert load_checkpoint_into(model, out) == "official"


def test_weighted_mse_follows_its_formula():
    output = torch.tensor([[[[0.5, 0.0], [0.0, 0.2]]], [[[0.1, 0.1], [0.1, 0.1]]]])
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.5]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    weight = torch.tensor([[1.0], [0.0]])  # the second person's joint is not labelled
    # Person 0: squared errors 0.25, 0, 0, 0.09 weighed by 1 + 9·target = 10, 1, 1, 5.5.
    expected = 0.5 * ((0.25 * 10 + 0.09 * 5.5) / 4 * 1.0 + 0.0) / 2
    got = weighted_mse(output, target, weight, foreground_weight=9.0)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # Without foreground weighting it is the official JointsMSELoss.
    plain = 0.5 * ((0.25 + 0.09) / 4) / 2
    assert weighted_mse(output, target, weight).item() == pytest.approx(plain, rel=1e-6)


def test_official_init_is_small_normal_convs_and_identity_batchnorm():
    model = build_hrnet(parse_hrnet_variant("w8_128x96"), 17)
    model.init_weights()
    weights = torch.cat([m.weight.flatten() for m in model.modules()
                         if isinstance(m, torch.nn.Conv2d)])
    assert weights.numel() > 100_000
    assert weights.std().item() == pytest.approx(0.001, rel=0.02)
    assert abs(weights.mean().item()) < 1e-5
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)
    assert torch.all(model.final_layer.bias == 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"variant": "w10"}, "HRNet variant must look like"),
    ({"keypoints": "coco99"}, "coco99"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"batch_size": 2.0}, "batch_size must be a positive integer"),
    ({"learning_rate": float("nan")}, "learning_rate must be > 0"),
    ({"scale_jitter": 1.0}, r"scale_jitter must be in \[0, 1\)"),  # would scale to nothing
    ({"sigma_fraction": 0.0}, "sigma_fraction must be > 0"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"compile": "yes"}, "compile must be one of auto, on, off"),
])
def test_bad_configurations_are_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        TrainConfig(**kwargs)


def test_bad_paths_are_refused_before_training(tiny_set, tmp_path, capsys):
    from export.training.hrnet import main

    annotations, images = tiny_set
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    cases = [(tmp_path / "absent.json", tmp_path / "x.pth", "does not exist"),
             (not_json, tmp_path / "x.pth", "is not JSON"),
             (annotations, tmp_path / "absent" / "x.pth", "output folder")]
    for source, out, message in cases:
        assert main(["--annotations", str(source), "--images", str(images), "--out", str(out),
                     "--steps", "1", "--variant", "w8_128x96"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err, err
        assert not out.exists()


def test_people_with_another_keypoint_count_are_refused(tiny_set, tmp_path):
    annotations, images = tiny_set
    data = json.loads(annotations.read_text())
    labelled = next(ann for ann in data["annotations"] if ann["num_keypoints"] > 0)
    labelled["keypoints"] += [10.0, 10.0, 2.0]  # 18 keypoints, COCO-18's count
    eighteen = tmp_path / "eighteen.json"
    eighteen.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"has 18 keypoints; the coco17 model needs 17"):
        load_people(eighteen, images)
    assert all(person.keypoints.shape == (17, 3) for person in load_people(annotations, images))
