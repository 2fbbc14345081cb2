"""Model + card for each supported family, and the one-call export behind the CLI.

A card is built here from facts about the official model (normalisation, output
stride, decoder), never from defaults in the runtime.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.decode.topdown import check_dark_kernel, dark_kernel_for_sigma
from edgepose.errors import CheckpointError, InputError
from edgepose.io import check_output_path
from edgepose.keypoints import KEYPOINT_SETS
from export.caffe import read_caffemodel
from export.models import ae_hourglass, cpm, higherhrnet, hourglass
from export.checkpoints import load_strict, read_checkpoint, remap_to_model, sha256_of_file
from export.models.hrnet import build_hrnet, parse_hrnet_variant
from export.models.openpose import STRIDE as OPENPOSE_STRIDE
from export.models.openpose import OpenPoseVariant, build_openpose, parse_openpose_variant
from export.onnx import DEFAULT_OPSET, VerificationResult, check_opset, write_onnx

log = logging.getLogger(__name__)

FAMILIES = ("hrnet", "openpose", "cpm", "hourglass", "ae", "higherhrnet")
# ImageNet statistics in 0-255 units, RGB order: HRNet's 0-1 normalisation × 255.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
HRNET_STRIDE = 4
# OpenPose: BGR, value/256 - 0.5, padded bottom/right with 128 (CMU and the Python port).
OPENPOSE_MEAN = (128.0, 128.0, 128.0)
OPENPOSE_STD = (256.0, 256.0, 256.0)
OPENPOSE_PAD_VALUE = 128.0
# CMU's classic --net_resolution 656x368: height 368 (the training size), 16:9 width.
OPENPOSE_INPUT_SIZE = (368, 656)
# CPM's applyModel.m: the crop is 1.2 x the person rectangle's height.
CPM_BOX_PADDING = 1.2


@dataclass(frozen=True)
class PreparedModel:
    model: torch.nn.Module
    card: ModelCard
    layout: str  # the checkpoint layout detected, or "random-init"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    layout: str
    verification: tuple[VerificationResult, ...]
    opset: int | None = None  # as the written file declares it


def _keypoints_for(joints: int, requested: str | None) -> str:
    if requested is not None:
        if requested not in KEYPOINT_SETS:
            raise InputError(f"unknown keypoint set {requested!r}; known: {sorted(KEYPOINT_SETS)}")
        expected = KEYPOINT_SETS[requested].num_keypoints
        if expected != joints:
            raise CheckpointError(f"the checkpoint predicts {joints} keypoints but "
                                  f"--keypoints {requested} has {expected}")
        return requested
    matching = [s.name for s in KEYPOINT_SETS.values() if s.num_keypoints == joints]
    if len(matching) != 1:
        raise CheckpointError(f"the checkpoint predicts {joints} keypoints; name the keypoint "
                              f"set with --keypoints (candidates: {matching or 'none'})")
    return matching[0]


def _final_layer_joints(state_dict: dict[str, torch.Tensor]) -> int | None:
    for key, tensor in state_dict.items():
        if key.endswith("final_layer.weight") and tensor.ndim == 4:
            return int(tensor.shape[0])
    return None


def official_hrnet_sigma(heatmap_height: int) -> float:
    """The training Gaussian of the official HRNet configs, in heatmap pixels: SIGMA 2 for
    64-row maps (256x192, 256x256), 3 for 96-row maps (384x288)."""
    return heatmap_height / 32


def hrnet_card(variant: str, keypoints: str, source: dict,
               decoder: DecoderSpec | None = None) -> ModelCard:
    """decoder: None gives the official one, the quarter-pixel shift, naming the DARK
    blur (which --refine dark uses) of the official training sigma."""
    parsed = parse_hrnet_variant(variant)
    if decoder is None:
        sigma = official_hrnet_sigma(parsed.input_height // HRNET_STRIDE)
        decoder = DecoderSpec(name="topdown", refine="shift", flip_test=False,
                              extra={"dark_kernel": dark_kernel_for_sigma(sigma)})
    return ModelCard(
        family="hrnet",
        variant=parsed.name,
        paradigm="top-down",
        keypoints=keypoints,
        input=InputSpec(name="input", height=parsed.input_height, width=parsed.input_width,
                        layout="NCHW", color="RGB", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                        pad_value=0.0),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=HRNET_STRIDE),),
        decoder=decoder,
        precision="fp32",
        source=source,
    )


def _training_record(checkpoint: str | Path) -> tuple[dict, Path] | None:
    """The training record beside a checkpoint (`<checkpoint stem>.json`, as `python -m
    export.train` writes it) and its path; None when there is none."""
    record_path = Path(checkpoint).with_suffix(".json")
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{record_path}, the record beside the checkpoint, is not "
                              f"readable JSON ({exc}); fix or remove it") from None
    return (record, record_path) if isinstance(record, dict) else None


def check_trained_variant(checkpoint: str | Path, variant: str) -> None:
    """CheckpointError when the training record beside `checkpoint` names another HRNet
    variant than `variant`.

    HRNet is fully convolutional: weights trained at 128x96 load into a 256x192 model
    without a shape error, and the export then runs at a size the weights never saw.
    """
    found = _training_record(checkpoint)
    config = found[0].get("config") if found is not None else None
    if not isinstance(config, dict) or "variant" not in config:
        return
    record_path = found[1]
    try:
        trained = parse_hrnet_variant(config["variant"]).name
    except (InputError, TypeError, ValueError):
        raise CheckpointError(f"{record_path}: config.variant is {config['variant']!r}; "
                              "expected an HRNet variant name such as w10_128x96; fix or "
                              "remove the record") from None
    asked = parse_hrnet_variant(variant).name
    if trained != asked:
        raise CheckpointError(f"{checkpoint} was trained as HRNet {trained} (its training "
                              f"record {record_path.name} says so), but variant {asked} was "
                              f"asked for; export it with variant={trained!r}")


def trained_decoder(checkpoint: str | Path) -> tuple[DecoderSpec, Path] | None:
    """The decoder the training record beside a checkpoint names (`<checkpoint>.json`
    with a "decoder" block, as `python -m export.train` writes it), and the record's
    path; None when there is no such record."""
    found = _training_record(checkpoint)
    if found is None or "decoder" not in found[0]:
        return None
    record, record_path = found
    block = record["decoder"]
    expected = ('{"refine": "shift" | "dark" | "none", "dark_kernel": a positive odd '
                'integer}')
    if not (isinstance(block, dict) and set(block) == {"refine", "dark_kernel"}
            and block["refine"] in ("shift", "dark", "none")):
        raise CheckpointError(f"{record_path}: its \"decoder\" block is {block!r}; "
                              f"expected {expected}")
    try:
        kernel = check_dark_kernel(block["dark_kernel"])
    except InputError as exc:
        raise CheckpointError(f"{record_path}: decoder.dark_kernel: {exc}") from None
    return (DecoderSpec(name="topdown", refine=block["refine"], flip_test=False,
                        extra={"dark_kernel": kernel}), record_path)


def prepare_hrnet(variant: str, checkpoint: str | Path | None, *,
                  keypoints: str | None = None) -> PreparedModel:
    """HRNet with the checkpoint's weights (strict), or random weights when checkpoint is None."""
    parsed = parse_hrnet_variant(variant)
    if checkpoint is None:
        name = keypoints or "coco17"
        if name not in KEYPOINT_SETS:
            raise InputError(f"unknown keypoint set {name!r}; known: {sorted(KEYPOINT_SETS)}")
        torch.manual_seed(0)
        model = build_hrnet(parsed, KEYPOINT_SETS[name].num_keypoints)
        card = hrnet_card(parsed.name, name, {"format": "random-init"})
        return PreparedModel(model, card, "random-init")
    check_trained_variant(checkpoint, parsed.name)
    raw = read_checkpoint(checkpoint)
    joints = _final_layer_joints(raw)
    if joints is None:
        raise CheckpointError(f"{checkpoint} has no 'final_layer.weight' tensor: it is not an "
                              "HRNet checkpoint (official or mmpose layout)")
    name = _keypoints_for(joints, keypoints)
    model = build_hrnet(parsed, joints)
    layout = _load_strictly(model, checkpoint, raw)
    source = _checkpoint_source(checkpoint, layout)
    trained = trained_decoder(checkpoint)
    decoder = None
    if trained is not None:
        decoder, record_path = trained
        source["decoder_from"] = record_path.name
        log.info("decoder from the training record %s: %s", record_path, decoder.refine)
    card = hrnet_card(parsed.name, name, source, decoder)
    return PreparedModel(model, card, layout)


def parse_input_size(text: str) -> tuple[int, int]:
    """'368x656' -> (368, 656): height first, as in HRNet variant names."""
    match = re.fullmatch(r"([0-9]+)x([0-9]+)", text)
    if match is None:
        raise InputError(f"input size {text!r} is malformed; expected HEIGHTxWIDTH in pixels, "
                         f"e.g. 368x656")
    return int(match.group(1)), int(match.group(2))


def _check_openpose_input(size: tuple[int, int]) -> tuple[int, int]:
    if (len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0
                              or v % OPENPOSE_STRIDE for v in size)):
        raise InputError(f"OpenPose input size {size!r} must be two positive multiples of "
                         f"{OPENPOSE_STRIDE} (height, width), e.g. (368, 656)")
    return int(size[0]), int(size[1])


def openpose_card(variant: OpenPoseVariant, input_size: tuple[int, int], source: dict, *,
                  relu_on_final_heatmaps: bool = False) -> ModelCard:
    height, width = _check_openpose_input(input_size)
    return ModelCard(
        family="openpose",
        variant=variant.name,
        paradigm="bottom-up",
        keypoints=variant.keypoints,
        input=InputSpec(name="input", height=height, width=width, layout="NCHW", color="BGR",
                        mean=OPENPOSE_MEAN, std=OPENPOSE_STD, pad_value=OPENPOSE_PAD_VALUE),
        # The order is the model's: forward returns (pafs, heatmaps).
        outputs=(OutputSpec(name="pafs", role="pafs", stride=OPENPOSE_STRIDE),
                 OutputSpec(name="heatmaps", role="heatmaps", stride=OPENPOSE_STRIDE)),
        decoder=DecoderSpec(name="paf", refine="none", flip_test=False,
                            extra={"preset": "python"}),
        precision="fp32",
        source=source,
        extra={"relu_on_final_heatmaps": True} if relu_on_final_heatmaps else {},
    )


def _variant_hint(keys: set[str], signatures: dict[str, str], variant: str) -> str:
    """A hint naming another variant when the key only it has (`signatures`) is in `keys`."""
    other = [name for name, key in signatures.items() if key in keys and name != variant]
    return f"; it looks like a {other[0]} checkpoint: use --variant {other[0]}" if other else ""


def _checkpoint_source(path: str | Path, layout: str) -> dict:
    """The card's record of where the weights came from."""
    return {"format": layout, "checkpoint": Path(path).name,
            "checkpoint_sha256": sha256_of_file(path)}


def _caffe_named_weights(model: torch.nn.Module, path: Path
                         ) -> tuple[dict[str, torch.Tensor], str, str]:
    """Weights for a Caffe-named model from CMU's .caffemodel (read without Caffe) or a
    converted .pth: (state dict, layout, where, for error messages)."""
    if path.suffix.lower() == ".caffemodel":
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        return read_caffemodel(path, expected_shapes=expected), "caffemodel", f"caffemodel {path}"
    state_dict, layout = remap_to_model(read_checkpoint(path), set(model.state_dict()))
    return state_dict, layout, f"{path} ({layout} layout)"


def prepare_openpose(variant: str, checkpoint: str | Path | None, *,
                     input_size: tuple[int, int] | None = None, keypoints: str | None = None,
                     relu_on_final_heatmaps: bool = False) -> PreparedModel:
    """OpenPose with the checkpoint's weights (strict), or random weights when checkpoint is None.

    variant: coco18 | body25 (or a narrowed test network, e.g. coco18_d8).
    checkpoint: a .caffemodel (CMU's release, read without Caffe) or a .pth in the
        flat Caffe-name layout (e.g. the Hzzone port's body_pose_model.pth).
    input_size: (height, width), multiples of 8; default (368, 656), CMU's 656x368.
    relu_on_final_heatmaps: reproduce the Hzzone port's ReLU on the final heatmaps.
    """
    parsed = parse_openpose_variant(variant)
    size = _check_openpose_input(tuple(input_size) if input_size is not None
                                 else OPENPOSE_INPUT_SIZE)
    if keypoints is not None and keypoints != parsed.keypoints:
        raise InputError(f"OpenPose {parsed.name} predicts the {parsed.keypoints} keypoint set; "
                         f"--keypoints {keypoints} does not match (leave it out)")
    if checkpoint is None:
        torch.manual_seed(0)
        model = build_openpose(parsed, relu_on_final_heatmaps=relu_on_final_heatmaps)
        card = openpose_card(parsed, size, {"format": "random-init"},
                             relu_on_final_heatmaps=relu_on_final_heatmaps)
        return PreparedModel(model, card, "random-init")
    model = build_openpose(parsed, relu_on_final_heatmaps=relu_on_final_heatmaps)
    path = Path(checkpoint)
    state_dict, layout, source = _caffe_named_weights(model, path)
    try:
        load_strict(model, state_dict, source=source)
    except CheckpointError as exc:
        hint = _variant_hint(set(state_dict), {"coco18": "conv5_5_CPM_L1.weight",
                                               "body25": "prelu4_2.weight"}, parsed.keypoints)
        raise CheckpointError(f"{exc}{hint}") from None
    card = openpose_card(parsed, size, _checkpoint_source(path, layout),
                         relu_on_final_heatmaps=relu_on_final_heatmaps)
    return PreparedModel(model, card, layout)


def cpm_card(variant: cpm.CPMVariant, source: dict) -> ModelCard:
    size = cpm.INPUT_SIZE
    return ModelCard(
        family="cpm",
        variant=variant.name,
        paradigm="top-down",
        keypoints="mpii_cpm14",
        input=InputSpec(
            name="input", height=size, width=size, layout="NCHW", color="BGR",
            mean=OPENPOSE_MEAN, std=OPENPOSE_STD, pad_value=OPENPOSE_PAD_VALUE,
            extra={
                "box_rule": "height",
                "box_padding": CPM_BOX_PADDING,
                # The crop always centers the person, so the released models' 4th
                # input channel is a constant: it lives in the graph, and the input
                # is the 3-channel image (see export.models.cpm.CenterMapInput).
                "center_map": {"sigma": cpm.CENTER_MAP_SIGMA, "position": "crop center",
                               "in_graph": True},
            }),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=cpm.STRIDE,
                            extra={"background_channel": True}),),
        decoder=DecoderSpec(name="cpm", refine="none", flip_test=False,
                            extra={"background": True}),
        precision="fp32",
        source=source,
    )


def prepare_cpm(variant: str, checkpoint: str | Path | None, *,
                keypoints: str | None = None) -> PreparedModel:
    """CPM (3-channel input, center map in the graph) with the checkpoint's weights (strict),
    or random weights when checkpoint is None.

    variant: centermap | vgg (or a narrowed test network, e.g. centermap_d8).
    checkpoint: CMU's .caffemodel (read without Caffe), or a .pth in the flat
        Caffe-name layout.
    """
    parsed = cpm.parse_cpm_variant(variant)
    if keypoints not in (None, "mpii_cpm14"):
        raise InputError(f"CPM predicts the mpii_cpm14 keypoint set; --keypoints {keypoints} "
                         "does not match (leave it out)")
    if checkpoint is None:
        torch.manual_seed(0)
        model = cpm.build_cpm(parsed)
        layout, source = "random-init", {"format": "random-init"}
    else:
        model = cpm.build_cpm(parsed)
        path = Path(checkpoint)
        state_dict, layout, where = _caffe_named_weights(model, path)
        try:
            load_strict(model, state_dict, source=where)
        except CheckpointError as exc:
            hint = _variant_hint(set(state_dict), {"centermap": "conv1_stage1.weight",
                                                   "vgg": "conv4_7_CPM.weight"}, parsed.name_)
            raise CheckpointError(f"{exc}{hint}") from None
        source = _checkpoint_source(path, layout)
    wrapped = cpm.CenterMapInput(model, cpm.INPUT_SIZE, cpm.INPUT_SIZE)
    return PreparedModel(wrapped, cpm_card(parsed, source), layout)


def _load_strictly(model: torch.nn.Module, checkpoint: str | Path,
                   raw: dict[str, torch.Tensor] | None = None) -> str:
    """Strict load of a .pth checkpoint (any recognised layout; `raw`: its tensors when
    already read); returns the layout."""
    raw = read_checkpoint(checkpoint) if raw is None else raw
    state_dict, layout = remap_to_model(raw, set(model.state_dict()))
    load_strict(model, state_dict, source=f"{checkpoint} ({layout} layout)")
    return layout


def _random_or_loaded(model: torch.nn.Module, checkpoint: str | Path | None) -> tuple[str, dict]:
    """(layout, card source) of the checkpoint loaded strictly, or of random weights."""
    if checkpoint is None:
        return "random-init", {"format": "random-init"}
    layout = _load_strictly(model, checkpoint)
    return layout, _checkpoint_source(checkpoint, layout)


def _square_input(size: int, color: str, mean: tuple[float, float, float],
                  std: tuple[float, float, float]) -> InputSpec:
    return InputSpec(name="input", height=size, width=size, layout="NCHW", color=color,
                     mean=mean, std=std, pad_value=0.0)


# RGB/255: Princeton's hourglass and pose-ae-train feed images scaled to 0-1, no mean.
UNIT_SCALE = (255.0, 255.0, 255.0)


def prepare_hourglass(variant: str, checkpoint: str | Path | None) -> PreparedModel:
    """Stacked Hourglass (Princeton PoseNet or bearpaw hg), exported as its last stack.

    checkpoint: Princeton's checkpoint.pt ({state_dict: model.module.*, optimizer, epoch})
    or bearpaw's model_best.pth.tar ({state_dict: module.*, ...}); both load strictly.
    """
    parsed = hourglass.parse_hourglass_variant(variant)
    torch.manual_seed(0)
    model = hourglass.build_hourglass(parsed)
    layout, source = _random_or_loaded(model, checkpoint)
    mean = ((0.0, 0.0, 0.0) if parsed.source == "princeton"
            else tuple(255.0 * m for m in hourglass.BEARPAW_MEAN))
    card = ModelCard(
        family="hourglass", variant=parsed.name, paradigm="top-down", keypoints="mpii16",
        input=_square_input(hourglass.INPUT_SIZE, "RGB", mean, UNIT_SCALE),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=hourglass.STRIDE),),
        # The refinement follows the port the weights come from (decode.hourglass).
        decoder=DecoderSpec(name="hourglass", refine="none", flip_test=False,
                            extra={"source": parsed.source, "integer": False}),
        precision="fp32", source=source)
    return PreparedModel(hourglass.LastStack(model), card, layout)


class _SplitHeads(torch.nn.Module):
    """HigherHRNet as the runtime reads it: (heatmaps, tags) at 1/4, heatmaps_hr at 1/2."""

    def __init__(self, model: higherhrnet.HigherHRNet, joints: int) -> None:
        super().__init__()
        self.model, self.joints = model, joints

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        low, high = self.model(x)
        return low[:, :self.joints], low[:, self.joints:], high


def _ae_card(family: str, variant: str, size: int, mean, std, outputs, preset: str,
             source: dict) -> ModelCard:
    return ModelCard(
        family=family, variant=variant, paradigm="bottom-up", keypoints="coco17",
        input=_square_input(size, "RGB", mean, std), outputs=outputs,
        decoder=DecoderSpec(name="ae", refine="none", flip_test=False,
                            extra={"preset": preset}),
        precision="fp32", source=source)


def prepare_higherhrnet(variant: str, checkpoint: str | Path | None) -> PreparedModel:
    """HigherHRNet (official or mmpose 0.x checkpoint), outputs split by role."""
    parsed = higherhrnet.parse_higherhrnet_variant(variant)
    torch.manual_seed(0)
    model = higherhrnet.build_higherhrnet(parsed)
    layout, source = _random_or_loaded(model, checkpoint)
    low, high = higherhrnet.STRIDES
    outputs = (OutputSpec(name="heatmaps", role="heatmaps", stride=low),
               OutputSpec(name="tags", role="tags", stride=low),
               OutputSpec(name="heatmaps_hr", role="heatmaps_hr", stride=high))
    card = _ae_card("higherhrnet", parsed.name, parsed.input_size, IMAGENET_MEAN, IMAGENET_STD,
                    outputs, "higherhrnet", source)
    return PreparedModel(_SplitHeads(model, higherhrnet.NUM_JOINTS), card, layout)


def prepare_ae(variant: str, checkpoint: str | Path | None) -> PreparedModel:
    """pose-ae-train's 4-stack Associative Embedding hourglass, last stack's heatmaps and tags."""
    parsed = ae_hourglass.parse_ae_variant(variant)
    torch.manual_seed(0)
    model = ae_hourglass.build_ae_hourglass(parsed)
    layout, source = _random_or_loaded(model, checkpoint)
    stride = ae_hourglass.STRIDE
    outputs = (OutputSpec(name="heatmaps", role="heatmaps", stride=stride),
               OutputSpec(name="tags", role="tags", stride=stride))
    card = _ae_card("ae", parsed.name, parsed.input_size, (0.0, 0.0, 0.0), UNIT_SCALE, outputs,
                    "pose-ae-train", source)
    return PreparedModel(ae_hourglass.AEHourglassExport(model), card, layout)


def prepare_model(family: str, variant: str, checkpoint: str | Path | None, *,
                  keypoints: str | None = None,
                  input_size: tuple[int, int] | None = None) -> PreparedModel:
    """input_size (height, width) is for families whose variant does not fix it (openpose)."""
    if family == "hrnet":
        if input_size is not None:
            raise InputError("HRNet takes its input size from --variant (e.g. w32_256x192); "
                             "leave out --input-size")
        return prepare_hrnet(variant, checkpoint, keypoints=keypoints)
    if family == "openpose":
        return prepare_openpose(variant, checkpoint, input_size=input_size, keypoints=keypoints)
    if family == "cpm":
        if input_size is not None:
            raise InputError("CPM runs at the released models' 368x368; leave out --input-size")
        return prepare_cpm(variant, checkpoint, keypoints=keypoints)
    if family in ("hourglass", "ae", "higherhrnet"):
        if input_size is not None:
            raise InputError(f"{family} takes its input size from --variant; leave out "
                             "--input-size")
        expected = "mpii16" if family == "hourglass" else "coco17"
        if keypoints not in (None, expected):
            raise InputError(f"{family} predicts the {expected} keypoint set; --keypoints "
                             f"{keypoints} does not match (leave it out)")
        if family == "hourglass":
            return prepare_hourglass(variant, checkpoint)
        if family == "ae":
            return prepare_ae(variant, checkpoint)
        return prepare_higherhrnet(variant, checkpoint)
    raise InputError(f"unknown model family {family!r}; supported: {', '.join(FAMILIES)}")


def export_model(family: str, variant: str, out: str | Path, *,
                 checkpoint: str | Path | None = None, random_init: bool = False,
                 keypoints: str | None = None, input_size: tuple[int, int] | None = None,
                 opset: int = DEFAULT_OPSET, verify: bool = True) -> ExportResult:
    """Checkpoint → verified ONNX with its card; the function behind `edgepose export`."""
    if checkpoint is None and not random_init:
        raise InputError("no --checkpoint given; pass one, or --random-init to export "
                         "untrained weights (only useful for testing the toolchain)")
    if checkpoint is not None and random_init:
        raise InputError("--checkpoint and --random-init exclude each other")
    # Both are found here, before tens of seconds of loading and tracing.
    out = check_output_path(out, "output")
    check_opset(opset)
    if checkpoint is None:
        log.warning("exporting RANDOM weights: the model predicts noise, not poses")
    prepared = prepare_model(family, variant, checkpoint, keypoints=keypoints,
                             input_size=input_size)
    log.info("tracing %s %s to ONNX opset %d (torch.export; tens of seconds on a CPU)",
             family, prepared.card.variant, opset)
    written = write_onnx(prepared.model, prepared.card, out, opset=opset, verify=verify)
    return ExportResult(written.path, prepared.card, prepared.layout, written.verification,
                        written.opset)
