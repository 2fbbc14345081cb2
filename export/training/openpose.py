"""Train a small bottom-up OpenPose (COCO-18) on a COCO-format keypoint set, on the CPU.

The OpenPose counterpart of export/training/hrnet.py: it makes a demo checkpoint for the
`openpose` family, since CMU's weights may not be shipped. What matters for
compatibility follows CMU's training code (caffe_train `cpm_data_transformer.cpp`,
openpose_caffe_train `oPDataTransformer.cpp`, Realtime_Multi-Person_Pose_Estimation
`training/setLayers.py`); the runtime's conventions are used where CMU's differ:

- Input: the runtime's preprocessing exactly — BGR, (pixel − 128) / 256, the frame
  fitted into the input size by `resize_pad_for_bottom_up` (padded bottom/right
  with 128) and keypoints moved by `image_to_bottom_up` with the same scale.
- Heatmaps at stride 8: per keypoint the max over people of exp(−d²/(2σ²)), d in
  input pixels from the map pixel's centre, zero below 1 % (CMU cuts the Gaussian
  at exponent ln 100); only labelled keypoints (COCO v > 0; CMU draws its
  "visible" 1 and "occluded" 0, i.e. COCO 2 and 1). The last channel is the
  background, max(1 − max over the keypoint maps, 0), as CMU's.
- PAFs: for each limb and each person with both ends labelled, the unit vector
  from end A to end B on map pixels within `limb_width` map pixels of the limb's
  line and inside the limb's bounding box grown by `limb_width` (CMU's region,
  threshold 1), averaged over the people that cover a pixel (count-normalised, as
  openpose_caffe_train; caffe_train's counter never left 0, so there the last
  person overwrote the others).
- Map pixel (x, y) stands for input pixel (8x + 3.5, 8y + 3.5): CMU's heatmap grid
  (start = stride/2 − 0.5) and what the runtime's `resize_maps_to_image` assumes
  (cv2's cubic ×8 upsampling puts map pixel x at 8x + 3.5). CMU places its PAF
  ends at u/8 instead, 7/16 of a map pixel off its own heatmaps; here both maps
  use 8x + 3.5 so that the targets decode back onto the annotations.
- Loss: intermediate supervision, every stage's PAFs and heatmaps against the same
  targets, squared errors masked where CMU's mask_miss masks them (people with no
  labelled keypoint — COCO crowds, and the synthetic set's ignored figures, which
  keep their boxes: the mask is their boxes, since no segmentation is written).
- Augmentation (lighter than CMU's rotation/crop/scale 0.5–1.1): a random scale
  (the frame is cut or padded with 128 around a random offset before the fit) and
  a horizontal flip that mirrors the image and swaps left/right keypoints; the PAFs
  are rendered after the flip, so their x direction and channels follow.
- Initialisation: CMU starts from ImageNet VGG-19 and N(0, 0.01) for the new convs.
  Without VGG weights N(0, 0.01) everywhere is a dead start (measured on coco18_d4:
  the final maps' standard deviation is ~1e-17), so hidden convs are He-normal and
  only the output convs of each stage N(0, 0.01), all biases zero.
- AdamW with a one-cycle cosine schedule over a fixed step count, seeded, so the
  same command writes the same checkpoint (as export/training/hrnet.py).

The checkpoint is the float16 state dict in the flat Caffe layout (`conv1_1.weight`,
`Mconv7_stage6_L2.bias`), which `export.families.prepare_openpose` loads strictly,
with a JSON record of how it was made beside it.

Shape letters: B batch, N people, K keypoints (18), L limbs (19), C = 2L PAF channels,
H, W input size, h = H/8, w = W/8 map size.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from edgepose.errors import InputError
from edgepose.io import read_image, write_json_atomic
from edgepose.keypoints import COCO18, KeypointSet
from edgepose.preprocess import image_to_bottom_up, normalize_to_tensor, resize_pad_for_bottom_up
from export.families import OPENPOSE_MEAN, OPENPOSE_PAD_VALUE, OPENPOSE_STD, parse_input_size
from export.models.openpose import STRIDE, build_openpose, parse_openpose_variant
from export.training.common import (add_run_options, check_config, check_output_folder,
                                    keypoint_rows, read_annotations, resolve_precision, run_steps,
                                    run_training_command, save_float16)


# CMU skips Gaussian values below 1 %: exponent d²/(2σ²) > ln 100.
GAUSSIAN_CUTOFF = math.log(100.0)
# stage_outputs names the branches by CMU's layers: L1 the PAFs, L2 the heatmaps (COCO-18).
PAF_BRANCH, HEATMAP_BRANCH = "_L1", "_L2"


@dataclass(frozen=True)
class TrainConfig:
    # The defaults are the shipped demo recipe (`make demo-checkpoint-openpose`). coco18_d8
    # (2.5 MB in float16) keeps the shipped weights under 10 MB beside the HRNet; at
    # 256x320, batch 8, its step takes 0.36 s on 2 CPU cores with bfloat16 (0.73 s in
    # float32), so the run takes about 25 minutes.
    variant: str = "coco18_d8"
    input_size: tuple[int, int] = (256, 320)   # (height, width), multiples of 8
    steps: int = 4000
    batch_size: int = 8
    # 3e-3 left both branches near zero after a 300-step probe (PAF length 0.12 on the
    # limbs against 0.45 at 1e-3).
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    scale_jitter: float = 0.25      # frame scale × U(1 − j, 1 + j); CMU draws 0.5–1.1
    flip_probability: float = 0.5
    # Heatmap Gaussian sigma in input pixels. CMU uses 7 at 368 px; a network trained
    # from scratch in a short run learns broader peaks far sooner (300-step probes of
    # coco18_d8: median height at the joints 0.21 with sigma 10, 0.04 with sigma 6), and
    # the runtime's cubic upsampling and peak NMS find their centres all the same.
    sigma: float = 10.0
    # PAF half-width in map pixels: CMU's threshold of 1.
    limb_width: float = 1.0
    # Squared errors weigh (1 + foreground_weight × emphasis), emphasis = |PAF| of the
    # limb, the keypoint Gaussian, or 1 − background: as in export/training/hrnet.py, without it
    # the few limb and peak pixels are outvoted by the background and a short CPU run
    # ends with flat maps.
    foreground_weight: float = 9.0
    seed: int = 0
    threads: int = 2
    precision: str = "auto"  # export.training.PRECISIONS

    def __post_init__(self) -> None:
        resolve_precision(self.precision)
        variant = parse_openpose_variant(self.variant)
        if variant.keypoints != "coco18":
            raise InputError(f"the OpenPose trainer trains COCO-18 models; variant "
                             f"{self.variant!r} is {variant.keypoints} (use coco18 or "
                             f"coco18_d{{divisor}})")
        size = tuple(self.input_size)
        if (len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or v <= 0 or v % STRIDE for v in size)):
            raise InputError(f"input_size {self.input_size!r} must be (height, width), two "
                             f"positive multiples of {STRIDE}, e.g. (256, 320)")
        check_config(self, ("steps", "batch_size", "threads"), (
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("scale_jitter", 0 <= self.scale_jitter < 1, "in [0, 1)"),
            ("flip_probability", 0 <= self.flip_probability <= 1, "in [0, 1]"),
            ("sigma", self.sigma > 0, "> 0 input pixels"),
            ("limb_width", self.limb_width > 0, "> 0 map pixels"),
            ("foreground_weight", self.foreground_weight >= 0, ">= 0")))

    @property
    def map_size(self) -> tuple[int, int]:
        """(h, w) of the stride-8 maps."""
        return self.input_size[0] // STRIDE, self.input_size[1] // STRIDE


# --- data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameSample:
    """One image and its people, in image pixels.

    keypoints: (N, K, 3) x, y, v of the people with at least one labelled keypoint.
    ignored_boxes: (M, 4) xywh of the people with none (crowds, and the synthetic set's
        too small or too hidden figures): the loss is masked inside them.
    """

    image_path: Path
    keypoints: np.ndarray
    ignored_boxes: np.ndarray


def load_frames(annotations: Path, images: Path,
                keypoint_set: KeypointSet = COCO18) -> list[FrameSample]:
    """The images of a COCO keypoints file that hold at least one labelled person."""
    data = read_annotations(annotations)
    people: dict[int, list[np.ndarray]] = {}
    ignored: dict[int, list[np.ndarray]] = {}
    for ann in data.get("annotations", []):
        rows = keypoint_rows(ann, keypoint_set, annotations, "the OpenPose trainer")
        labelled = ann.get("iscrowd", 0) == 0 and (rows[:, 2] > 0).any()
        target = people if labelled else ignored
        target.setdefault(ann["image_id"], []).append(
            rows if labelled else np.asarray(ann["bbox"], np.float64))
    frames = []
    for image in data.get("images", []):
        if image["id"] not in people:
            continue
        boxes = ignored.get(image["id"], [])
        frames.append(FrameSample(
            Path(images) / image["file_name"], np.stack(people[image["id"]]),
            np.stack(boxes) if boxes else np.zeros((0, 4))))
    return frames


def input_to_map(xy: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Input pixels → map pixels (map pixel x is input pixel stride·x + stride/2 − 0.5)."""
    return (np.asarray(xy, np.float64) - (stride / 2 - 0.5)) / stride


def heatmap_targets(keypoints: np.ndarray, map_size: tuple[int, int], sigma: float,
                    stride: int = STRIDE) -> np.ndarray:
    """(K+1, h, w) float32 targets of people (N, K, 3) x, y, v in input pixels.

    Channel k: max over the people with v > 0 of exp(−d²/(2σ²)), d the distance in
    input pixels from the map pixel's centre, 0 where the exponent exceeds ln 100.
    Channel K: max(1 − max over channels 0..K−1, 0), the background.
    """
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, *np.shape(keypoints)[-2:])
    count = keypoints.shape[1]
    height, width = map_size
    centre_x = stride * np.arange(width) + (stride / 2 - 0.5)
    centre_y = stride * np.arange(height) + (stride / 2 - 0.5)
    maps = np.zeros((count + 1, height, width))
    for person in keypoints:
        labelled = person[:, 2] > 0
        dx2 = (centre_x[None, :] - person[labelled, 0, None]) ** 2
        dy2 = (centre_y[None, :] - person[labelled, 1, None]) ** 2
        exponent = (dy2[:, :, None] + dx2[:, None, :]) / (2 * sigma * sigma)
        blobs = np.where(exponent > GAUSSIAN_CUTOFF, 0.0, np.exp(-exponent))
        np.maximum(maps[:count][labelled], blobs, out=blobs)
        maps[:count][labelled] = blobs
    maps[count] = np.maximum(1.0 - maps[:count].max(axis=0, initial=0.0), 0.0)
    return maps.astype(np.float32)


def paf_targets(keypoints: np.ndarray, keypoint_set: KeypointSet, map_size: tuple[int, int],
                limb_width: float, stride: int = STRIDE) -> np.ndarray:
    """(C, h, w) float32 part affinity fields of people (N, K, 3) x, y, v in input pixels.

    For limb (A, B) with channels (cx, cy) and each person with both ends labelled
    and apart: the unit vector A→B on the map pixels p (map coordinates) with
    |(p − A) × unit| <= limb_width and min(A, B) − limb_width <= p <= max(A, B) +
    limb_width per axis; averaged over the people covering a pixel, zero elsewhere.
    """
    if keypoint_set.paf_channels is None:
        raise InputError(f"keypoint set {keypoint_set.name!r} has no PAF channels")
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, *np.shape(keypoints)[-2:])
    height, width = map_size
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float64)
    pafs = np.zeros((2 * len(keypoint_set.skeleton), height, width))
    on_map = input_to_map(keypoints[..., :2], stride)
    for (part_a, part_b), (channel_x, channel_y) in zip(keypoint_set.skeleton,
                                                        keypoint_set.paf_channels):
        total_x, total_y = np.zeros((height, width)), np.zeros((height, width))
        count = np.zeros((height, width))
        for person, xy in zip(keypoints, on_map):
            if person[part_a, 2] <= 0 or person[part_b, 2] <= 0:
                continue
            a, b = xy[part_a], xy[part_b]
            length = math.hypot(*(b - a))
            if length < 1e-9:       # no direction (CMU skips the NaN it would write)
                continue
            unit = (b - a) / length
            low, high = np.minimum(a, b) - limb_width, np.maximum(a, b) + limb_width
            across = np.abs((grid_x - a[0]) * unit[1] - (grid_y - a[1]) * unit[0])
            on = ((across <= limb_width) & (grid_x >= low[0]) & (grid_x <= high[0])
                  & (grid_y >= low[1]) & (grid_y <= high[1]))
            total_x[on] += unit[0]
            total_y[on] += unit[1]
            count[on] += 1
        covered = count > 0
        pafs[channel_x][covered] = total_x[covered] / count[covered]
        pafs[channel_y][covered] = total_y[covered] / count[covered]
    return pafs.astype(np.float32)


def ignore_mask(boxes: np.ndarray, map_size: tuple[int, int], stride: int = STRIDE) -> np.ndarray:
    """(h, w) float32: 0 on map pixels whose centre lies in one of the boxes (M, 4) xywh in
    input pixels, 1 elsewhere — CMU's mask_miss, from boxes instead of segmentations."""
    height, width = map_size
    centre_x = stride * np.arange(width) + (stride / 2 - 0.5)
    centre_y = stride * np.arange(height) + (stride / 2 - 0.5)
    mask = np.ones((height, width), np.float32)
    for x, y, w, h in np.asarray(boxes, np.float64).reshape(-1, 4):
        rows = (centre_y >= y) & (centre_y <= y + h)
        columns = (centre_x >= x) & (centre_x <= x + w)
        mask[np.ix_(rows, columns)] = 0.0
    return mask


def augment_frame(image: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray,
                  input_size: tuple[int, int], rng: np.random.Generator | None = None, *,
                  scale_jitter: float = 0.0, flip_probability: float = 0.0,
                  keypoint_set: KeypointSet = COCO18
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frame as the network sees it: (H, W, 3) uint8, keypoints (N, K, 3) and boxes (M, 4)
    in input pixels.

    Without rng this is the runtime's step alone (resize_pad_for_bottom_up, then
    image_to_bottom_up). With rng, first a flip (x → w − 1 − x, left/right swapped,
    boxes mirrored) with flip_probability, then a window of the frame's size / s,
    s ~ U(1 − j, 1 + j), at a random offset (cut from the frame, or the frame inside it
    padded with 128), which the fit then scales by about s.
    """
    keypoints = np.array(keypoints, np.float64)
    boxes = np.array(boxes, np.float64).reshape(-1, 4)
    if rng is not None:
        height, width = image.shape[:2]
        if rng.random() < flip_probability:
            image = image[:, ::-1]
            keypoints[..., 0] = width - 1 - keypoints[..., 0]
            keypoints = keypoints[:, keypoint_set.flip_permutation()]
            boxes[:, 0] = width - boxes[:, 0] - boxes[:, 2]
        scale = rng.uniform(1 - scale_jitter, 1 + scale_jitter)
        window_w, window_h = max(STRIDE, round(width / scale)), max(STRIDE, round(height / scale))
        left = int(rng.integers(min(0, width - window_w), max(0, width - window_w) + 1))
        top = int(rng.integers(min(0, height - window_h), max(0, height - window_h) + 1))
        window = np.full((window_h, window_w, 3), round(OPENPOSE_PAD_VALUE), np.uint8)
        src_x, src_y = max(0, left), max(0, top)
        dst_x, dst_y = max(0, -left), max(0, -top)
        span_w = min(width - src_x, window_w - dst_x)
        span_h = min(height - src_y, window_h - dst_y)
        window[dst_y:dst_y + span_h, dst_x:dst_x + span_w] = \
            image[src_y:src_y + span_h, src_x:src_x + span_w]
        image = window
        keypoints[..., :2] -= (left, top)
        boxes[:, :2] -= (left, top)
    padded, fit, _ = resize_pad_for_bottom_up(np.ascontiguousarray(image), input_size[0], STRIDE,
                                              OPENPOSE_PAD_VALUE, target_width=input_size[1])
    labelled = keypoints[..., 2] > 0
    keypoints[..., :2] = np.where(labelled[..., None],
                                  image_to_bottom_up(keypoints[..., :2], fit), 0.0)
    corners = image_to_bottom_up(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)
                                 .reshape(-1, 2, 2), fit).reshape(-1, 4)
    boxes = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)
    return padded, keypoints, boxes


class FrameDataset(torch.utils.data.Dataset):
    """Frames and their targets: input (3, H, W), PAFs (C, h, w), heatmaps (K+1, h, w),
    mask (1, h, w)."""

    def __init__(self, frames: list[FrameSample], config: TrainConfig, train: bool,
                 keypoint_set: KeypointSet = COCO18) -> None:
        self.frames = frames
        self.config = config
        self.train = train
        self.keypoint_set = keypoint_set
        self.draws = np.zeros(len(frames), np.int64)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        frame = self.frames[index]
        self.draws[index] += 1
        # Seeded by (seed, frame, how often it was drawn): fresh augmentation every
        # epoch, identical across runs.
        rng = (np.random.default_rng((self.config.seed, index, int(self.draws[index])))
               if self.train else None)
        padded, keypoints, boxes = augment_frame(
            read_image(frame.image_path), frame.keypoints, frame.ignored_boxes,
            self.config.input_size, rng, scale_jitter=self.config.scale_jitter,
            flip_probability=self.config.flip_probability, keypoint_set=self.keypoint_set)
        tensor = normalize_to_tensor(padded[None], np.array(OPENPOSE_MEAN), np.array(OPENPOSE_STD),
                                     color="BGR")[0]
        map_size = self.config.map_size
        pafs = paf_targets(keypoints, self.keypoint_set, map_size, self.config.limb_width)
        heatmaps = heatmap_targets(keypoints, map_size, self.config.sigma)
        mask = ignore_mask(boxes, map_size)[None]
        return (torch.from_numpy(tensor), torch.from_numpy(pafs), torch.from_numpy(heatmaps),
                torch.from_numpy(mask))


# --- model and loss ---------------------------------------------------------------------


def output_layers(model: nn.Module) -> tuple[str, ...]:
    """The Caffe names of the convs whose outputs are supervised (each stage's last)."""
    with torch.no_grad():
        return tuple(model.stage_outputs(torch.zeros(1, 3, STRIDE, STRIDE)))


def init_weights(model: nn.Module) -> None:
    """He-normal (fan-in, ReLU) hidden convs, N(0, 0.01) output convs, zero biases."""
    outputs = set(output_layers(model))
    for name, module in model.named_children():
        if not isinstance(module, nn.Conv2d):
            continue
        if name in outputs:
            nn.init.normal_(module.weight, std=0.01)
        else:
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(module.bias)


def loss_emphasis(pafs: torch.Tensor, heatmaps: torch.Tensor,
                  keypoint_set: KeypointSet = COCO18) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the foreground weight applies, (B, C, h, w) and (B, K+1, h, w): the length of
    each limb's target vector on both its channels, the keypoint Gaussians, and
    1 − background on the background channel."""
    xs = [x for x, _ in keypoint_set.paf_channels]
    ys = [y for _, y in keypoint_set.paf_channels]
    length = torch.sqrt(pafs[:, xs] ** 2 + pafs[:, ys] ** 2)
    paf_emphasis = torch.empty_like(pafs)
    paf_emphasis[:, xs] = length
    paf_emphasis[:, ys] = length
    heat_emphasis = heatmaps.clone()
    heat_emphasis[:, -1] = 1 - heatmaps[:, -1]
    return paf_emphasis, heat_emphasis


def openpose_loss(outputs: Mapping[str, torch.Tensor], pafs: torch.Tensor,
                  heatmaps: torch.Tensor, mask: torch.Tensor, foreground_weight: float = 0.0,
                  keypoint_set: KeypointSet = COCO18) -> torch.Tensor:
    """Sum over stages of 0.5 × the mean over (B, C + K + 1, h, w) of
    mask · (1 + foreground_weight · emphasis) · (output − target)².

    outputs: stage_outputs of the model (names ending _L1 are PAFs, _L2 heatmaps).
    mask: (B, 1, h, w). Up to a constant factor this is CMU's per-stage EuclideanLoss
    on mask·output and mask·target, both branches weighed alike per element.
    """
    paf_weight, heat_weight = (torch.ones_like(pafs) * mask, torch.ones_like(heatmaps) * mask)
    if foreground_weight:
        paf_emphasis, heat_emphasis = loss_emphasis(pafs, heatmaps, keypoint_set)
        paf_weight = paf_weight * (1 + foreground_weight * paf_emphasis)
        heat_weight = heat_weight * (1 + foreground_weight * heat_emphasis)
    elements = pafs[:, :1].numel() * (pafs.shape[1] + heatmaps.shape[1])
    total = pafs.new_zeros(())
    for name, output in outputs.items():
        if name.endswith(PAF_BRANCH):
            target, weight = pafs, paf_weight
        elif name.endswith(HEATMAP_BRANCH):
            target, weight = heatmaps, heat_weight
        else:
            raise InputError(f"stage output {name!r} is neither a PAF ({PAF_BRANCH}) nor a "
                             f"heatmap ({HEATMAP_BRANCH}) layer of the COCO-18 model")
        if output.shape != target.shape:
            raise InputError(f"stage output {name!r} has shape {tuple(output.shape)}; the "
                             f"targets have {tuple(target.shape)}")
        total = total + 0.5 * (weight * (output - target) ** 2).sum() / elements
    return total


# --- training ---------------------------------------------------------------------------


def train(annotations: Path, images: Path, out: Path, config: TrainConfig) -> dict:
    """Train for `config.steps`; write the float16 checkpoint to `out` and its record to
    out.with_suffix('.json'); return the record."""
    out = Path(out)
    check_output_folder(out)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    precision = resolve_precision(config.precision)
    frames = load_frames(Path(annotations), Path(images))
    if not frames:
        raise InputError(f"no image in {annotations} holds a labelled person")
    model = build_openpose(parse_openpose_variant(config.variant))
    init_weights(model)
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(FrameDataset(frames, config, train=True),
                                         batch_size=config.batch_size, shuffle=True,
                                         drop_last=len(frames) >= config.batch_size,
                                         num_workers=0, generator=generator)
    run = run_steps(
        model, loader,
        lambda batch: openpose_loss(model.stage_outputs(batch[0]), batch[1], batch[2], batch[3],
                                    config.foreground_weight),
        steps=config.steps, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, description="train openpose",
        precision=precision)
    save_float16(model, out)
    record = {
        "checkpoint": out.name,
        "family": "openpose",
        "variant": parse_openpose_variant(config.variant).name,
        "config": asdict(config),
        "precision": precision,
        "images": len(frames),
        "people": int(sum(frame.keypoints.shape[0] for frame in frames)),
        "ignored_people": int(sum(frame.ignored_boxes.shape[0] for frame in frames)),
        "steps": run.steps,
        "samples_seen": run.steps * min(config.batch_size, len(frames)),
        "train_seconds": round(run.seconds, 1),
        "loss_history": run.history,
    }
    write_json_atomic(out.with_suffix(".json"), record)
    return record


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m export.training.openpose",
        description="Train a small OpenPose COCO-18 model (PAFs + heatmaps, 6 stages) on a "
                    "COCO keypoints set with 18 keypoints in CMU's order, on the CPU (demo "
                    "checkpoint). Make such a set with `python -m export.training.synthetic "
                    "--out DIR --count N --layout coco18`. The same command writes the same checkpoint.")
    parser.add_argument("--annotations", type=Path, required=True,
                        help="COCO person_keypoints JSON with COCO-18 keypoints")
    parser.add_argument("--images", type=Path, required=True, help="folder of its images")
    parser.add_argument("--out", type=Path, required=True,
                        help="checkpoint to write (.pth, flat Caffe key layout as "
                             "`edgepose export openpose --checkpoint` loads it, float16); a "
                             ".json record is written beside it")
    parser.add_argument("--variant", default=defaults.variant,
                        help=f"OpenPose variant: coco18, or coco18_d{{2,4,8,16,32}} with every "
                             f"hidden width divided (default {defaults.variant})")
    parser.add_argument("--input-size", default="{}x{}".format(*defaults.input_size),
                        metavar="HxW",
                        help="network input height x width, multiples of 8; frames are fitted "
                             "in and padded as at run time (default {}x{})".format(
                                 *defaults.input_size))
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help=f"optimiser steps (default {defaults.steps})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"images per step (default {defaults.batch_size})")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate,
                        help=f"peak learning rate of the one-cycle schedule (default "
                             f"{defaults.learning_rate})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed of initialisation, order and augmentation "
                             f"(default {defaults.seed})")
    add_run_options(parser, defaults, compile_option=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_training_command(args, lambda: TrainConfig(
        variant=args.variant, input_size=parse_input_size(args.input_size), steps=args.steps,
        batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
        threads=args.threads, precision=args.precision), train)


if __name__ == "__main__":
    raise SystemExit(main())
