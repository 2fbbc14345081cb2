"""AE grouping's COCO AP with ties='official' against 'most-joins': print the table, write JSON.

On maps rendered from the synthetic validation split's annotations.

    .venv/bin/python benchmarks/ae_ties_ap.py
    .venv/bin/python benchmarks/ae_ties_ap.py --data out/demo/val --images 100 --flip

The project ships no trained Associative Embedding model, so the network outputs are
drawn from the ground truth of the synthetic validation split (the README's: 300
images, SyntheticConfig(seed=2), written to --data unless its person_keypoints.json is
already there) as a model would produce them, with seeded noise:

- The frame is fitted into the --input-size square input as AeBottomUpPipeline fits it
  (resize_pad_for_bottom_up: scale = min(input / h, input / w), padded bottom/right).
  pose-ae-train's maps are at stride 4 (128x128 for a 512 input) and are grouped there;
  HigherHRNet's are output0 at stride 4 (K heatmaps + K tags) and output1 at stride 2
  (K heatmaps), aggregated (ae_maps.aggregate_higherhrnet) and resized to the input
  (ae_maps.resize_bilinear, the sources' PROJECT2IMAGE) before grouping, as the pipeline
  does.
- Heatmaps: one Gaussian of --sigma map pixels (at each resolution, as both sources
  train) per labelled keypoint (v > 0), its peak the person's value drawn from
  U(0.6, 1.0), times --occluded-scale for v = 1; centred at x·scale/stride − 0.5 (so
  that the decoder's half pixel and the pipeline's x·stride/scale bring it back to x).
  Noise: uniform background in [0, --heatmap-noise] per pixel, and false peaks:
  Poisson(--false-peaks) per keypoint channel per image, anywhere in the frame, each a
  Gaussian of the same sigma with a value from U(0.15, --false-peak-max).
- Tags (D = 1, or 2 with --flip): person n's tag is --tag-spacing times its rank in a
  random order, plus one offset U(0, spacing) per image. It is painted within
  --tag-radius pixels (of the stride-4 tag map) of each of its labelled keypoints,
  later people over earlier ones, with a per-keypoint error N(0, --tag-noise) (one
  value for the whole disc: a model's tag error is smooth) plus per-pixel
  N(0, --tag-pixel-noise). Elsewhere (false peaks included) the tag is a smooth
  random field, uniform over the people's tag range widened by one spacing on each
  side, interpolated from a grid of 8-pixel cells. With a spacing of 1 and the sources'
  round(distance) cost, distances to neighbouring people round to equal integers, so
  equal-cost assignments are common, as in crowded frames.
- --flip: a second, independent draw of the same scene is mirrored, then flip-averaged
  with ae_maps.average_flip (heatmaps averaged, tags stacked, D = 2) as both sources'
  flip test.

Every draw is seeded by (--seed, image id, preset). Each image's maps are decoded with
the higherhrnet and pose-ae-train presets (AeParams.preset), each with
ties='official' (the sources' munkres order) and ties='most-joins'
(dataclasses.replace), mapped to image pixels as AeBottomUpPipeline maps them, and
scored as `edgepose eval` scores bottom-up models: Poses.to_coco_results, then
edgepose.evaluate.coco_keypoint_eval (pycocotools, every image of the split counted).
"people found" counts the decoded people; "images differing" counts the images where
the two tie rules return different people (in any order: count, coordinates or scores).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks.timing import machine, write_report  # noqa: E402
from edgepose.decode.ae import AeDecoder, AeParams  # noqa: E402
from edgepose.decode.ae_maps import (aggregate_higherhrnet, average_flip,  # noqa: E402
                                     flip_back_maps, resize_bilinear)
from edgepose.evaluate import PERSON_CATEGORY_ID, coco_keypoint_eval  # noqa: E402
from edgepose.io import read_json  # noqa: E402
from edgepose.keypoints import COCO17  # noqa: E402
from edgepose.poses import Poses  # noqa: E402
from edgepose.preprocess import resize_pad_for_bottom_up  # noqa: E402

DEFAULT_JSON = ROOT / "out" / "benchmarks" / "ae_ties_ap.json"
DEFAULT_DATA = ROOT / "out" / "benchmarks" / "ae_ties_ap_val"
#: The README's synthetic validation split (tools/demo.py's VALIDATION_SEED, _IMAGES).
SPLIT_SEED, SPLIT_IMAGES = 2, 300
ANNOTATIONS = "person_keypoints.json"
PRESET_ORDER = ("higherhrnet", "pose-ae-train")
TIES = ("official", "most-joins")
#: Map strides: pose-ae-train groups its stride-4 maps; HigherHRNet aggregates stride 4
#: (heatmaps + tags) with stride 2 (heatmaps) and groups at the input resolution.
TAG_STRIDE, HIGH_STRIDE = 4, 2
PERSON_PEAK = (0.6, 1.0)
FALSE_PEAK_LOW = 0.15
TAG_FIELD_CELL = 8
K = COCO17.num_keypoints


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"folder of the synthetic validation split ({SPLIT_IMAGES} images, "
                             f"seed {SPLIT_SEED}); reused when it holds {ANNOTATIONS} (e.g. "
                             f"make demo's out/demo/val), else written there (default "
                             f"{DEFAULT_DATA.relative_to(ROOT)})")
    parser.add_argument("--images", type=int, default=None,
                        help="score only the first N images of the split (by id); default all")
    parser.add_argument("--input-size", type=int, default=512,
                        help="square network input in pixels (default 512: both presets' 512 "
                             "variants)")
    parser.add_argument("--sigma", type=float, default=2.0,
                        help="Gaussian sigma of every heatmap peak, in pixels of each map "
                             "(default 2)")
    parser.add_argument("--occluded-scale", type=float, default=0.5,
                        help="peak value factor of occluded (v=1) keypoints (default 0.5)")
    parser.add_argument("--heatmap-noise", type=float, default=0.05,
                        help="uniform background noise of the heatmaps, in [0, this] "
                             "(default 0.05)")
    parser.add_argument("--false-peaks", type=float, default=2.0,
                        help="mean number (Poisson) of false peaks per keypoint channel "
                             "(default 2)")
    parser.add_argument("--false-peak-max", type=float, default=0.6,
                        help=f"false peaks' values are drawn from U({FALSE_PEAK_LOW}, this) "
                             f"(default 0.6)")
    parser.add_argument("--tag-spacing", type=float, default=1.0,
                        help="distance between the tags of people of adjacent rank (default 1)")
    parser.add_argument("--tag-noise", type=float, default=0.3,
                        help="std of each keypoint's tag error, one value per painted disc "
                             "(default 0.3)")
    parser.add_argument("--tag-pixel-noise", type=float, default=0.05,
                        help="std of the per-pixel tag noise inside the painted discs "
                             "(default 0.05)")
    parser.add_argument("--tag-radius", type=float, default=3.0,
                        help="radius of each keypoint's painted tag disc, in stride-4 pixels "
                             "(default 3)")
    parser.add_argument("--flip", action="store_true",
                        help="simulate the flip test: a second independent draw, mirrored and "
                             "flip-averaged (tags D = 2)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the rendered noise (default 0)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"report JSON (default {DEFAULT_JSON.relative_to(ROOT)})")
    return parser


def split_annotations(folder: Path) -> Path:
    """The split's annotation file: reused if present, else the split is written there."""
    path = folder / ANNOTATIONS
    if path.is_file():
        return path
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    print(f"writing the synthetic validation split ({SPLIT_IMAGES} images, seed {SPLIT_SEED}) "
          f"to {folder}", flush=True)
    return Path(write_coco_dataset(folder, SPLIT_IMAGES, SyntheticConfig(seed=SPLIT_SEED),
                                   progress=False))


@dataclasses.dataclass
class Scene:
    """One image's ground truth and noise in image pixels.

    keypoints (N, K, 3) x, y, v; values (N, K) peak values (0 where unlabelled);
    tags (N,) person tags; tag_errors (D, N, K); false peaks: channel (F,), xy (F, 2),
    value (F,); tag_range (low, high) of the background field.
    """

    keypoints: np.ndarray
    values: np.ndarray
    tags: np.ndarray
    tag_errors: np.ndarray
    false_channel: np.ndarray
    false_xy: np.ndarray
    false_value: np.ndarray
    tag_range: tuple[float, float]


def make_scene(annotations: list[dict], width: int, height: int, args: argparse.Namespace,
               rng: np.random.Generator, dims: int) -> Scene:
    count = len(annotations)
    keypoints = np.array([a["keypoints"] for a in annotations], np.float64).reshape(count, K, 3)
    person_value = rng.uniform(*PERSON_PEAK, size=count)
    visibility = keypoints[..., 2]
    values = np.where(visibility >= 2, 1.0, np.where(visibility > 0, args.occluded_scale, 0.0))
    values = values * person_value[:, None]
    spacing = args.tag_spacing
    tags = rng.permutation(count) * spacing + rng.uniform(0, spacing)
    tag_errors = rng.normal(0, args.tag_noise, (dims, count, K))
    false_count = rng.poisson(args.false_peaks, K)
    false_channel = np.repeat(np.arange(K), false_count)
    total = int(false_count.sum())
    false_xy = np.stack([rng.uniform(0, width, total), rng.uniform(0, height, total)], axis=1)
    false_value = rng.uniform(FALSE_PEAK_LOW, max(args.false_peak_max, FALSE_PEAK_LOW), total)
    low = -spacing
    high = (count + 1) * spacing
    return Scene(keypoints, values, tags, tag_errors, false_channel, false_xy, false_value,
                 (low, high))


def _paint_gaussian(plane: np.ndarray, cx: float, cy: float, value: float, sigma: float) -> None:
    height, width = plane.shape
    reach = int(math.ceil(3 * sigma))
    x0, x1 = max(int(math.floor(cx)) - reach, 0), min(int(math.ceil(cx)) + reach + 1, width)
    y0, y1 = max(int(math.floor(cy)) - reach, 0), min(int(math.ceil(cy)) + reach + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    gx = np.arange(x0, x1) - cx
    gy = np.arange(y0, y1) - cy
    patch = value * np.exp(-(gy[:, None] ** 2 + gx[None, :] ** 2) / (2 * sigma ** 2))
    np.maximum(plane[y0:y1, x0:x1], patch, out=plane[y0:y1, x0:x1])


def render_heatmaps(scene: Scene, size: tuple[int, int], to_map: float, args, rng
                    ) -> np.ndarray:
    """(K, H, W) heatmaps of a map `size` (width, height) with map x = image x · to_map."""
    width, height = size
    heatmaps = rng.uniform(0, args.heatmap_noise, (K, height, width)) if args.heatmap_noise \
        else np.zeros((K, height, width))
    for n in range(len(scene.values)):
        for k in range(K):
            if scene.values[n, k] > 0:
                x, y = scene.keypoints[n, k, :2]
                _paint_gaussian(heatmaps[k], x * to_map - 0.5, y * to_map - 0.5,
                                scene.values[n, k], args.sigma)
    for k, (x, y), value in zip(scene.false_channel, scene.false_xy, scene.false_value):
        _paint_gaussian(heatmaps[k], x * to_map - 0.5, y * to_map - 0.5, value, args.sigma)
    return heatmaps.astype(np.float32)


def render_tags(scene: Scene, size: tuple[int, int], to_map: float, dim: int, args, rng
                ) -> np.ndarray:
    """(K, H, W) tag maps (tag dimension `dim`) of a map `size` (width, height)."""
    width, height = size
    cells = (max(2, -(-width // TAG_FIELD_CELL)), max(2, -(-height // TAG_FIELD_CELL)))
    coarse = rng.uniform(*scene.tag_range, (K, cells[1], cells[0])).astype(np.float32)
    tags = np.stack([cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
                     for plane in coarse])
    gy, gx = np.mgrid[0:height, 0:width]
    radius2 = args.tag_radius ** 2
    for n in range(len(scene.values)):
        for k in range(K):
            if scene.values[n, k] <= 0:
                continue
            x, y = scene.keypoints[n, k, :2]
            near = (gx - (x * to_map - 0.5)) ** 2 + (gy - (y * to_map - 0.5)) ** 2 <= radius2
            tags[k][near] = (scene.tags[n] + scene.tag_errors[dim, n, k]
                             + rng.normal(0, args.tag_pixel_noise, int(near.sum())))
    return tags.astype(np.float32)


def preset_maps(preset: str, scene: Scene, scale: float, args, rng, dim: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """One pass of the network as the pipeline groups it: heatmaps, tags (K, H, W)."""
    size = args.input_size
    low = (size // TAG_STRIDE, size // TAG_STRIDE)
    heatmaps = render_heatmaps(scene, low, scale / TAG_STRIDE, args, rng)
    tags = render_tags(scene, low, scale / TAG_STRIDE, dim, args, rng)
    if preset == "pose-ae-train":
        return heatmaps, tags
    high = render_heatmaps(scene, (size // HIGH_STRIDE, size // HIGH_STRIDE),
                           scale / HIGH_STRIDE, args, rng)
    heatmaps, tags = aggregate_higherhrnet(np.concatenate([heatmaps, tags]), high, K)
    return resize_bilinear(heatmaps, (size, size)), resize_bilinear(tags, (size, size))


def frame_maps(preset: str, scene: Scene, scale: float, args, rng
               ) -> tuple[np.ndarray, np.ndarray]:
    heatmaps, tags = preset_maps(preset, scene, scale, args, rng, 0)
    if not args.flip:
        return heatmaps, tags
    permutation = COCO17.flip_permutation()
    # The mirrored frame's outputs: an independent draw, mirrored (flip_back_maps is its
    # own inverse), then averaged back as the sources' flip test does.
    other_heatmaps, other_tags = preset_maps(preset, scene, scale, args, rng, 1)
    return average_flip(heatmaps, tags, flip_back_maps(other_heatmaps, permutation),
                        flip_back_maps(other_tags, permutation), permutation)


def to_image(xy: np.ndarray, scores: np.ndarray, map_width: int, input_size: int,
             scale: float) -> np.ndarray:
    """AeBottomUpPipeline's map → image step: x · input/map size / resize scale."""
    to_input = input_size / map_width
    return np.where(scores[..., None] > 0, xy * to_input / scale, 0.0).astype(np.float32)


def same_people(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    """Whether two decodes (xy, scores, person_scores) hold the same people, in any order."""
    def rows(decoded: tuple[np.ndarray, ...]) -> np.ndarray:
        xy, scores, person_scores = decoded
        table = np.concatenate([xy.reshape(len(xy), 2 * K), scores, person_scores[:, None]],
                               axis=1)
        return table[np.lexsort(table.T[::-1])] if len(table) else table
    first, second = rows(a), rows(b)
    return first.shape == second.shape and np.array_equal(first, second)


def print_table(rows: list[dict]) -> None:
    header = ("preset", "ties", "AP", "AP50", "AR", "people found", "images differing")
    lines = [header] + [(r["preset"], r["ties"], f"{r['AP']:.4f}", f"{r['AP50']:.4f}",
                         f"{r['AR']:.4f}", str(r["people_found"]), str(r["images_differing"]))
                        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(" | ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(line, widths))))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.images is not None and args.images < 1:
        print("ae_ties_ap: error: --images must be >= 1", file=sys.stderr)
        return 2
    started = time.perf_counter()
    annotation_path = split_annotations(args.data)
    dataset = read_json(annotation_path, "annotations")
    images = sorted(dataset["images"], key=lambda image: image["id"])
    if args.images is not None:
        images = images[:args.images]
    by_image: dict[int, list[dict]] = {image["id"]: [] for image in images}
    for annotation in dataset["annotations"]:
        if annotation["image_id"] in by_image:
            by_image[annotation["image_id"]].append(annotation)
    dims = 2 if args.flip else 1

    decoders = {(preset, ties): AeDecoder(dataclasses.replace(AeParams.preset(preset),
                                                              ties=ties))
                for preset in PRESET_ORDER for ties in TIES}
    results = {key: [] for key in decoders}
    people = {key: 0 for key in decoders}
    differing = {preset: [] for preset in PRESET_ORDER}
    decode_s = {key: 0.0 for key in decoders}
    for image in images:
        width, height = image["width"], image["height"]
        _, scale, _ = resize_pad_for_bottom_up(np.zeros((height, width, 3), np.uint8),
                                               args.input_size, TAG_STRIDE, 0,
                                               target_width=args.input_size)
        for preset_index, preset in enumerate(PRESET_ORDER):
            rng = np.random.default_rng([args.seed, image["id"], preset_index])
            scene = make_scene(by_image[image["id"]], width, height, args, rng, dims)
            heatmaps, tags = frame_maps(preset, scene, scale, args, rng)
            decoded = {}
            for ties in TIES:
                tick = time.perf_counter()
                xy, scores, person_scores = decoders[preset, ties].decode(heatmaps, tags)
                decode_s[preset, ties] += time.perf_counter() - tick
                decoded[ties] = (xy, scores, person_scores)
                poses = Poses(xy=to_image(xy, scores, heatmaps.shape[2], args.input_size,
                                          scale),
                              scores=scores, person_scores=person_scores,
                              keypoint_set=COCO17.name)
                results[preset, ties].extend(poses.to_coco_results(image["id"],
                                                                   PERSON_CATEGORY_ID))
                people[preset, ties] += len(poses)
            if not same_people(decoded["official"], decoded["most-joins"]):
                differing[preset].append(image["id"])

    image_ids = [image["id"] for image in images]
    rows = []
    for preset, ties in decoders:
        metrics = coco_keypoint_eval(dataset, results[preset, ties], image_ids=image_ids)
        rows.append({"preset": preset, "ties": ties, **metrics,
                     "people_found": people[preset, ties],
                     "images_differing": len(differing[preset]),
                     "decode_ms_per_image": 1e3 * decode_s[preset, ties] / len(images)})
    ground_truth = sum(1 for image_id in image_ids for a in by_image[image_id]
                       if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0))
    print(f"AE ties on maps drawn from the synthetic validation split: {len(images)} images "
          f"(seed {SPLIT_SEED}), {ground_truth} labelled people, input {args.input_size}, "
          f"tags D={dims}; images differing = images where official and most-joins give "
          f"different people")
    print_table(rows)
    for preset in PRESET_ORDER:
        ids = differing[preset]
        print(f"{preset}: differing image ids {ids[:20]}{' ...' if len(ids) > 20 else ''}")
    wall = time.perf_counter() - started
    print(f"wall time {wall:.1f} s")
    noise = {name: getattr(args, name) for name in (
        "sigma", "occluded_scale", "heatmap_noise", "false_peaks", "false_peak_max",
        "tag_spacing", "tag_noise", "tag_pixel_noise", "tag_radius", "flip", "seed")}
    noise.update(person_peak=PERSON_PEAK, false_peak_low=FALSE_PEAK_LOW,
                 tag_field_cell=TAG_FIELD_CELL)
    report = {
        "benchmark": "ae_ties_ap",
        "data": {"annotations": str(annotation_path), "split_seed": SPLIT_SEED,
                 "images": len(images), "labelled_people": ground_truth},
        "input_size": args.input_size,
        "strides": {"pose-ae-train": [TAG_STRIDE], "higherhrnet": [TAG_STRIDE, HIGH_STRIDE]},
        "tag_dims": dims,
        "noise": noise,
        "rows": [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                  for k, v in row.items()} for row in rows],
        "differing_image_ids": differing,
        "wall_time_s": wall,
        "machine": machine(),
    }
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
