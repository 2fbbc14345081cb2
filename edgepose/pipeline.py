"""Pipelines: a frame in, Poses out, driven by the runner's ModelCard alone.

TopDownPipeline crops person boxes; PafPipeline (OpenPose PAFs) and
AeBottomUpPipeline (associative embedding: AE, HigherHRNet) run the whole frame
and group parts into people; pipeline_for picks one by the card. Each refuses
frames above MAX_FRAME_PIXELS, and close() (or ``with``) closes its runner.

Shape letters: N people, K keypoints, H, W heatmap size.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from edgepose._closing import Closeable
from edgepose.backends.base import Runner
from edgepose.card import AeSpec, CpmSpec, HourglassSpec, InputSpec, ModelCard, PafSpec
from edgepose.card import TopDownSpec
from edgepose.decode.ae import AeDecoder, AeParams
from edgepose.decode.ae_maps import aggregate_higherhrnet, resize_bilinear
from edgepose.decode.ae_maps import average_flip as ae_average_flip
from edgepose.decode.cpm import CpmDecoder
from edgepose.decode.hourglass import REFINE_METHODS as HOURGLASS_REFINES
from edgepose.decode.hourglass import HourglassDecoder
from edgepose.decode.paf import ImageMaps, PafDecoder, PafParams
from edgepose.decode.topdown import TopDownDecoder, average_flip
from edgepose.errors import CardError, DecodeError, InputError
from edgepose.keypoints import get_keypoint_set
from edgepose.poses import Poses
# MAX_FRAME_PIXELS and check_frame are read from here too (the bound every pipeline keeps).
from edgepose.preprocess import (  # noqa: F401
    MAX_FRAME_PIXELS,
    affine_matrices,
    check_frame,
    crop_centers_scales,
    crop_batch,
    normalize_to_tensor,
    resize_pad_for_bottom_up,
    validate_box_scores,
    validate_boxes,
)

# Official HRNet/COCO rescoring: keypoints below this confidence do not vote.
KEYPOINT_VOTE_THRESHOLD = 0.2
# Batch size for runners whose batch axis is dynamic (ONNX Runtime on the CPU).
DEFAULT_CHUNK = 16


def input_buffer(spec: InputSpec, batch: int) -> np.ndarray:
    """The float32 network input for `batch` images in the card's layout, allocated once."""
    shape = ((batch, 3, spec.height, spec.width) if spec.layout == "NCHW"
             else (batch, spec.height, spec.width, 3))
    return np.empty(shape, np.float32)


class _Pipeline(Closeable):
    """close() and ``with`` for a pipeline: they close the runner it was given."""

    runner: Runner

    def _release(self) -> None:
        self.runner.close()

    def __del__(self) -> None:
        # Only close() and with close the runner: a pipeline dropped while its runner
        # still serves others (one pipeline per frame on a shared runner) must not.
        pass


def person_scores(keypoint_scores: np.ndarray, box_scores: np.ndarray,
                  threshold: float = KEYPOINT_VOTE_THRESHOLD) -> np.ndarray:
    """COCO person score: box score × mean of the keypoint scores above `threshold` (0 if none)."""
    voting = keypoint_scores > threshold
    count = voting.sum(axis=1)
    total = np.where(voting, keypoint_scores, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return (mean * box_scores).astype(np.float32)


class TopDownPipeline(_Pipeline):
    """Frame + person boxes → crops → runner (in chunks) → decode → image-space Poses.

    `flip_test` and `refine` override the card's decoder settings when given;
    `box_padding` overrides the card's (card.input.crop, which also gives the rule
    by which a box becomes a crop). Decoders: "topdown" (HRNet heatmaps), "cpm"
    (belief maps with a background channel, upsampled to the input size) and
    "hourglass" (the Princeton or bearpaw quarter-pixel rule of the card's source),
    set up by the card's decoder.spec (top_down_decoder).
    `chunk`: people per runner call, at most the runner's max batch (default: that
    max batch, DEFAULT_CHUNK when the batch axis is dynamic).

    `stage_hook`, when set, is called with the name of the stage that just ended:
    "preprocess" (crops and input tensor ready), "infer" (a runner call returned;
    twice per chunk with the flip test), "decode" (the maps copied out of the
    runner's buffers, flip-merged, or decoded into Poses). edgepose.profile times
    the stages between consecutive calls; None (the default) costs one check.
    """

    stage_hook: Callable[[str], None] | None = None

    def __init__(self, runner: Runner, *, flip_test: bool | None = None,
                 refine: str | None = None, box_padding: float | None = None,
                 integer: bool | None = None, chunk: int | None = None) -> None:
        card: ModelCard = runner.card
        if card.paradigm != "top-down":
            raise InputError(
                f"{card.family}/{card.variant} is a {card.paradigm} model; TopDownPipeline "
                "needs a top-down model"
            )
        self.runner = runner
        self.card = card
        self.keypoint_set = get_keypoint_set(card.keypoints)
        self.flip_test = card.decoder.spec.flip_test if flip_test is None else flip_test
        self.decoder = top_down_decoder(card, refine, integer)
        crop = card.input.crop
        self.box_rule = crop.rule
        self.box_padding = crop.padding if box_padding is None else box_padding
        self.heatmap_name = card.output("heatmaps").name
        spec = card.input
        self.input_size = (spec.width, spec.height)
        if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool)
                                  or chunk < 1 or (runner.max_batch is not None
                                                   and chunk > runner.max_batch)):
            raise InputError(f"chunk is {chunk!r}; expected an integer from 1 to the runner's "
                             f"max batch ({runner.max_batch or 'unbounded'})")
        self.chunk = chunk or runner.max_batch or DEFAULT_CHUNK
        self._crops = np.empty((self.chunk, spec.height, spec.width, 3), np.uint8)
        self._tensor = input_buffer(spec, self.chunk)
        # Mirroring the input means reversing its width axis, wherever the layout puts it.
        self._width_axis = 3 if spec.layout == "NCHW" else 2

    def __call__(self, image: np.ndarray, boxes: np.ndarray | None = None,
                 box_scores: np.ndarray | None = None) -> Poses:
        """image (h, w, 3) BGR uint8; boxes (N, 4) xywh float pixels (None: the whole
        image); box_scores (N,) finite, >= 0 (None: all 1). Anything else, a string
        or a fifth column included, is an InputError."""
        check_frame(image)
        height, width = image.shape[:2]
        if boxes is None:
            boxes = np.array([[0.0, 0.0, width, height]], np.float32)
        boxes = validate_boxes(boxes, width, height)
        people = boxes.shape[0]
        box_scores = (np.ones(people, np.float32) if box_scores is None
                      else validate_box_scores(box_scores, people))
        if people == 0:
            count = self.keypoint_set.num_keypoints
            return Poses(xy=np.zeros((0, count, 2)), scores=np.zeros((0, count)),
                         person_scores=np.zeros(0), keypoint_set=self.keypoint_set.name,
                         boxes=np.zeros((0, 4)))
        centers, scales = self.centers_scales(boxes)
        poses = self.run_centers_scales(image, centers, scales, box_scores)
        return Poses(xy=poses.xy, scores=poses.scores, person_scores=poses.person_scores,
                     keypoint_set=poses.keypoint_set, boxes=boxes)

    def run_centers_scales(self, image: np.ndarray, centers: np.ndarray, scales: np.ndarray,
                           box_scores: np.ndarray | None = None) -> Poses:
        """Run crops given directly as centers and scales (N, 2) in pixel_std units, e.g.
        MPII annotations through decode.hourglass.mpii_center_scale (c_y += 15·s, s × 1.25).
        Poses.boxes is None: no box was given."""
        check_frame(image)
        centers = np.asarray(centers, np.float64).reshape(-1, 2)
        scales = np.asarray(scales, np.float64).reshape(-1, 2)
        people = centers.shape[0]
        if scales.shape[0] != people or not (np.isfinite(centers).all()
                                             and np.isfinite(scales).all() and (scales > 0).all()):
            raise InputError(f"expected finite centers and positive scales, one (x, y) and one "
                             f"(sw, sh) per person; got shapes {centers.shape}, {scales.shape}")
        box_scores = (np.ones(people, np.float32) if box_scores is None
                      else validate_box_scores(box_scores, people))
        count = self.keypoint_set.num_keypoints
        if people == 0:
            return Poses(xy=np.zeros((0, count, 2)), scores=np.zeros((0, count)),
                         person_scores=np.zeros(0), keypoint_set=self.keypoint_set.name)
        matrices = affine_matrices(centers, scales, self.input_size)
        heatmaps = np.concatenate([self._run_chunk(image, matrices[start:start + self.chunk])
                                   for start in range(0, people, self.chunk)])
        xy, scores = self.decoder.decode(heatmaps, centers, scales)
        hook = self.stage_hook
        if hook is not None:
            hook("decode")
        return Poses(xy=xy, scores=scores, person_scores=person_scores(scores, box_scores),
                     keypoint_set=self.keypoint_set.name)

    def centers_scales(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Crop centers and scales (N, 2) for boxes (N, 4) xywh, by the card's box rule."""
        return crop_centers_scales(boxes, self.card.input, self.box_padding)

    def merge_flip(self, heatmaps: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
        """The flip-test average of the maps of the crops and of their mirror images.

        HRNet shifts the mirrored maps by a pixel (its SHIFT_HEATMAP); the hourglass
        ports and CPM average them as they are.
        """
        return average_flip(heatmaps, mirrored, self.flip_permutation(heatmaps.shape[1]),
                            shift=self.card.decoder.name == "topdown")

    def flip_permutation(self, channels: int) -> np.ndarray:
        """Map channel permutation under a mirror; channels past the keypoints (CPM's
        background) stay where they are."""
        permutation = list(self.keypoint_set.flip_permutation())
        return np.array(permutation + list(range(len(permutation), channels)))

    def _run_chunk(self, image: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        count = matrices.shape[0]
        crops = crop_batch(image, matrices, self.input_size, out=self._crops[:count],
                           border_value=self.card.input.pad_value)
        spec = self.card.input
        tensor = normalize_to_tensor(crops, spec.mean, spec.std, color=spec.color,
                                     layout=spec.layout, out=self._tensor[:count])
        hook = self.stage_hook
        if hook is not None:
            hook("preprocess")
        heatmaps = self._infer(tensor, hook)
        if self.flip_test:
            mirrored = np.ascontiguousarray(np.flip(tensor, axis=self._width_axis))
            if hook is not None:
                hook("preprocess")
            heatmaps = self.merge_flip(heatmaps, self._infer(mirrored, hook))
            if hook is not None:
                hook("decode")
        return heatmaps

    def _infer(self, tensor: np.ndarray, hook: Callable[[str], None] | None) -> np.ndarray:
        outputs = self.runner.infer({self.card.input.name: tensor})
        if hook is not None:
            hook("infer")
        # Copied because runners may hand out views of buffers reused on the next call.
        heatmaps = np.array(outputs[self.heatmap_name], dtype=np.float32, copy=True)
        if hook is not None:
            hook("decode")
        return heatmaps


def top_down_decoder(card: ModelCard, refine: str | None = None, integer: bool | None = None
                     ) -> TopDownDecoder | CpmDecoder | HourglassDecoder:
    """The decoder a top-down card names; `refine` overrides the card's refinement, and
    `integer` asks for the hourglass ports' original whole-pixel output coordinates."""
    spec = card.decoder.spec
    if integer is not None and not isinstance(spec, HourglassSpec):
        raise InputError("whole-pixel output coordinates are an option of the Stacked "
                         f"Hourglass ports only; {card.family}/{card.variant} decodes "
                         "sub-pixel")
    if isinstance(spec, HourglassSpec):
        # Each port's quarter-pixel rule by name; the card's is that of the weights' source.
        if refine not in (None, *HOURGLASS_REFINES):
            raise InputError(f"hourglass refinement is one of {HOURGLASS_REFINES} (the card's "
                             f"default: {spec.source}); got {refine!r}")
        return HourglassDecoder(refine=refine or spec.source,
                                integer=spec.integer if integer is None else integer)
    if isinstance(spec, CpmSpec):
        if refine not in (None, "none"):
            raise InputError(f"CPM decoding is the published argmax of upsampled maps; "
                             f"refine {refine!r} does not apply (use 'none')")
        return CpmDecoder(stride=card.output("heatmaps").stride, background=spec.background)
    if not isinstance(spec, TopDownSpec):
        raise CardError(f"{card.family}/{card.variant}: decoder {card.decoder.name!r} is not a "
                        "top-down decoder (topdown, cpm, hourglass)")
    return TopDownDecoder(refine=spec.refine if refine is None else refine,
                          dark_kernel=spec.dark_kernel)


def keypoint_boxes(xy: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """xywh boxes (N, 4) around each person's found keypoints (score > 0); zeros if none."""
    found = scores > 0
    boxes = np.zeros((xy.shape[0], 4), np.float32)
    for axis in (0, 1):
        coord = xy[..., axis]
        low = np.where(found, coord, np.inf).min(axis=1, initial=np.inf)
        high = np.where(found, coord, -np.inf).max(axis=1, initial=-np.inf)
        any_found = found.any(axis=1)
        boxes[:, axis] = np.where(any_found, low, 0)
        boxes[:, axis + 2] = np.where(any_found, high - low, 0)
    return boxes


class PafPipeline(_Pipeline):
    """Frame → resize/pad to the input → runner → maps at image size → PAF grouping → Poses.

    As the OpenPose Python port: the frame is resized keeping its aspect
    (INTER_CUBIC) and padded bottom/right with the card's pad value, normalised
    with the card's mean/std (OpenPose: value/256 − 0.5), run; both outputs are
    upsampled by their stride (cubic), cropped to the unpadded frame and resized
    to the image, then decoded in image pixels with the image height as the
    distance prior's H. The maps reach image size one channel at a time while
    decoding (ImageMaps), so memory follows the network's maps, not the frame;
    frames above MAX_FRAME_PIXELS are refused. Because exported graphs have a
    fixed spatial size, the frame is fitted into the card's (height, width)
    rather than resized to its height alone (see resize_pad_for_bottom_up).

    preset: 'python' or 'cmu' (PafParams presets); None takes the card's
    (decoder.spec, a PafSpec). Poses.boxes are the boxes
    around each person's found keypoints; person_scores are the decoder's.
    """

    def __init__(self, runner: Runner, *, preset: str | None = None) -> None:
        card: ModelCard = runner.card
        if card.paradigm != "bottom-up":
            raise InputError(
                f"{card.family}/{card.variant} is a {card.paradigm} model; PafPipeline "
                "needs a bottom-up model"
            )
        spec = card.decoder.spec
        if not isinstance(spec, PafSpec):
            raise CardError(
                f"model card decoder of {card.family}/{card.variant} is "
                f"{card.decoder.name!r}; PafPipeline decodes 'paf' models only"
            )
        self.runner = runner
        self.card = card
        self.keypoint_set = get_keypoint_set(card.keypoints)
        self.decoder = PafDecoder(self.keypoint_set,
                                  PafParams.preset(spec.preset if preset is None else preset))
        paf_spec, heatmap_spec = card.output("pafs"), card.output("heatmaps")
        if paf_spec.stride != heatmap_spec.stride:
            raise CardError(
                f"model card of {card.family}/{card.variant} gives the pafs stride "
                f"{paf_spec.stride} and the heatmaps stride {heatmap_spec.stride}; "
                "expected one stride for both"
            )
        self.paf_name, self.heatmap_name = paf_spec.name, heatmap_spec.name
        self.stride = paf_spec.stride
        spec = card.input
        self._tensor = input_buffer(spec, 1)

    def __call__(self, image: np.ndarray) -> Poses:
        """image (h, w, 3) BGR uint8 → Poses in image pixels."""
        check_frame(image)
        spec = self.card.input
        height, width = image.shape[:2]
        padded, _, (pad_bottom, pad_right) = resize_pad_for_bottom_up(
            image, spec.height, self.stride, spec.pad_value, target_width=spec.width)
        tensor = normalize_to_tensor(padded[None], spec.mean, spec.std, color=spec.color,
                                     layout=spec.layout, out=self._tensor)
        outputs = self.runner.infer({spec.name: tensor})
        valid = (spec.width - pad_right, spec.height - pad_bottom)
        maps = []
        for name, role in ((self.paf_name, "pafs"), (self.heatmap_name, "heatmaps")):
            output = np.asarray(outputs[name])
            if output.ndim != 4 or output.shape[0] != 1:
                raise DecodeError(f"model output {name!r} has shape {output.shape}; "
                                  "expected (1, C, H, W)")
            # Resized to the image one channel at a time while decoding: memory follows
            # the network's maps, not the frame.
            maps.append(ImageMaps(output[0], self.stride, valid, (width, height), name=role))
        xy, scores, person_scores = self.decoder.decode(maps[0], maps[1], image_height=height)
        return Poses(xy=xy, scores=scores, person_scores=person_scores,
                     keypoint_set=self.keypoint_set.name, boxes=keypoint_boxes(xy, scores))


class AeBottomUpPipeline(_Pipeline):
    """Frame → fitted into the input → runner → AE grouping → Poses (AE, HigherHRNet).

    The frame is fitted into the card's fixed input size as PafPipeline does.
    pose-ae-train groups on its stride-4 maps; HigherHRNet first averages its two
    resolutions (aggregate_higherhrnet) and resizes the maps to the input size, its
    PROJECT2IMAGE, and groups there. Grouped coordinates carry the sources' half
    pixel and are scaled to the input and then to the image as the sources' affine
    does (x · input/map size / resize scale). The sources' multi-scale test is not
    run: one scale per frame.

    preset: 'pose-ae-train' or 'higherhrnet' (AeParams presets); None takes the
    card's (decoder.spec, an AeSpec). flip_test: also run the mirrored frame,
    average the heatmaps and stack the tags (D = 2), as both sources do.
    """

    def __init__(self, runner: Runner, *, preset: str | None = None,
                 flip_test: bool | None = None) -> None:
        card: ModelCard = runner.card
        spec = card.decoder.spec
        if card.paradigm != "bottom-up" or not isinstance(spec, AeSpec):
            raise CardError(f"{card.family}/{card.variant} ({card.paradigm}, decoder "
                            f"{card.decoder.name!r}) is not an associative-embedding model")
        self.runner = runner
        self.card = card
        self.keypoint_set = get_keypoint_set(card.keypoints)
        self.decoder = AeDecoder(AeParams.preset(spec.preset if preset is None else preset))
        self.flip_test = spec.flip_test if flip_test is None else flip_test
        self.heatmap_name = card.output("heatmaps").name
        self.tag_name = card.output("tags").name
        high = [o for o in card.outputs if o.role == "heatmaps_hr"]
        self.high_name = high[0].name if high else None
        self.stride = max(o.stride for o in card.outputs)
        spec = card.input
        self._tensor = input_buffer(spec, 1)
        self._width_axis = 3 if spec.layout == "NCHW" else 2

    def _maps(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps and tags (K, H, W) of one input tensor, at the resolution grouped on."""
        outputs = self.runner.infer({self.card.input.name: tensor})
        heatmaps = np.array(outputs[self.heatmap_name][0], np.float32)
        tags = np.array(outputs[self.tag_name][0], np.float32)
        if self.high_name is None:
            return heatmaps, tags
        heatmaps, tags = aggregate_higherhrnet(
            np.concatenate([heatmaps, tags]), np.asarray(outputs[self.high_name][0], np.float32),
            self.keypoint_set.num_keypoints)
        size = (self.card.input.width, self.card.input.height)
        return resize_bilinear(heatmaps, size), resize_bilinear(tags, size)

    def __call__(self, image: np.ndarray) -> Poses:
        """image (h, w, 3) BGR uint8 → Poses in image pixels."""
        check_frame(image)
        spec = self.card.input
        padded, scale, _ = resize_pad_for_bottom_up(image, spec.height, self.stride,
                                                    spec.pad_value, target_width=spec.width)
        tensor = normalize_to_tensor(padded[None], spec.mean, spec.std, color=spec.color,
                                     layout=spec.layout, out=self._tensor)
        heatmaps, tags = self._maps(tensor)
        if self.flip_test:
            mirrored = np.ascontiguousarray(np.flip(tensor, axis=self._width_axis))
            heatmaps, tags = ae_average_flip(heatmaps, tags, *self._maps(mirrored),
                                             self.keypoint_set.flip_permutation())
        xy, scores, person_scores = self.decoder.decode(heatmaps, tags)
        to_input = spec.width / heatmaps.shape[2]
        xy = np.where(scores[..., None] > 0, xy * to_input / scale, 0.0).astype(np.float32)
        return Poses(xy=xy, scores=scores, person_scores=person_scores,
                     keypoint_set=self.keypoint_set.name, boxes=keypoint_boxes(xy, scores))


# Kept for the code that imports the old name: it was PAF-only all along.
BottomUpPipeline = PafPipeline

Pipeline = TopDownPipeline | PafPipeline | AeBottomUpPipeline


def pipeline_for(runner: Runner, **overrides: Any) -> Pipeline:
    """The pipeline the runner's card names: TopDownPipeline for top-down cards, and for
    bottom-up ones AeBottomUpPipeline when the decoder is "ae", PafPipeline otherwise.

    overrides: the chosen pipeline's keyword arguments (top-down: flip_test, refine,
    integer, box_padding, chunk; PAF: preset; AE: preset, flip_test); None keeps the
    card's. One that the chosen pipeline does not take is an InputError.
    """
    card: ModelCard = runner.card
    name = f"{card.family}/{card.variant}"
    given = {key: value for key, value in overrides.items() if value is not None}
    if card.paradigm == "top-down":
        pipeline: type[Pipeline] = TopDownPipeline
        accepted = ("flip_test", "refine", "integer", "box_padding", "chunk")
    elif isinstance(card.decoder.spec, AeSpec):
        pipeline, accepted = AeBottomUpPipeline, ("preset", "flip_test")
    else:
        pipeline, accepted = PafPipeline, ("preset",)
    refused = [key for key in given if key not in accepted]
    if refused:
        names = " and ".join(refused)
        if card.paradigm == "top-down":
            verb = "applies" if len(refused) == 1 else "apply"
            raise InputError(f"{names} {verb} to bottom-up models only; {name} is top-down")
        verb = "does" if len(refused) == 1 else "do"
        raise InputError(f"{names} {verb} not apply to the bottom-up model {name} (decoder "
                         f"{card.decoder.name!r}, which takes {', '.join(accepted)}): it "
                         "finds people in the whole frame")
    return pipeline(runner, **given)


def bottom_up_pipeline(runner: Runner, *, preset: str | None = None
                       ) -> PafPipeline | AeBottomUpPipeline:
    """The bottom-up pipeline of the card's decoder: pipeline_for for bottom-up cards."""
    if runner.card.paradigm != "bottom-up":
        card = runner.card
        raise InputError(f"{card.family}/{card.variant} is a {card.paradigm} model; "
                         "bottom_up_pipeline needs a bottom-up model")
    return pipeline_for(runner, preset=preset)
