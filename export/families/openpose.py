"""OpenPose (CMU's .caffemodel or a Caffe-named .pth): the model with its card."""

from __future__ import annotations

from pathlib import Path

import torch

from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import InputError
from export.families.common import (OPENPOSE_MEAN, OPENPOSE_PAD_VALUE, OPENPOSE_STD,
                                    PreparedModel, load_caffe_named)
from export.models.openpose import STRIDE as OPENPOSE_STRIDE
from export.models.openpose import OpenPoseVariant, build_openpose, parse_openpose_variant

# CMU's classic --net_resolution 656x368: height 368 (the training size), 16:9 width.
OPENPOSE_INPUT_SIZE = (368, 656)


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
    layout, source = load_caffe_named(model, checkpoint, {"coco18": "conv5_5_CPM_L1.weight",
                                                          "body25": "prelu4_2.weight"},
                                      parsed.keypoints)
    card = openpose_card(parsed, size, source,
                         relu_on_final_heatmaps=relu_on_final_heatmaps)
    return PreparedModel(model, card, layout)


def prepare(variant: str, checkpoint: str | Path | None, *, keypoints: str | None = None,
            input_size: tuple[int, int] | None = None) -> PreparedModel:
    return prepare_openpose(variant, checkpoint, input_size=input_size, keypoints=keypoints)
