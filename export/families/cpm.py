"""Convolutional Pose Machines (CMU's MPII models): the model, center map in the graph,
with its card."""

from __future__ import annotations

from pathlib import Path

import torch

from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import InputError
from export.families.common import (OPENPOSE_MEAN, OPENPOSE_PAD_VALUE, OPENPOSE_STD,
                                    PreparedModel, load_caffe_named)
from export.models import cpm

# CPM's applyModel.m: the crop is 1.2 x the person rectangle's height.
CPM_BOX_PADDING = 1.2


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
        layout, source = load_caffe_named(model, checkpoint, {"centermap": "conv1_stage1.weight",
                                                              "vgg": "conv4_7_CPM.weight"},
                                          parsed.name_)
    wrapped = cpm.CenterMapInput(model, cpm.INPUT_SIZE, cpm.INPUT_SIZE)
    return PreparedModel(wrapped, cpm_card(parsed, source), layout)


def prepare(variant: str, checkpoint: str | Path | None, *, keypoints: str | None = None,
            input_size: tuple[int, int] | None = None) -> PreparedModel:
    if input_size is not None:
        raise InputError("CPM runs at the released models' 368x368; leave out --input-size")
    return prepare_cpm(variant, checkpoint, keypoints=keypoints)
