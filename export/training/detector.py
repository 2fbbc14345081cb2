"""Train edgepose's demo person detector on synthetic people on the CPU, export it as an
Ultralytics-layout ONNX file and score its boxes with COCOeval.

The top-down pipelines need person boxes, and no public detector weights can be
downloaded here, so this trains `export.models.detector.PersonDetector` (anchor-free,
one class, strides 8/16/32) on the synthetic COCO set of `export.training.synthetic`:

- Ground truth: every non-crowd person box, the synthetic set's ignored figures
  (num_keypoints 0) included: COCOeval's bbox mode ignores only `iscrowd` / `ignore`, so
  they are people the detector is scored on, and one taught they are background would
  miss them. Boxes under `min_box_area` px² (a few pixels of a figure) are dropped; none
  of the seed-1 set's 9,997 boxes is that small.
- Assignment (FCOS's scale ranges with its centre sampling): a box belongs to one stride
  by its longer side (< 64 px: 8, < 128: 16, else 32, so every box spans about 4-8 cells
  of its stride), and its positives are that stride's cells whose centre lies inside the
  box and within `center_radius` strides of the box centre. A cell claimed by two boxes
  goes to the smaller (FCOS). A box too thin for any cell centre gets the cell under its
  centre, so every person teaches something.
- Loss: quality focal loss (GFL) over all cells, the target the IoU of the predicted box
  with its person on positives and 0 elsewhere, so the score ranks boxes by how well
  they fit (what AP rewards); GIoU and an L1 on the side distances in strides on the
  positives. All three are dense masked sums, so `torch.compile` sees one graph.
- Augmentation: horizontal flip, and a random zoom (boxes clipped to the frame, as the
  generator clips them).

The export follows Ultralytics' YOLOv8 ONNX files (input `images`, output `output0`
(1, 5, A), metadata `names`, `imgsz`, `stride`, `task`) and takes its name only once ONNX
Runtime agrees with PyTorch. The validation score is COCOeval's bbox AP of that file,
decoded here, on synthetic people of a seed the training never saw.

Shape letters: B batch, A anchors (cells of all strides), N boxes of an image.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import onnx
import torch
from torch.nn import functional as F

from edgepose.errors import ExportError, InputError
from edgepose.io import atomic_path, read_image, write_json_atomic
from export.models.detector import (STRIDES, DetectorConfig, PersonDetector, anchor_count,
                                    anchor_points, count_parameters)
from export.training.common import (add_run_options, check_config, check_output_folder,
                                    read_annotations, resolve_compile, resolve_precision,
                                    run_steps, run_training_command)

log = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "output0"
OPSET = 17
# The largest |ONNX Runtime - PyTorch| the export accepts on rows cx, cy, w, h (input
# pixels) and on the score: float32 reordering noise is ~1e-5 px at these magnitudes,
# a real graph difference moves boxes by pixels.
BOX_TOLERANCE = 1e-2
SCORE_TOLERANCE = 1e-4
DESCRIPTION = ("edgepose's demo person detector (YOLOv8-style, anchor-free), trained on the "
               "CPU on synthetic people; not for real images")
# COCO detection scoring's usual decoding (Ultralytics' val: conf 0.001, NMS IoU 0.6-0.7).
SCORE_THRESHOLD, NMS_IOU, MAX_DETECTIONS = 0.001, 0.6, 100
# Longer box side (px) below which a box belongs to stride 8, then 16; stride 32 above.
SCALE_BOUNDS = (64.0, 128.0)


@dataclass(frozen=True)
class TrainConfig:
    input_height: int = 256  # the synthetic images' size: validation needs no letterbox
    input_width: int = 320
    # 954 s of training in the shipped run (0.24 s a step on one shared core; 17 minutes for
    # `make demo-detector` with the data): AP 0.623, AP50 0.925, AP75 0.699 on the 300
    # validation images, against 0.458 / 0.858 / 0.443 after a 1000-step trial (296 s).
    steps: int = 4000
    batch_size: int = 16
    learning_rate: float = 4e-3
    weight_decay: float = 5e-4
    flip_probability: float = 0.5
    # Zoom × U(1 − j, 1 + j) on half of the images: mild, since the validation people
    # come from the same generator and a short run learns faster on undistorted ones.
    scale_jitter: float = 0.25
    jitter_probability: float = 0.5
    center_radius: float = 2.5  # FCOS / YOLOX centre sampling, in strides
    min_box_area: float = 64.0
    box_weight: float = 2.0  # GIoU, as GFL weighs it against its quality focal loss
    l1_weight: float = 0.25
    seed: int = 0
    # One torch thread and one loader process, not two torch threads: on this machine's 2
    # cores, shared with other work, two OpenMP threads wait on each other whenever the
    # other work holds a core (measured: 0.2-0.3 s a bf16 step of 16 on one thread,
    # 0.4-7 s on two), while a separate loader process overlaps the JPEG decoding.
    threads: int = 1
    loader_workers: int = 1
    precision: str = "auto"  # export.training.PRECISIONS
    # Off: on one thread the step is oneDNN's bfloat16 convolutions, which inductor does not
    # speed up (200 steps of 16: 0.245 s a step eager, 0.256 compiled after 87 s compiling).
    compile: str = "off"  # export.training.COMPILE_MODES
    validation_count: int = 300
    validation_seed: int = 2  # the training set is seed 1

    def __post_init__(self) -> None:
        resolve_precision(self.precision)
        resolve_compile(self.compile)
        check_config(self, ("input_height", "input_width", "steps", "batch_size", "threads"), (
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("flip_probability", 0 <= self.flip_probability <= 1, "in [0, 1]"),
            ("scale_jitter", 0 <= self.scale_jitter < 1, "in [0, 1)"),
            ("jitter_probability", 0 <= self.jitter_probability <= 1, "in [0, 1]"),
            ("center_radius", self.center_radius > 0, "> 0 (strides)"),
            ("min_box_area", self.min_box_area >= 0, ">= 0"),
            ("box_weight", self.box_weight >= 0, ">= 0"),
            ("l1_weight", self.l1_weight >= 0, ">= 0")))
        if self.input_height % 32 or self.input_width % 32:
            raise InputError(f"input size must be multiples of 32 (the coarsest stride), got "
                             f"{self.input_height}x{self.input_width}")
        if self.loader_workers < 0:
            raise InputError(f"loader_workers must be >= 0, got {self.loader_workers!r}")
        if self.validation_count < 0 or self.validation_seed < 0:
            raise InputError("validation_count and validation_seed must be >= 0, got "
                             f"{self.validation_count!r}, {self.validation_seed!r}")


# --- data -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    image_path: Path
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2


def load_frames(annotations: Path, images: Path, min_box_area: float = 0.0
                ) -> tuple[list[Frame], dict]:
    """Every image with its non-crowd person boxes (ignored figures included, see the module
    text), and counts for the record; InputError when there are no boxes."""
    data = read_annotations(annotations)
    boxes: dict[int, list[list[float]]] = {image["id"]: [] for image in data["images"]}
    counts = {"images": len(boxes), "boxes": 0, "boxes_of_ignored_figures": 0,
              "crowd_skipped": 0, "small_skipped": 0}
    for ann in data["annotations"]:
        x, y, w, h = (float(v) for v in ann["bbox"])
        if ann.get("iscrowd", 0):
            counts["crowd_skipped"] += 1
        elif w * h < min_box_area or w <= 0 or h <= 0:
            counts["small_skipped"] += 1
        else:
            boxes[ann["image_id"]].append([x, y, x + w, y + h])
            counts["boxes"] += 1
            counts["boxes_of_ignored_figures"] += ann.get("num_keypoints", 1) == 0
    if not counts["boxes"]:
        raise InputError(f"no person boxes in {annotations}")
    frames = [Frame(Path(images) / image["file_name"],
                    np.asarray(boxes[image["id"]], np.float32).reshape(-1, 4))
              for image in data["images"]]
    seed = data.get("info", {}).get("config", {}).get("seed")
    return frames, {**counts, "generator_seed": seed}


def assign_targets(boxes: np.ndarray, height: int, width: int, *,
                   center_radius: float = 2.5, strides: Sequence[int] = STRIDES
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's person box (A, 4) x1, y1, x2, y2 (zeros on background) and whether it is
    a positive (A,), in the network's anchor order (see the module text for the rule)."""
    centers, cell_strides = (t.numpy() for t in anchor_points(height, width, tuple(strides)))
    count = len(centers)
    target = np.zeros((count, 4), np.float32)
    positive = np.zeros(count, bool)
    if not len(boxes):
        return target, positive
    boxes = np.asarray(boxes, np.float32)
    sizes = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    level = np.searchsorted(np.asarray(SCALE_BOUNDS), sizes, side="right")
    box_stride = np.asarray(strides, np.float32)[np.minimum(level, len(strides) - 1)]
    box_center = (boxes[:, :2] + boxes[:, 2:]) / 2
    x, y = centers[:, 0, None], centers[:, 1, None]  # (A, 1) against (N,)
    inside = (x > boxes[:, 0]) & (x < boxes[:, 2]) & (y > boxes[:, 1]) & (y < boxes[:, 3])
    radius = center_radius * box_stride
    near = ((np.abs(x - box_center[:, 0]) < radius) & (np.abs(y - box_center[:, 1]) < radius))
    candidate = inside & near & (cell_strides[:, None] == box_stride)  # (A, N)
    # A box no cell centre falls into: the cell of its stride under the box centre.
    for n in np.flatnonzero(~candidate.any(axis=0)):
        stride = box_stride[n]
        distance = np.abs(centers - box_center[n]).max(axis=1)
        distance[cell_strides != stride] = np.inf
        candidate[np.argmin(distance), n] = True
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cost = np.where(candidate, area[None], np.inf)
    owner = np.argmin(cost, axis=1)
    positive = np.isfinite(cost[np.arange(count), owner])
    target[positive] = boxes[owner[positive]]
    return target, positive


def zoom_and_flip(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                  config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """A training image resized and moved (zoom, cut or padded with grey at a random
    offset) and mirrored, with its boxes (N, 4) x1, y1, x2, y2 following and clipped."""
    height, width = image.shape[:2]
    boxes = boxes.copy()
    if rng.random() < config.jitter_probability and config.scale_jitter > 0:
        zoom = rng.uniform(1 - config.scale_jitter, 1 + config.scale_jitter)
        new_w, new_h = max(1, round(width * zoom)), max(1, round(height * zoom))
        # Zoomed out, the frame's placement in the canvas is random; zoomed in, the
        # window's: dx, dy is where the resized image's origin lands.
        dx = rng.uniform(min(0, width - new_w), max(0, width - new_w))
        dy = rng.uniform(min(0, height - new_h), max(0, height - new_h))
        sx, sy = new_w / width, new_h / height
        matrix = np.array([[sx, 0, dx], [0, sy, dy]], np.float64)
        image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderValue=(114, 114, 114))
        boxes = boxes * np.array([sx, sy, sx, sy], np.float32) + np.array([dx, dy, dx, dy],
                                                                          np.float32)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        boxes = boxes[sides >= 2]  # a person cut to a sliver is no longer a person
    if rng.random() < config.flip_probability:
        image = image[:, ::-1]
        boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]],
                         axis=1).reshape(-1, 4)
    return np.ascontiguousarray(image), boxes.astype(np.float32)


def to_input(image_bgr: np.ndarray) -> np.ndarray:
    """(3, H, W) float32 RGB / 255, Ultralytics' input."""
    return np.ascontiguousarray(image_bgr[:, :, ::-1].transpose(2, 0, 1), np.float32) / 255.0


class FrameDataset(torch.utils.data.Dataset):
    """Augmented whole images, each cell's target box and whether it is a positive."""

    def __init__(self, frames: list[Frame], config: TrainConfig, train: bool = True) -> None:
        self.frames = frames
        self.config = config
        self.train = train
        self.draws = np.zeros(len(frames), np.int64)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frame = self.frames[index]
        self.draws[index] += 1
        # Seeded by (seed, image, how often it was drawn): fresh augmentation every epoch,
        # identical across runs.
        rng = np.random.default_rng((self.config.seed, index, int(self.draws[index])))
        image = read_image(frame.image_path)
        height, width = self.config.input_height, self.config.input_width
        if image.shape[:2] != (height, width):
            raise InputError(f"{frame.image_path} is {image.shape[1]}x{image.shape[0]}; the "
                             f"detector trains on {width}x{height} images")
        boxes = frame.boxes
        if self.train:
            image, boxes = zoom_and_flip(image, boxes, rng, self.config)
        target, positive = assign_targets(boxes, height, width,
                                          center_radius=self.config.center_radius)
        return (torch.from_numpy(to_input(image)), torch.from_numpy(target),
                torch.from_numpy(positive))


# --- loss -----------------------------------------------------------------------------

def aligned_iou(pred: torch.Tensor, target: torch.Tensor,
                eps: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and GIoU of boxes (..., 4) x1, y1, x2, y2 paired one to one. eps keeps the
    background cells' empty target boxes finite (they are masked, but NaN × 0 is NaN)."""
    lt = torch.maximum(pred[..., :2], target[..., :2])
    rb = torch.minimum(pred[..., 2:], target[..., 2:])
    intersection = (rb - lt).clamp(min=0).prod(-1)
    area_p = (pred[..., 2:] - pred[..., :2]).clamp(min=0).prod(-1)
    area_t = (target[..., 2:] - target[..., :2]).clamp(min=0).prod(-1)
    union = area_p + area_t - intersection + eps
    iou = intersection / union
    enclosing = (torch.maximum(pred[..., 2:], target[..., 2:])
                 - torch.minimum(pred[..., :2], target[..., :2])).clamp(min=0).prod(-1) + eps
    return iou, iou - (enclosing - union) / enclosing


def detection_loss(boxes: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                   positive: torch.Tensor, strides: torch.Tensor, *, box_weight: float = 2.0,
                   l1_weight: float = 0.25) -> torch.Tensor:
    """Quality focal loss + box_weight × GIoU + l1_weight × L1 (side distances in strides),
    each summed and divided by the batch's positive count.

    boxes, target (B, A, 4) x1, y1, x2, y2; logits (B, A); positive (B, A) bool;
    strides (A,)."""
    boxes, logits, target = boxes.float(), logits.float(), target.float()
    fg = positive.float()
    count = fg.sum().clamp(min=1.0)
    iou, giou = aligned_iou(boxes, target)
    quality = torch.where(positive, iou.detach().clamp(min=0), torch.zeros_like(iou))
    # GFL's quality focal loss, beta 2: |quality − score|² weighs each cell's BCE, so the
    # ~1,700 easy background cells of an image do not drown the few dozen positives.
    scores = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, quality, reduction="none")
    classification = (bce * (scores - quality).abs().pow(2)).sum() / count
    giou_loss = torch.where(positive, 1.0 - giou, torch.zeros_like(giou)).sum() / count
    l1 = ((boxes - target).abs().sum(-1) / strides[None]) * fg
    return classification + box_weight * giou_loss + l1_weight * l1.sum() / count


def batch_loss(model: PersonDetector, batch: Sequence[torch.Tensor],
               config: TrainConfig) -> torch.Tensor:
    images, target, positive = batch
    boxes, logits = model.raw(images)
    _, strides = model.anchors(int(images.shape[-2]), int(images.shape[-1]), images.device)
    return detection_loss(boxes, logits, target, positive, strides,
                          box_weight=config.box_weight, l1_weight=config.l1_weight)


# --- export ---------------------------------------------------------------------------

def ultralytics_metadata(height: int, width: int) -> dict[str, str]:
    """What Ultralytics writes into its ONNX files (read back with ast.literal_eval)."""
    return {"description": DESCRIPTION, "author": "edgepose", "task": "detect",
            "stride": str(max(STRIDES)), "batch": "1", "imgsz": f"[{height}, {width}]",
            "names": "{0: 'person'}"}


def export_detector(model: torch.nn.Module, out: Path, height: int, width: int,
                    seed: int = 0) -> dict:
    """Write `model` to `out` as an Ultralytics-layout ONNX file (opset 17, batch 1), after
    checking it in ONNX Runtime against PyTorch on a random image; ExportError and nothing
    at `out` when they differ. Returns the check's errors and the opset."""
    import onnxruntime as ort

    model = model.eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.rand(1, 3, height, width, generator=generator)
    with atomic_path(out) as temporary:
        with warnings.catch_warnings():
            # The TorchScript exporter's deprecation note and the tracer's notes on the
            # input size read as Python ints (intended: the size is fixed).
            warnings.simplefilter("ignore")
            try:
                with torch.no_grad():
                    # dynamo=False: the TorchScript exporter writes opset 17 as asked and
                    # folds constants (the anchor grid, BN into convs), as Ultralytics'
                    # exporter does; the shape is static, so dynamo's dynamic batch buys
                    # nothing here.
                    torch.onnx.export(model, (example,), str(temporary), dynamo=False,
                                      input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                      opset_version=OPSET, do_constant_folding=True)
            except Exception as exc:  # noqa: BLE001 - the exporter raises many types
                raise ExportError(f"torch.onnx.export failed for the detector: "
                                  f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from exc
        proto = onnx.load(str(temporary))
        for key, value in ultralytics_metadata(height, width).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(temporary))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(temporary), options,
                                       providers=["CPUExecutionProvider"])
        produced = session.run([OUTPUT_NAME], {INPUT_NAME: example.numpy()})[0]
        with torch.no_grad():
            expected = model(example).numpy()
        if produced.shape != expected.shape:
            raise ExportError(f"ONNX output shape {produced.shape} differs from PyTorch's "
                              f"{expected.shape}; nothing was written to {out}")
        box_error = float(np.abs(produced[:, :4] - expected[:, :4]).max())
        score_error = float(np.abs(produced[:, 4] - expected[:, 4]).max())
        if not (box_error <= BOX_TOLERANCE and score_error <= SCORE_TOLERANCE):
            raise ExportError(f"ONNX Runtime differs from PyTorch by {box_error:.3g} px on the "
                              f"boxes and {score_error:.3g} on the scores (tolerances "
                              f"{BOX_TOLERANCE}, {SCORE_TOLERANCE}); nothing was written to "
                              f"{out}")
    log.info("wrote %s (max error %.2g px, %.2g score)", out, box_error, score_error)
    return {"opset": OPSET, "max_abs_error_boxes_px": box_error,
            "max_abs_error_scores": score_error}


# --- evaluation -----------------------------------------------------------------------

def evaluate_onnx(onnx_path: Path, annotations: Path, images: Path) -> dict:
    """Person box AP of the ONNX file on a COCO set, read as a user's detector is: through
    edgepose.detect (the guessed Ultralytics card) at the COCO protocol's thresholds, and
    scored by edgepose.evaluate's pycocotools bbox evaluation."""
    from edgepose.detect import Detector
    from edgepose.evaluate.metrics import coco_box_eval

    data = read_annotations(annotations)
    results = []
    with Detector.open(onnx_path, score_threshold=SCORE_THRESHOLD, iou_threshold=NMS_IOU,
                       max_detections=MAX_DETECTIONS) as detector:
        for info in sorted(data["images"], key=lambda image: image["id"]):
            found = detector(read_image(Path(images) / info["file_name"]))
            results += [dict(entry, image_id=info["id"]) for entry in found.to_json()]
    metrics = coco_box_eval(data, results, image_ids=[image["id"] for image in data["images"]])
    return {**{name: None if math.isnan(value) else round(value, 4)
                for name, value in metrics.items()},
            "images": len(data["images"]), "ground_truth_boxes": len(data["annotations"]),
            "detections": len(results)}


def validate(onnx_path: Path, config: TrainConfig) -> dict:
    """evaluate_onnx on `validation_count` fresh synthetic images of `validation_seed`,
    written by the same generator as the training set into a temporary folder."""
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    with tempfile.TemporaryDirectory(prefix="edgepose-detector-val-") as folder:
        annotations = write_coco_dataset(
            folder, config.validation_count,
            SyntheticConfig(image_size=(config.input_width, config.input_height),
                            seed=config.validation_seed),
            # Below ~50 images the worker processes' start costs more than they save.
            workers=None if config.validation_count >= 50 else 1, progress=False)
        metrics = evaluate_onnx(onnx_path, annotations, Path(folder) / "images")
    return {"seed": config.validation_seed, **metrics}


# --- command --------------------------------------------------------------------------

def _loader_init(_worker: int) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def train(annotations: Path, images: Path, out: Path, config: TrainConfig,
          command: str | None = None) -> dict:
    """Train for `config.steps`, export the ONNX file to `out` and its record beside it
    (.json), scored on the validation split when `config.validation_count` > 0."""
    check_output_folder(out)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(config.threads)
    cv2.setNumThreads(1)  # the two cores are the training step's
    precision = resolve_precision(config.precision)
    compiled = resolve_compile(config.compile)
    frames, data = load_frames(annotations, images, config.min_box_area)
    model = PersonDetector(DetectorConfig())
    loader = torch.utils.data.DataLoader(FrameDataset(frames, config, train=True),
                                         batch_size=config.batch_size, shuffle=True,
                                         drop_last=len(frames) >= config.batch_size,
                                         num_workers=config.loader_workers,
                                         # Kept between epochs, so each image's draw count
                                         # (its augmentation seed) keeps counting.
                                         persistent_workers=config.loader_workers > 0,
                                         worker_init_fn=_loader_init)
    run = run_steps(model, loader, lambda batch: batch_loss(model, batch, config),
                    steps=config.steps, learning_rate=config.learning_rate,
                    weight_decay=config.weight_decay, description="train",
                    precision=precision, compile_step=compiled)
    export = export_detector(model, out, config.input_height, config.input_width, config.seed)
    record = {
        "onnx": out.name,
        "onnx_bytes": out.stat().st_size,
        "parameters": count_parameters(model),
        "model": asdict(model.config),
        "input": [INPUT_NAME, [1, 3, config.input_height, config.input_width], "RGB / 255"],
        "output": [OUTPUT_NAME, [1, 5, anchor_count(config.input_height, config.input_width)],
                   "cx, cy, w, h (px), score; strides 8, 16, 32, each row-major"],
        "export": export,
        "config": asdict(config),
        "precision": precision,
        "compiled": compiled,
        "data": {"annotations": str(annotations), **data,
                 "ground_truth": "every non-crowd person box, ignored figures included"},
        "steps": run.steps,
        "samples_seen": run.steps * config.batch_size,
        "train_seconds": round(run.seconds, 1),
        "first_step_seconds": round(run.first_step_seconds, 1),
        "loss_history": run.history,
        "command": command,
    }
    if config.validation_count:
        record["validation"] = {
            **validate(out, config),
            "decode": {"score_threshold": SCORE_THRESHOLD, "nms_iou": NMS_IOU,
                       "max_detections": MAX_DETECTIONS},
            "ground_truth": "every non-crowd person box, ignored figures included: "
                            "num_keypoints 0 is ignored by keypoint AP only",
        }
        v = record["validation"]
        print(f"validation (seed {v['seed']}, {v['images']} images): AP {v['AP']:.3f}  "
              f"AP50 {v['AP50']:.3f}  AP75 {v['AP75']:.3f}  AR100 {v['AR100']:.3f}",
              file=sys.stderr)
    write_json_atomic(out.with_suffix(".json"), record)
    return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export.training.detector",
        description="Train edgepose's small person detector (YOLOv8-style, anchor-free) on a "
                    "synthetic COCO set on the CPU, export it as an Ultralytics-layout ONNX "
                    "file (checked against PyTorch) and score its boxes on fresh synthetic "
                    "images.")
    parser.add_argument("--annotations", type=Path, required=True,
                        help="COCO person_keypoints JSON of the training set (its boxes are used)")
    parser.add_argument("--images", type=Path, required=True, help="folder of its images")
    parser.add_argument("--out", type=Path, required=True,
                        help="ONNX file to write (input 'images' 1x3xHxW, output 'output0' "
                             "1x5xA); a .json training record is written beside it")
    defaults = TrainConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help=f"optimiser steps (default {defaults.steps})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help=f"images per step (default {defaults.batch_size})")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate,
                        help=f"peak AdamW learning rate of the one-cycle schedule "
                             f"(default {defaults.learning_rate})")
    parser.add_argument("--height", type=int, default=defaults.input_height,
                        help=f"input height, a multiple of 32; the training images must have "
                             f"it (default {defaults.input_height})")
    parser.add_argument("--width", type=int, default=defaults.input_width,
                        help=f"input width, a multiple of 32 (default {defaults.input_width})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed of initialisation, order and augmentation "
                             f"(default {defaults.seed})")
    parser.add_argument("--val-count", type=int, default=defaults.validation_count,
                        help=f"synthetic validation images to score the exported file on, 0 "
                             f"for none (default {defaults.validation_count})")
    parser.add_argument("--val-seed", type=int, default=defaults.validation_seed,
                        help=f"generator seed of the validation images; keep it apart from the "
                             f"training set's (default {defaults.validation_seed})")
    parser.add_argument("--loader-workers", type=int, default=defaults.loader_workers,
                        help=f"processes that read and augment the images beside the training "
                             f"step, 0 to do it in the step's process (default "
                             f"{defaults.loader_workers})")
    add_run_options(parser, defaults)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "export.training.detector", *argv])

    def make_config() -> TrainConfig:
        return TrainConfig(input_height=args.height, input_width=args.width, steps=args.steps,
                           batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                           validation_count=args.val_count, validation_seed=args.val_seed,
                           threads=args.threads, loader_workers=args.loader_workers,
                           precision=args.precision,
                           compile=args.compile)

    return run_training_command(
        args, make_config,
        lambda annotations, images, out, config: train(annotations, images, out, config,
                                                       command=command))


if __name__ == "__main__":
    raise SystemExit(main())
