"""The demo person detector: output layout, anchor order, target assignment, learning,
the Ultralytics-layout export and its refusal, the command line."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from edgepose.errors import ExportError, InputError  # noqa: E402
from export.models.detector import DetectorConfig, PersonDetector  # noqa: E402
from export.training.detector import (FrameDataset, TrainConfig, assign_targets,  # noqa: E402
                                      batch_loss, build_parser, export_detector, load_frames,
                                      main, train, zoom_and_flip)
from export.training.synthetic import SyntheticConfig, write_coco_dataset  # noqa: E402

# Small enough that every test here runs in well under a second a step.
TINY = DetectorConfig(widths=(4, 8, 8, 8, 8), depths=(1, 1, 1, 1), neck=8)
HEIGHT, WIDTH = 96, 128


def expected_anchor_count(height, width):
    return sum((height // s) * (width // s) for s in (8, 16, 32))


def cell_of_index(index, height, width):
    """(stride, column, row) of output column `index`: stride 8's cells, then 16's, then 32's,
    each row-major."""
    for stride in (8, 16, 32):
        columns, rows = width // stride, height // stride
        if index < columns * rows:
            return stride, index % columns, index // columns
        index -= columns * rows
    raise IndexError(index)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the trainer runs: two OpenMP threads on two shared cores wait on
    each other whenever other work holds a core (40 tiny steps: 1 s against up to 60 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    annotations = write_coco_dataset(folder, 16, SyntheticConfig(image_size=(WIDTH, HEIGHT),
                                                                 seed=7),
                                     workers=1, progress=False)
    return annotations, folder / "images"


@pytest.mark.parametrize("height,width", [(64, 96), (256, 320)])
def test_output_is_one_row_per_value_and_one_column_per_cell(height, width):
    model = PersonDetector(TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, height, width))
    assert out.shape == (1, 5, expected_anchor_count(height, width))
    assert out.shape[2] == {(64, 96): 96 + 24 + 6, (256, 320): 1280 + 320 + 80}[(height, width)]
    assert float(out[0, 4].min()) >= 0 and float(out[0, 4].max()) <= 1
    assert float(out[0, 2:4].min()) > 0  # widths and heights


def test_input_size_must_be_a_multiple_of_the_coarsest_stride():
    with pytest.raises(ValueError, match="multiples of 32"):
        PersonDetector(TINY)(torch.rand(1, 3, 80, 96))


class _OneCell(torch.nn.Module):
    """Stands in for a head's last conv: zero distances everywhere, a high score on one
    feature-map cell only."""

    def __init__(self, row, column):
        super().__init__()
        self.row, self.column = row, column

    def forward(self, x):
        out = torch.zeros(x.shape[0], 5, x.shape[2], x.shape[3])
        out[:, 4] = -10.0
        if self.row is not None:
            out[:, 4, self.row, self.column] = 10.0
        return out


@pytest.mark.parametrize("level,row,column", [(0, 0, 0), (0, 5, 3), (0, 7, 11), (1, 2, 4),
                                              (1, 3, 5), (2, 1, 0), (2, 1, 2)])
def test_anchor_order_is_stride_by_stride_each_row_major(level, row, column):
    model = PersonDetector(TINY).eval()
    for index, head in enumerate(model.heads):
        head[-1] = _OneCell(row if index == level else None, column)
    with torch.no_grad():
        out = model(torch.rand(1, 3, HEIGHT, WIDTH))[0].numpy()
    hot = int(np.argmax(out[4]))
    stride, x, y = cell_of_index(hot, HEIGHT, WIDTH)
    assert (stride, x, y) == ((8, 16, 32)[level], column, row)
    # Zero distances decode to softplus(0) strides on every side: a square on the cell
    # centre, Ultralytics' anchor point (x + 0.5, y + 0.5) × stride.
    assert out[0, hot] == pytest.approx((column + 0.5) * stride)
    assert out[1, hot] == pytest.approx((row + 0.5) * stride)
    assert out[2, hot] == pytest.approx(2 * math.log(2) * stride, rel=1e-5)
    assert out[3, hot] == pytest.approx(2 * math.log(2) * stride, rel=1e-5)


@pytest.mark.parametrize("box,stride", [
    ((100, 60, 130, 110), 8),    # 30 x 50: longer side under 64 px
    ((40, 20, 80, 120), 16),     # 40 x 100
    ((150, 30, 230, 250), 32),   # 80 x 220
    ((200, 100, 203, 103), 8),   # 3 x 3, between cell centres: one positive still
])
def test_positives_lie_inside_their_box_at_the_stride_of_its_size(box, stride):
    boxes = np.array([box], np.float32)
    target, positive = assign_targets(boxes, 256, 320)
    assert target.shape == (expected_anchor_count(256, 320), 4)
    indices = np.flatnonzero(positive)
    assert len(indices) >= 1
    x1, y1, x2, y2 = box
    for index in indices:
        cell_stride, x, y = cell_of_index(index, 256, 320)
        assert cell_stride == stride
        center = ((x + 0.5) * stride, (y + 0.5) * stride)
        if (x2 - x1) > stride:  # a box wider than a cell must hold its positives' centres
            assert x1 < center[0] < x2 and y1 < center[1] < y2
        else:
            assert abs(center[0] - (x1 + x2) / 2) <= stride / 2
        np.testing.assert_allclose(target[index], box)
    assert not target[~positive].any()


def test_a_cell_in_two_boxes_belongs_to_the_smaller():
    small, large = (96, 96, 150, 150), (60, 60, 200, 250)
    boxes = np.array([large, small], np.float32)
    target, positive = assign_targets(boxes, 256, 320, strides=(8,))
    # Only one stride: both boxes are assigned there, and cell (15, 15) lies in both.
    columns = 320 // 8
    shared = 15 * columns + 15
    assert positive[shared]
    np.testing.assert_allclose(target[shared], small)


def test_flip_and_zoom_move_the_boxes_with_the_pixels():
    image = np.zeros((96, 128, 3), np.uint8)
    box = np.array([[20, 30, 50, 80]], np.float32)
    image[30:80, 20:50] = 255

    def white_box(picture):
        ys, xs = np.nonzero(picture[..., 0] > 127)
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)

    flipped, flipped_box = zoom_and_flip(image, box, np.random.default_rng(0),
                                         TrainConfig(flip_probability=1, jitter_probability=0))
    np.testing.assert_allclose(flipped_box[0], [128 - 50, 30, 128 - 20, 80])
    np.testing.assert_allclose(white_box(flipped), flipped_box[0])
    for seed in range(4):
        zoomed, zoomed_box = zoom_and_flip(image, box, np.random.default_rng(seed),
                                           TrainConfig(flip_probability=0, jitter_probability=1,
                                                       scale_jitter=0.3))
        np.testing.assert_allclose(white_box(zoomed), zoomed_box[0], atol=1.5)


def test_a_few_steps_on_synthetic_people_lower_the_loss(tiny_set):
    annotations, images = tiny_set
    torch.manual_seed(0)
    config = TrainConfig(input_height=HEIGHT, input_width=WIDTH)
    frames, _ = load_frames(annotations, images)
    dataset = FrameDataset(frames, config, train=False)
    batch = [torch.stack(column) for column in zip(*(dataset[i] for i in range(len(dataset))))]
    assert batch[2].any()  # there are positives to learn
    model = PersonDetector(TINY).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = batch_loss(model, batch, config)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-5:]) < 0.7 * losses[0], losses
    # And the score learned is the person's: higher on the positive cells than elsewhere.
    with torch.no_grad():
        scores = torch.sigmoid(model.raw(batch[0])[1])
    on_people, elsewhere = scores[batch[2]].mean(), scores[~batch[2]].mean()
    assert on_people > 5 * elsewhere


def _session_io(path):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.get_inputs(), session.get_outputs()


def test_export_writes_an_ultralytics_layout_file_that_matches_pytorch(tmp_path):
    torch.manual_seed(1)
    model = PersonDetector(TINY).eval()
    out = tmp_path / "detector.onnx"
    check = export_detector(model, out, 64, 96)
    assert check["opset"] == 17
    proto = onnx.load(str(out))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["names"] == "{0: 'person'}" and meta["imgsz"] == "[64, 96]"
    assert meta["stride"] == "32" and meta["task"] == "detect" and meta["author"] == "edgepose"
    assert "synthetic" in meta["description"]
    session, inputs, outputs = _session_io(out)
    assert [(i.name, i.shape) for i in inputs] == [("images", [1, 3, 64, 96])]
    assert [(o.name, o.shape) for o in outputs] == [("output0", [1, 5, 96 + 24 + 6])]
    image = np.random.default_rng(3).random((1, 3, 64, 96), dtype=np.float32)
    produced = session.run(None, {"images": image})[0]
    with torch.no_grad():
        expected = model(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(produced, expected, atol=1e-3)


class _DriftsWhenTraced(PersonDetector):
    def forward(self, images):
        out = super().forward(images)
        return out + 1.0 if torch.jit.is_tracing() else out


def test_an_export_that_differs_from_pytorch_leaves_no_file(tmp_path):
    out = tmp_path / "detector.onnx"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_detector(_DriftsWhenTraced(TINY).eval(), out, 64, 96)
    assert list(tmp_path.iterdir()) == []


def test_training_writes_the_onnx_file_and_its_scored_record(tiny_set, tmp_path):
    annotations, images = tiny_set
    out = tmp_path / "person_detector.onnx"
    config = TrainConfig(input_height=HEIGHT, input_width=WIDTH, steps=2, batch_size=8,
                         compile="off", precision="fp32", loader_workers=0, validation_count=2)
    record = train(annotations, images, out, config, command="python -m x")
    written = json.loads(out.with_suffix(".json").read_text())
    assert written["steps"] == 2 and written["command"] == "python -m x"
    data = json.loads(annotations.read_text())
    assert written["data"]["boxes"] == len(data["annotations"])
    assert written["data"]["generator_seed"] == 7
    assert written["onnx_bytes"] == out.stat().st_size
    validation = record["validation"]
    assert validation["seed"] == 2 and validation["images"] == 2
    assert all(0.0 <= validation[k] <= 1.0 for k in ("AP", "AP50", "AP75"))
    _, inputs, outputs = _session_io(out)
    assert inputs[0].shape == [1, 3, HEIGHT, WIDTH]
    assert outputs[0].shape == [1, 5, expected_anchor_count(HEIGHT, WIDTH)]


def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys):
    status = main(["--annotations", str(tmp_path / "missing.json"), "--images", str(tmp_path),
                   "--out", str(tmp_path / "d.onnx"), "--compile", "off"])
    assert status == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(InputError, match="multiples of 32"):
        TrainConfig(input_height=100)


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for option in ("--annotations", "--images", "--out", "--steps", "--batch-size", "--lr",
                   "--height", "--width", "--seed", "--val-count", "--val-seed", "--threads",
                   "--loader-workers", "--precision", "--compile"):
        assert option in text


def test_the_shipped_detector_has_the_layout_its_record_describes():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[3] / "assets/models/person_detector_synthetic.onnx"
    if not shipped.is_file():
        pytest.skip("the demo detector is not in this checkout (make demo-detector)")
    record = json.loads(shipped.with_suffix(".json").read_text())
    assert record["onnx_bytes"] == shipped.stat().st_size < 10_000_000
    _, inputs, outputs = _session_io(shipped)
    assert [(i.name, i.shape) for i in inputs] == [("images", [1, 3, 256, 320])]
    assert [(o.name, o.shape) for o in outputs] == [("output0", [1, 5, 1280 + 320 + 80])]
    meta = {p.key: p.value for p in onnx.load(str(shipped)).metadata_props}
    assert meta["names"] == "{0: 'person'}" and meta["imgsz"] == "[256, 320]"
    assert record["validation"]["seed"] != record["data"]["generator_seed"]
    assert 0.0 < record["validation"]["AP50"] <= 1.0
