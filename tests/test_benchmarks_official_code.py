"""benchmarks/official_code.py: how the benchmarks run the official code from a checkout.

The real checkouts are not here (no network, and the repository carries no
official code), so these are stand-in checkouts with the originals' file layout
and entry points, which record what they are handed.
"""

import importlib.util
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout
    sys.path.insert(0, str(ROOT))

from benchmarks import official_code  # noqa: E402
from benchmarks.official_code import OfficialCodeError  # noqa: E402
from edgepose.decode.ae import AeParams  # noqa: E402

torch = pytest.importorskip("torch", reason="the official code runs on torch tensors")

# What the port's Body.__call__ does with its network's outputs that matters here:
# it imports torchvision, runs self.model on a (1, 3, h, w) float tensor, and reads
# both outputs back with .cpu().numpy().
PORT_BODY = """
    import numpy as np
    import torch
    from torchvision import transforms  # imported, never used on this path

    from src import util


    class Body(object):
        def __init__(self, model_path):
            raise AssertionError("the benchmark must not load weights")

        def __call__(self, oriImg):
            data = torch.from_numpy(np.zeros((1, 3, 8, 8), np.float32))
            with torch.no_grad():
                paf, heatmap = self.model(data)
            return util.summary(oriImg, paf.cpu().numpy(), heatmap.cpu().numpy())
"""
PORT_UTIL = """
    def summary(image, paf, heatmap):
        return image.shape, paf, heatmap
"""
PARSER = """
    import torch


    class HeatmapParser(object):
        def __init__(self, cfg):
            self.cfg = cfg
            self.params = type("Params", (), {})()
            self.params.joint_order = [i - 1 for i in [1, 2, 3, 4, 5, 6, 7, 12, 13, 8, 9,
                                                       10, 11, 14, 15, 16, 17]]

        def parse(self, det, tag, adjust=True, refine=True):
            assert isinstance(det, torch.Tensor) and isinstance(tag, torch.Tensor)
            return [det.numpy(), tag.numpy(), adjust, refine], self.cfg
"""


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def port(tmp_path):
    """A stand-in Hzzone/pytorch-openpose checkout, its package `src` unloaded afterwards."""
    yield _write(tmp_path / "pytorch-openpose", {"src/__init__.py": "", "src/body.py": PORT_BODY,
                                                 "src/util.py": PORT_UTIL})
    for name in [name for name in sys.modules if name == "src" or name.startswith("src.")]:
        del sys.modules[name]


def test_the_ports_body_runs_on_the_given_network_maps_without_weights(port):
    run = official_code.openpose_post_network(port)
    pafs = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    heatmaps = -np.ones((5, 3, 4), np.float32)
    shape, paf, heatmap = run(pafs, heatmaps, (16, 24))
    assert shape == (16, 24, 3)
    np.testing.assert_array_equal(paf, pafs[None])
    np.testing.assert_array_equal(heatmap, heatmaps[None])
    # Another call hands the new maps, not the first ones.
    assert run(pafs + 1, heatmaps, (8, 8))[1][0, 0, 0, 0] == 1
    assert "torchvision" not in sys.modules or importlib.util.find_spec("torchvision")


def test_a_directory_without_the_ports_body_is_refused_by_name(tmp_path):
    with pytest.raises(OfficialCodeError, match=r"not a checkout of Hzzone/pytorch-openpose: "
                                                r"no src/body.py"):
        official_code.openpose_post_network(tmp_path)


def test_a_port_that_cannot_be_imported_is_refused(port):
    (port / "src" / "body.py").write_text("import a_module_that_is_not_installed\n")
    with pytest.raises(OfficialCodeError, match="cannot import .*a_module_that_is_not_installed"):
        official_code.openpose_post_network(port)


def test_heatmap_parser_gets_higherhrnets_config_for_the_preset(tmp_path):
    checkout = _write(tmp_path / "higherhrnet", {"lib/core/group.py": PARSER})
    params = AeParams.preset("higherhrnet")
    run = official_code.higherhrnet_parse(checkout, params, 17)
    heatmaps = np.zeros((17, 4, 5), np.float32)
    tags = np.ones((17, 4, 5, 2), np.float32)
    (det, tag, adjust, refine), cfg = run(heatmaps, tags)
    assert det.shape == (1, 17, 4, 5) and tag.shape == (1, 17, 4, 5, 2)
    assert (adjust, refine) == (True, True)
    # HigherHRNet's w32_512 test config: NMS 5 with padding 2, 30 people, 0.1, 1.0.
    assert (cfg.TEST.NMS_KERNEL, cfg.TEST.NMS_PADDING) == (5, 2)
    assert cfg.DATASET.MAX_NUM_PEOPLE == 30 and cfg.DATASET.NUM_JOINTS == 17
    assert (cfg.TEST.DETECTION_THRESHOLD, cfg.TEST.TAG_THRESHOLD) == (0.1, 1.0)
    assert cfg.TEST.USE_DETECTION_VAL is True and cfg.TEST.IGNORE_TOO_MUCH is False
    assert cfg.MODEL.TAG_PER_JOINT is True and cfg.DATASET.WITH_CENTER is False


def test_heatmap_parser_refuses_constants_it_has_no_setting_for(tmp_path):
    checkout = _write(tmp_path / "higherhrnet", {"lib/core/group.py": PARSER})
    with pytest.raises(OfficialCodeError, match="constants of the higherhrnet preset"):
        official_code.higherhrnet_parse(checkout, AeParams.preset("pose-ae-train"), 17)
    with pytest.raises(OfficialCodeError, match="no core/group.py"):
        official_code.higherhrnet_parse(tmp_path, AeParams.preset("higherhrnet"), 17)


def test_the_paf_benchmark_stops_when_the_ports_people_differ(port, tmp_path, capsys):
    from benchmarks import paf_grouping

    (port / "src" / "body.py").write_text(textwrap.dedent("""
        import numpy as np


        class Body(object):
            def __call__(self, oriImg):
                self.model(None)
                return np.zeros((0, 4)), np.zeros((0, 20))  # no peaks, no people
    """))
    code = paf_grouping.main(["--people", "4", "--size", "92x164", "--repeats", "1",
                              "--json", str(tmp_path / "out.json"),
                              "--official-openpose", str(port)])
    assert code == 1
    assert "edgepose and the port's own code disagree" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_the_paf_benchmark_refuses_the_port_with_the_cmu_preset(port, tmp_path, capsys):
    from benchmarks import paf_grouping

    code = paf_grouping.main(["--people", "4", "--size", "92x164", "--preset", "cmu",
                              "--json", str(tmp_path / "out.json"),
                              "--official-openpose", str(port)])
    assert code == 2
    assert "runs the python preset's constants" in capsys.readouterr().err
