"""Both runners refuse bad feeds, use after close, and a card that contradicts its model
with one edgepose error naming what was expected — before ONNX Runtime or TensorRT sees
anything. ONNX Runtime runs the exported HRNet-W8; TensorRT is the recording double of
test_tensorrt_runner.py (its input is (N, 3, 8, 6) float32, profile batch 1..4)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import onnx
import pytest

from edgepose.backends import open_runner
from edgepose.backends.base import FeedContract, TensorSpec, check_card_against_io
from edgepose.card import METADATA_KEY, ModelCard
from edgepose.errors import BackendError, CardError, InputError, ModelFileError
from edgepose.sidecar import read_sidecar, write_sidecar
from tests.edgepose.backends.test_tensorrt import H as TRT_H
from tests.edgepose.backends.test_tensorrt import W as TRT_W
from tests.edgepose.backends.test_tensorrt import install, write_engine  # noqa: F401 - fixture

ORT_H, ORT_W = 128, 96  # the exported HRNet-W8 128x96


def _x(n, h, w, dtype=np.float32):
    return np.random.default_rng(0).normal(size=(n, 3, h, w)).astype(dtype)


# Each row: feeds made from the input's (height, width), the error's pattern. "{runner}"
# is "model" (ONNX Runtime) or "engine" (TensorRT).
FEED_ROWS = [
    pytest.param(lambda h, w: [_x(1, h, w)],
                 r"feeds must be a dict of input name → array, \{'input': \(N, 3, {h}, {w}\) "
                 r"float32\}.*got a list",
                 id="list"),        # positional feeds: which input is which is not guessed
    pytest.param(lambda h, w: {},
                 r"got feeds \[\] \(missing \['input'\], unknown \[\]\); pass \{'input'",
                 id="missing-name"),  # nothing fed
    pytest.param(lambda h, w: {"input": _x(1, h, w), "image": _x(1, h, w)},
                 r"unknown \['image'\]\); pass \{'input': \(N, 3, {h}, {w}\) float32\}",
                 id="unknown-name"),  # an extra name is a typo or another model's input
    pytest.param(lambda h, w: {"input": _x(1, h, w)[0]},
                 r"shape \(3, {h}, {w}\); this {runner} takes 4 axes, \{'input': \(N, 3",
                 id="rank-3"),      # one crop without its batch axis
    pytest.param(lambda h, w: {"input": _x(1, h + 2, w)},
                 r"axis 2 is {h2}; this {runner} takes \{'input': \(N, 3, {h}, {w}\)",
                 id="height"),      # a crop of another model's size
    pytest.param(lambda h, w: {"input": _x(1, h, w - 2)},
                 r"axis 3 is {w2}; this {runner} takes \{'input': \(N, 3, {h}, {w}\)",
                 id="width"),
    pytest.param(lambda h, w: {"input": _x(1, h, w).transpose(0, 2, 3, 1)},
                 r"axis 1 is {h}; this {runner} takes \{'input': \(N, 3",
                 id="nhwc"),        # channels last fed to a channels-first model
    pytest.param(lambda h, w: {"input": _x(1, h, w, np.float64)},
                 r"'input' is float64; this {runner} takes float32.*astype\(np\.float32\)",
                 id="float64"),     # numpy's default float
    pytest.param(lambda h, w: {"input": _x(1, h, w, np.uint8)},
                 r"'input' is uint8; this {runner} takes float32",
                 id="uint8"),       # raw pixels, not normalised
    pytest.param(lambda h, w: {"input": _x(1, h, w).tolist()},
                 r"'input' is a list; expected a numpy array, \{'input'",
                 id="nested-list"),  # no silent conversion on the hot path
    pytest.param(lambda h, w: {"input": _x(0, h, w)},
                 r"batch 0 is outside this {runner}'s",
                 id="batch-0"),     # an empty batch has nothing to run; callers skip it
]


def _pattern(template, runner, h, w):
    # replace, not format: the patterns hold regex braces.
    for key, value in (("{runner}", runner), ("{h}", h), ("{w}", w), ("{h2}", h + 2),
                       ("{w2}", w - 2)):
        template = template.replace(key, str(value))
    return template


@pytest.mark.parametrize("feeds, message", FEED_ROWS)
def test_onnxruntime_refuses_bad_feeds_and_still_runs(exported_hrnet, feeds, message):
    with open_runner(exported_hrnet) as runner:
        with pytest.raises(InputError, match=_pattern(message, "model", ORT_H, ORT_W)):
            runner.infer(feeds(ORT_H, ORT_W))
        assert runner.infer({"input": _x(1, ORT_H, ORT_W)})["heatmaps"].shape == (1, 17, 32, 24)


@pytest.mark.parametrize("feeds, message", FEED_ROWS)
def test_tensorrt_refuses_bad_feeds_before_any_gpu_work(install, tmp_path, feeds, message):
    doubles = install()
    with open_runner(write_engine(tmp_path)) as runner:
        before = (len(doubles.cuda.calls), len(doubles.journal()))
        with pytest.raises(InputError, match=_pattern(message, "engine", TRT_H, TRT_W)):
            runner.infer(feeds(TRT_H, TRT_W))
        assert (len(doubles.cuda.calls), len(doubles.journal())) == before


def test_tensorrt_refuses_a_batch_over_its_profile(install, tmp_path):
    install()
    with open_runner(write_engine(tmp_path)) as runner:
        with pytest.raises(InputError, match=r"batch 5 is outside this engine's profile 1\.\.4; "
                                             r"split the batch into calls of at most 4"):
            runner.infer({"input": _x(5, TRT_H, TRT_W)})


@pytest.fixture
def fixed_batch_onnx(exported_hrnet, tmp_path):
    """The HRNet with its batch axis fixed at 2, as a graph exported without a dynamic batch."""
    model = onnx.load(str(exported_hrnet))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    path = tmp_path / "fixed_batch.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("batch, reason", [
    (3, "over the graph's fixed batch"),
    (1, "under it: ORT would fail inside the graph"),
])
def test_onnxruntime_refuses_a_batch_its_graph_cannot_take(fixed_batch_onnx, batch, reason):
    with open_runner(fixed_batch_onnx) as runner:
        assert runner.max_batch == 2
        with pytest.raises(InputError, match=rf"batch {batch} is outside this model's batch range "
                                             r"2\.\.2; split the batch into calls of at most 2"):
            runner.infer({"input": _x(batch, ORT_H, ORT_W)})


def test_onnxruntime_after_close_says_closed(exported_hrnet):
    runner = open_runner(exported_hrnet)
    runner.close()
    with pytest.raises(BackendError, match=r"the runner for .*hrnet_w8_128x96\.onnx is closed; "
                                           r"open the model again"):
        runner.infer({"input": _x(1, ORT_H, ORT_W)})


def test_tensorrt_after_close_says_closed(install, tmp_path):
    install()
    runner = open_runner(write_engine(tmp_path))
    runner.close()
    with pytest.raises(BackendError, match=r"model\.engine is closed; open the model again"):
        runner.infer({"input": _x(1, TRT_H, TRT_W)})


# ---------------------------------------------------------------------------------------------
# A card that contradicts its model is refused on opening, naming the file and both values.

def _edit_card(card: dict, change: str) -> None:
    if change == "height":
        card["input"]["height"] *= 2
    elif change == "width":
        card["input"]["width"] += 8
    elif change == "input-name":
        card["input"]["name"] = "image"
    elif change == "missing-output":
        card["outputs"][0]["name"] = "heatmap"
    elif change == "layout":
        card["input"]["layout"] = "NHWC"
    else:  # pragma: no cover - a row naming an edit this helper lacks
        raise AssertionError(change)


def _onnx_with_card_edit(source, folder, change):
    path = folder / "edited.onnx"
    shutil.copyfile(source, path)
    model = onnx.load(str(path))
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    card = json.loads(entry.value)
    _edit_card(card, change)
    entry.value = json.dumps(card)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("change, message", [
    ("height", r"edited\.onnx: the card's input\.height is 256 but the graph's input 'input' has "
               r"shape \(N, 3, 128, 96\), height 128 on axis 2 of NCHW"),   # the case
    ("width", r"edited\.onnx: the card's input\.width is 104 but .* width 96 on axis 3"),
    ("input-name", r"edited\.onnx: the card's input\.name is 'image' but the graph's inputs are "
                   r"\['input'\]"),                                           # renamed in one place
    ("missing-output", r"edited\.onnx: the card names output\(s\) \['heatmap'\] that the graph "
                       r"lacks; the graph's outputs are \['heatmaps'\]"),
    ("layout", r"so 96 channels on axis 3 by the card's input\.layout NHWC; expected 3"),
])
def test_onnxruntime_refuses_a_card_that_contradicts_its_graph(exported_hrnet, tmp_path, change,
                                                               message):
    path = _onnx_with_card_edit(exported_hrnet, tmp_path, change)
    with pytest.raises(CardError, match=message):
        open_runner(path)


def _engine_with_card_edit(folder, change):
    path = write_engine(folder)
    card, info = read_sidecar(path)
    data = card.to_dict()
    _edit_card(data, change)
    write_sidecar(path, ModelCard.from_dict(data), info)
    return path


@pytest.mark.parametrize("change, error, message", [
    ("height", CardError, rf"model\.engine: the card's input\.height is {2 * TRT_H} but the "
                          rf"engine's input 'input' has shape \(N, 3, {TRT_H}, {TRT_W}\)"),
    ("width", CardError, rf"the card's input\.width is {TRT_W + 8} but .* width {TRT_W} on axis 3"),
    ("layout", CardError, rf"so {TRT_W} channels on axis 3 by the card's input\.layout NHWC"),
    # Names the engine lacks stay ModelFileError, as before the shared check: for an engine
    # the card is a separate sidecar file, most likely one of another engine.
    ("input-name", ModelFileError, r"the card names tensor\(s\) \['image'\] that the engine lacks"),
    ("missing-output", ModelFileError,
     r"the card names tensor\(s\) \['heatmap'\] that the engine lacks"),
])
def test_tensorrt_refuses_a_card_that_contradicts_its_engine(install, tmp_path, change, error,
                                                             message):
    doubles = install()
    path = _engine_with_card_edit(tmp_path, change)
    with pytest.raises(error, match=message):
        open_runner(path)
    # Refused before any I/O buffer was planned, and what was made is freed.
    assert doubles.journal("set_tensor_address") == []
    assert doubles.cuda.frees == 1


# ---------------------------------------------------------------------------------------------
# The shared checks alone, where a model would be awkward to make.

_CARD = ModelCard.from_dict({
    "schema": 1, "family": "t", "variant": "v", "paradigm": "top-down", "keypoints": "coco17",
    "input": {"name": "input", "height": 8, "width": 6},
    "outputs": [{"name": "heatmaps", "role": "heatmaps", "stride": 2}],
    "decoder": {"name": "topdown"}})
_OUT = (TensorSpec("heatmaps", np.dtype(np.float32), (None, 17, 4, 3)),)


@pytest.mark.parametrize("shape, message", [
    ((None, 3, 8), r"shape \(N, 3, 8\) \(3 axes\) but the card's input\.layout NCHW needs 4"),
    ((None, 1, 8, 6), r"1 channels on axis 1"),                  # a grey-scale graph
    ((None, 3, None, None), None),                               # run-time H, W: nothing to compare
    ((1, 3, 8, 6), None),                                        # the card states no batch
])
def test_card_check_on_input_shapes(shape, message):
    inputs = (TensorSpec("input", np.dtype(np.float32), shape),)
    if message is None:
        check_card_against_io(_CARD, inputs, _OUT, "m.onnx")
        return
    with pytest.raises(CardError, match=re.escape("m.onnx: ") + ".*" + message):
        check_card_against_io(_CARD, inputs, _OUT, "m.onnx")


def test_feed_contract_describes_an_unbounded_batch():
    contract = FeedContract((TensorSpec("input", np.dtype(np.float32), (None, 3, 8, 6)),))
    assert contract.expected == "{'input': (N, 3, 8, 6) float32} with N in 1 or more"
