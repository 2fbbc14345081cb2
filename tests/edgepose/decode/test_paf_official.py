"""The official port's own outputs: the reference and edgepose must return exactly them.

data/paf_official_outputs.npz holds what Hzzone/pytorch-openpose's ``Body.__call__``
(``src/body.py``, its network stubbed to return the maps) returned for the
synthetic network outputs of paf_reference.NETWORK_CASES: ``candidate`` (x, y,
score, id) and ``subset`` (18 peak ids, total score, part count). The maps are
regenerated from their recipe (stored in the file as ``recipe``), not stored;
``input_sum`` checks the regeneration still gives the maps that were recorded.

Recorded from the official repository at commit 5ee71dc10020403dc3def2bb68f9b77c40337ae2,
its src/body.py and src/util.py run unmodified in a scratch directory outside this
repository, with torch, torchvision and src.model stubbed (Body.__new__, then
``body.model`` set to a callable returning the case's maps as the network's two
outputs, and ``body(np.zeros((H, W, 3), np.uint8))``), for each NETWORK_CASES entry.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.decode.paf import ImageMaps, PafDecoder, PafParams
from edgepose.keypoints import COCO18

from tests.edgepose.decode import paf_reference as ref  # noqa: E402 - after the code under test

DATA = Path(__file__).parent / "data" / "paf_official_outputs.npz"
K = COCO18.num_keypoints


@pytest.fixture(scope="module")
def official():
    with np.load(DATA) as data:
        return {name: data[name] for name in data.files}


def _case_maps(official, name):
    case = ref.NETWORK_CASES[name]
    pafs, heatmaps = ref.network_case_maps(case)
    recorded = official[f"{name}/input_sum"]
    regenerated = [pafs.astype(np.float64).sum(), heatmaps.astype(np.float64).sum()]
    assert np.array_equal(regenerated, recorded), "the recipe no longer gives the recorded maps"
    return case, pafs, heatmaps


def _assert_official(official, name, peaks_xy, peak_scores, rows, atol):
    candidate, subset = official[f"{name}/candidate"], official[f"{name}/subset"]
    np.testing.assert_array_equal(peaks_xy, candidate[:, :2])
    np.testing.assert_allclose(peak_scores, candidate[:, 2], rtol=0, atol=atol)
    assert rows.shape == subset.shape
    np.testing.assert_array_equal(rows[:, :K], subset[:, :K])
    np.testing.assert_array_equal(rows[:, K + 1], subset[:, K + 1])
    np.testing.assert_allclose(rows[:, K], subset[:, K], rtol=0, atol=max(atol * 40, 1e-12))


def test_the_recording_names_its_source_and_every_case(official):
    recipe = json.loads(str(official["recipe"]))
    assert recipe["official_repo"] == "Hzzone/pytorch-openpose"
    assert len(recipe["commit"]) == 40
    assert recipe["cases"] == json.loads(json.dumps(ref.NETWORK_CASES))
    assert sum(len(official[f"{n}/subset"]) for n in ref.NETWORK_CASES) > 20


@pytest.mark.parametrize("name", sorted(ref.NETWORK_CASES))
def test_edgepose_returns_the_official_outputs_bit_for_bit(official, name):
    # Given the maps the port resized, every peak, score and person is the port's.
    case, pafs, heatmaps = _case_maps(official, name)
    decoder = PafDecoder(COCO18, PafParams.python())
    peaks, rows = decoder.group(ref.ports_resize(pafs, case), ref.ports_resize(heatmaps, case),
                                case["image"][0])
    _assert_official(official, name, peaks.xy, peaks.scores, rows, atol=0)


@pytest.mark.parametrize("name", sorted(ref.NETWORK_CASES))
def test_edgepose_on_image_maps_returns_the_official_people(official, name):
    # ImageMaps resizes one channel at a time, which OpenCV rounds a float32 ulp apart
    # from the port's 19-channel resize: the same peaks and people, scores to 1e-6.
    case, pafs, heatmaps = _case_maps(official, name)
    height, width = case["image"]
    decoder = PafDecoder(COCO18, PafParams.python())
    peaks, rows = decoder.group(ImageMaps(pafs, 8, tuple(case["valid"]), (width, height)),
                                ImageMaps(heatmaps, 8, tuple(case["valid"]), (width, height)),
                                height)
    _assert_official(official, name, peaks.xy, peaks.scores, rows, atol=1e-6)


@pytest.mark.parametrize("find_peaks", [ref.peaks_reference, ref.peaks_as_the_port])
@pytest.mark.parametrize("name", sorted(ref.NETWORK_CASES))
def test_the_reference_returns_the_official_outputs(official, name, find_peaks):
    case, pafs, heatmaps = _case_maps(official, name)
    peaks, rows = ref.decode_reference(ref.ports_resize(pafs, case),
                                       ref.ports_resize(heatmaps, case), COCO18,
                                       case["image"][0], PafParams.python(), find_peaks)
    flat = np.array([p for part in peaks for p in part], np.float64).reshape(-1, 4)
    _assert_official(official, name, flat[:, :2], flat[:, 2], rows, atol=0)
    np.testing.assert_array_equal(flat[:, 3], np.arange(len(flat)))  # ids, as the port's
