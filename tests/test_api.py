"""The public Python API, `edgepose.load`, and the README's example of it."""

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgepose
from edgepose.api import WHOLE_FRAME_WARNING
from edgepose.cli import main
from edgepose.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def _readme_python_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs_and_matches_the_cli(demo_onnx, tmp_path, monkeypatch,
                                                           capsys):
    (tmp_path / "out" / "demo").mkdir(parents=True)
    shutil.copy(demo_onnx, tmp_path / "out" / "demo" / "hrnet_w10_128x96.onnx")
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_python_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "hrnet w10_128x96 2 people"
    assert printed[1] == "(2, 17, 2) (2, 17)"
    drawing = cv2.imread("out/poses.png")
    image = cv2.imread("assets/demo/people/images/000001.jpg")
    assert drawing.shape == image.shape and not np.array_equal(drawing, image)
    # The API and the CLI are one path: the same keypoints from `edgepose infer`.
    with edgepose.load("out/demo/hrnet_w10_128x96.onnx") as estimator:
        poses = estimator(image, boxes=[[25, 35, 105, 147], [175, 88, 62, 108]])
    assert main(["infer", "--model", "out/demo/hrnet_w10_128x96.onnx", "--image",
                 "assets/demo/people/images/000001.jpg", "--boxes", "25,35,105,147;175,88,62,108",
                 "--json", "out/cli.json"]) == 0
    import json

    cli = json.loads(Path("out/cli.json").read_text())
    np.testing.assert_allclose(np.array(cli[0]["keypoints"]).reshape(17, 3)[:, :2], poses.xy[0],
                               atol=1e-3)


@pytest.fixture
def frame():
    return np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)


def test_load_reports_its_card_warns_without_boxes_and_closes(exported_hrnet, frame):
    estimator = edgepose.load(exported_hrnet, flip_test=True)
    assert estimator.card.family == "hrnet" and estimator.pipeline.flip_test is True
    assert WHOLE_FRAME_WARNING in estimator.warnings(None)
    assert WHOLE_FRAME_WARNING not in estimator.warnings(np.zeros((1, 4)))
    assert len(estimator(frame)) == 1
    estimator.close()
    estimator.close()  # twice is fine
    with pytest.raises(edgepose.EdgeposeError, match="closed"):
        estimator(frame, [[10, 10, 50, 80]])


@pytest.mark.parametrize("overrides, message", [
    ({"preset": "cmu"}, "preset applies to bottom-up models only"),   # a grouping constant
    ({"refine": "princeton"}, "princeton"),                            # hourglass-only rule
])
def test_options_that_do_not_apply_are_refused(exported_hrnet, overrides, message):
    with pytest.raises(InputError, match=message):
        edgepose.load(exported_hrnet, **overrides)


def test_public_names():
    assert set(edgepose.__all__) >= {"load", "Estimator", "Poses", "EdgeposeError", "InputError"}
    assert all(hasattr(edgepose, name) for name in edgepose.__all__)
