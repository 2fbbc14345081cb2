"""`make demo`: the main job on the shipped default, end to end, without the network.

checkpoint → ONNX (verified against PyTorch) → FP16 and INT8 graphs (calib/) →
poses drawn on the shipped images → COCO AP and time per image of every precision
on a synthetic validation split, on TensorRT when a GPU and TensorRT are present and
on ONNX Runtime otherwise (the summary says which, and why). The shipped bottom-up
demo model (OpenPose) then runs on the same images, whole frames without boxes, and
adds its row to the table. The shipped demo person detector travels a user's
detector's path (its ONNX gets a detector card, then finds the people the HRNet
poses) and adds the detect → crop → pose row.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))
VARIANT = "w10_128x96"
CHECKPOINT = ROOT / f"assets/models/hrnet_{VARIANT}_synthetic.pth"
OPENPOSE_CHECKPOINT = ROOT / "assets/models/openpose_coco18_d8_synthetic.pth"
OPENPOSE_VARIANT, OPENPOSE_INPUT = "coco18_d8", (256, 320)  # the size it trained at
DETECTOR = ROOT / "assets/models/person_detector_synthetic.onnx"
# The stream demo: a short synthetic video of people walking past each other.
VIDEO_FRAMES, VIDEO_PEOPLE, VIDEO_SEED = 60, 3, 5
DETECTION_INTERVALS = (1, 3, 5)
SHIPPED = ROOT / "assets/demo/people"
DEMO_IMAGES = ("000001.jpg", "000002.jpg")
# The validation split: a seed the demo checkpoint never trained on (it trained on seed 1).
VALIDATION_SEED, VALIDATION_IMAGES = 2, 300
# Calibration images come from the training distribution (seed 1), not the validation split.
CALIBRATION_SEED, CALIBRATION_IMAGES, CALIBRATION_SAMPLES = 1, 300, 512
# The INT8 graph is gated as a user would gate it: layers fall back to FP16 until the AP
# lost on the held-out calibration images is at most this (AP points); half the 1-point
# budget, because AP on a few hundred crops is a noisy estimate.
INT8_MAX_AP_DROP = 0.5


def _shown(path: Path) -> Path:
    """A path as the user reads it: relative to the checkout when inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _tensorrt_status() -> str | None:
    """None when engines can be built and run here, else why not."""
    try:
        from edgepose import _optional
        from edgepose.cuda import get_cuda

        _optional.tensorrt("tensorrt")
        get_cuda().require_device()
    except Exception as exc:  # noqa: BLE001 - any reason means: fall back to ONNX Runtime
        return str(exc).splitlines()[0]
    return None


def _boxes_by_image(annotations: Path) -> dict[str, list[list[float]]]:
    data = json.loads(annotations.read_text())
    names = {image["id"]: image["file_name"] for image in data["images"]}
    boxes: dict[str, list[list[float]]] = {}
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) > 0 and not ann.get("iscrowd", 0):
            boxes.setdefault(names[ann["image_id"]], []).append(ann["bbox"])
    return boxes


def _calibrate(onnx_path: Path, out: Path) -> dict[str, Path]:
    """FP16 and gated INT8 (entropy) graphs of the FP32 demo graph, calibrated on person crops."""
    from calib.calibrate import calibrate
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    _step(f"calibrate: FP16 and INT8 graphs, INT8 gated at {INT8_MAX_AP_DROP} AP points "
          f"({CALIBRATION_SAMPLES} person crops from "
          f"{CALIBRATION_IMAGES} synthetic images, seed {CALIBRATION_SEED})")
    folder = out / "calibration"
    annotations = write_coco_dataset(folder, CALIBRATION_IMAGES,
                                     SyntheticConfig(seed=CALIBRATION_SEED), progress=False)
    graphs = {}
    for precision in ("fp16", "int8"):
        calibrated = calibrate(onnx_path, onnx_path.with_suffix(f".{precision}.onnx"),
                               data=folder / "images", annotations=annotations,
                               precision=precision, method="entropy",
                               samples=CALIBRATION_SAMPLES, progress=False,
                               # force: the demo shows the best graph reached even if the
                               # gate is missed (the summary says so); users get an error.
                               max_ap_drop=INT8_MAX_AP_DROP if precision == "int8" else None,
                               force=True)
        print(calibrated.summary())
        graphs[precision] = calibrated.path
    return graphs


def _draw_shipped(out: Path, suffix: str, runner, predict) -> None:
    """predict(image, file name) -> Poses on each shipped image: a drawing and COCO results."""
    from edgepose.cli import RANDOM_WEIGHTS_BANNER
    from edgepose.draw import draw_poses
    from edgepose.io import read_image, write_image_atomic, write_json_atomic

    banner = RANDOM_WEIGHTS_BANNER if runner.card.random_init else None
    for name in DEMO_IMAGES:
        image = read_image(SHIPPED / "images" / name)
        poses = predict(image, name)
        stem = Path(name).stem
        results = poses.to_coco_results(image_id=0)
        write_json_atomic(out / f"{stem}.{suffix}.json",
                          {"warnings": [banner], "results": results} if banner else results)
        write_image_atomic(out / f"{stem}.{suffix}.png", draw_poses(image, poses, banner=banner))
        print(f"{name}: {len(poses)} people -> {stem}.{suffix}.png, {stem}.{suffix}.json")


def _detector(out: Path, engines: bool) -> Path | None:
    """The shipped detector with its detector card (and its engine where TensorRT runs),
    drawn on the shipped images in front of the FP32 HRNet; None when not shipped."""
    if not DETECTOR.is_file():
        print(f"\ndetector rows skipped: no {_shown(DETECTOR)} in this checkout")
        return None
    from export.onnx_files.detector import export_detector

    _step(f"detector: {_shown(DETECTOR)} -> detector card -> detect, crop, pose")
    carded = out / "person_detector.onnx"
    card = export_detector(DETECTOR, carded)
    print(f"wrote {_shown(carded)}: {card.describe()}")
    if not engines:
        return carded
    from export.engine.tensorrt import BuildConfig, build_engine

    engine = build_engine(carded, carded.with_suffix(".engine"), BuildConfig(batch=(1, 1, 1)))
    print(f"wrote {_shown(engine)}")
    return engine


def _video_truth(annotations: Path) -> list[tuple[list[int], list[list[float]]]]:
    """Per frame: (track ids, boxes) of the people with labelled keypoints."""
    data = json.loads(annotations.read_text())
    frames: dict[int, tuple[list[int], list[list[float]]]] = {
        image["id"]: ([], []) for image in data["images"]}
    for ann in data["annotations"]:
        if ann.get("num_keypoints", 0) > 0:
            frames[ann["image_id"]][0].append(ann["track_id"])
            frames[ann["image_id"]][1].append(ann["bbox"])
    return [frames[i] for i in sorted(frames)]


def _stream(out: Path, model: Path, detector: Path) -> list[tuple[str, dict]]:
    """The detector and the HRNet over a synthetic video: the annotated video and JSON
    lines, keypoint AP, id switches and FPS at each detection interval, serial and
    pipelined."""
    import numpy as np

    import edgepose
    from edgepose.evaluate import coco_keypoint_eval, evaluate_model, id_switches
    from edgepose.sinks import JsonLinesSink, VideoSink
    from export.training.synthetic.video import SyntheticVideoConfig, write_synthetic_video

    _step(f"stream: detector + HRNet over a {VIDEO_FRAMES}-frame synthetic video "
          f"({VIDEO_PEOPLE} people walking, seed {VIDEO_SEED})")
    video, annotations = write_synthetic_video(
        out / "video", SyntheticVideoConfig(frames=VIDEO_FRAMES, people=VIDEO_PEOPLE,
                                            seed=VIDEO_SEED))
    truth = _video_truth(annotations)
    rows = []
    with edgepose.load(model, detector=detector) as estimator:
        for interval in DETECTION_INTERVALS:
            for pipelined in (False, True) if interval == 1 else (False,):
                sinks = []
                if interval == 1:
                    # Both K=1 runs draw and write, so their FPS compare like for like.
                    stem = "stream.pipelined" if pipelined else "stream"
                    sinks = [JsonLinesSink(out / f"{stem}.jsonl"),
                             VideoSink(out / f"{stem}.mp4", 10.0)]
                results, tracks = [], []
                began = time.perf_counter()
                for frame, poses in estimator.stream(video, det_interval=interval,
                                                     pipelined=pipelined):
                    if sinks:
                        drawing = estimator.draw(frame.image, poses)
                        for sink in sinks:
                            sink.write(frame, poses, drawing)
                    results.extend(poses.to_coco_results(frame.index + 1))
                    kept = poses.track_ids >= 0
                    boxes = poses.boxes if poses.boxes is not None else np.zeros((0, 4))
                    tracks.append((poses.track_ids[kept], boxes[kept]))
                seconds = time.perf_counter() - began
                for sink in sinks:
                    sink.finish(True)
                metrics = coco_keypoint_eval(annotations, results)
                score = id_switches(truth, tracks)
                label = f"K={interval}" + (" pipelined" if pipelined else "")
                rows.append((label, {"ap": metrics["AP"], "id_switches": score.id_switches,
                                     "mota": score.to_dict()["mota"],
                                     "fps": VIDEO_FRAMES / seconds}))
    ground = evaluate_model(model, annotations, video.parent / "images", progress=False)
    same = (out / "stream.jsonl").read_bytes() == (out / "stream.pipelined.jsonl").read_bytes()
    print(f"wrote {_shown(out / 'stream.mp4')}, {_shown(out / 'stream.jsonl')}; pipelined "
          f"poses {'identical to' if same else 'DIFFERENT FROM'} the serial loop's")
    print(f"{'detector every':<22}{'AP':>7}{'id switches':>13}{'MOTA':>7}{'FPS':>7}")
    for label, row in rows:
        mota = "n/a" if row["mota"] is None else f"{row['mota']:.2f}"
        print(f"{label:<22}{row['ap']:>7.3f}{row['id_switches']:>13d}{mota:>7}"
              f"{row['fps']:>7.1f}")
    print(f"{'ground-truth boxes':<22}{ground.metrics['AP']:>7.3f}{'-':>13}{'-':>7}"
          f"{1000 / max(ground.ms_per_image, 1e-9):>7.1f}")
    print("K: the detector runs every K frames, the boxes in between follow the previous "
          "poses. FPS: reading, detecting, posing and tracking, plus drawing and writing the "
          "video and JSON lines in both K=1 rows; the ground-truth row is eval's loop.")
    return rows


def run(out: Path) -> int:
    import numpy as np

    from export.training.synthetic import SyntheticConfig, write_coco_dataset
    from edgepose.backends import open_runner
    from edgepose.cli import RANDOM_WEIGHTS_BANNER
    from edgepose.evaluate import evaluate_model
    from edgepose.io import write_json_atomic
    from edgepose.pipeline import TopDownPipeline, bottom_up_pipeline
    from export.families import export_model

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    onnx_path = out / f"hrnet_{VARIANT}.onnx"
    if CHECKPOINT.is_file():
        _step(f"export: {CHECKPOINT.relative_to(ROOT)} -> ONNX")
        result = export_model("hrnet", VARIANT, onnx_path, checkpoint=CHECKPOINT)
    else:
        # Until a trained demo checkpoint ships, the chain runs on random weights, said loudly.
        _step(f"export: no {CHECKPOINT.relative_to(ROOT)} in this checkout -> RANDOM weights")
        result = export_model("hrnet", VARIANT, onnx_path, random_init=True)
    print(f"wrote {_shown(onnx_path)} ({result.layout} weights)")
    for check in result.verification:
        print(f"  ONNX Runtime vs PyTorch, {check}")

    graphs = {"fp32": onnx_path}
    if result.card.random_init:
        print("\nFP16/INT8 calibration skipped: an untrained model has no accuracy to keep")
    else:
        graphs.update(_calibrate(onnx_path, out))

    reason = _tensorrt_status()
    models = {f"{precision} onnx": graph for precision, graph in graphs.items()}
    if reason is None:
        from export.engine.tensorrt import BuildConfig, build_engine

        _step("build: TensorRT engines (precision from each graph)")
        models = {}
        for precision, graph in graphs.items():
            engine = build_engine(graph, graph.with_suffix(".engine"), BuildConfig(batch=(1, 4, 8)))
            models[f"{precision} engine"] = engine
            print(f"wrote {_shown(engine)}")
    else:
        print(f"\nTensorRT engines skipped: {reason}\nRunning on ONNX Runtime (CPU) instead.")
    model_for_images = next(iter(models.values()))

    _step("infer: shipped images")
    boxes = _boxes_by_image(SHIPPED / "person_keypoints.json")
    with open_runner(model_for_images) as runner:
        pipeline = TopDownPipeline(runner)
        _draw_shipped(out, "poses", runner,
                      lambda image, name: pipeline(image, np.asarray(boxes[name], np.float32)))

    if OPENPOSE_CHECKPOINT.is_file():
        openpose_path = out / f"openpose_{OPENPOSE_VARIANT}.onnx"
        _step(f"bottom-up: {OPENPOSE_CHECKPOINT.relative_to(ROOT)} -> ONNX -> whole frames")
        openpose = export_model("openpose", OPENPOSE_VARIANT, openpose_path,
                                checkpoint=OPENPOSE_CHECKPOINT, input_size=OPENPOSE_INPUT)
        print(f"wrote {_shown(openpose_path)} ({openpose.layout} weights)")
        with open_runner(openpose_path) as runner:
            pipeline = bottom_up_pipeline(runner)
            _draw_shipped(out, "openpose", runner, lambda image, name: pipeline(image))
        models["openpose fp32 onnx"] = openpose_path

    detector = _detector(out, reason is None)
    if detector is not None:
        import edgepose

        with edgepose.load(model_for_images, detector=detector) as estimator:
            _draw_shipped(out, "detected", estimator.runner,
                          lambda image, name: estimator(image))

    _step(f"eval: synthetic validation split ({VALIDATION_IMAGES} images, seed {VALIDATION_SEED})")
    validation = out / "val"
    annotations = write_coco_dataset(validation, VALIDATION_IMAGES,
                                     SyntheticConfig(seed=VALIDATION_SEED), progress=False)
    rows = []
    runs = [(label, model, None) for label, model in models.items()]
    if detector is not None:
        runs.append((f"{next(iter(models))} + detector", model_for_images, detector))
    for label, model, boxes_from in runs:
        report = evaluate_model(model, annotations, validation / "images", progress=False,
                                detector=boxes_from)
        write_json_atomic(out / f"eval_{label.replace(' ', '_')}.json", report.to_dict())
        rows.append((label, report))

    _step("summary")
    fp32_ap = rows[0][1].metrics["AP"]
    width = max(20, max(len(label) for label, _ in rows) + 2)
    print(f"{'model':<{width}}{'backend':<40}{'AP':>7}{'AP50':>7}{'AP75':>7}{'AR':>7}"
          f"{'AP drop':>9}{'ms/image':>10}")
    for label, report in rows:
        metrics = report.metrics
        per_image = 1000 * report.wall_time_s / max(report.images, 1)
        # An AP drop compares precisions of one model; the bottom-up row is another model.
        # Rounded before printing, with + 0.0, so a gain too small to show reads 0.00, not -0.00.
        drop = (f"{round(100 * (fp32_ap - metrics['AP']), 2) + 0.0:>9.2f}"
                if report.family == "hrnet" else f"{'-':>9}")
        print(f"{label:<{width}}{report.backend:<40}{metrics['AP']:>7.3f}{metrics['AP50']:>7.3f}"
              f"{metrics['AP75']:>7.3f}{metrics['AR']:>7.3f}{drop}{per_image:>10.1f}")
    print("AP drop: AP points the HRNet rows lose against its FP32 row. HRNet rows use the "
          "ground-truth boxes, the '+ detector' row the demo detector's, the bottom-up row "
          "whole frames. On ONNX Runtime (CPU) the FP16 and INT8 graphs are emulated, so their "
          "times say nothing about a GPU's.")
    for label, report in rows:
        if report.box_metrics is not None:
            box = report.box_metrics
            print(f"{label}: the detector's person boxes AP {box['AP']:.3f}, AP50 "
                  f"{box['AP50']:.3f}, AR100 {box['AR100']:.3f} (pycocotools bbox); ms/image "
                  "includes detecting")
    if detector is not None:
        stream_rows = _stream(out, model_for_images, detector)
        write_json_atomic(out / "stream.json", dict(stream_rows))
    if result.card.random_init:
        print(f"\nWARNING: {RANDOM_WEIGHTS_BANNER}: the AP above is that of an untrained model")
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s; outputs in "
          f"{_shown(out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out/demo",
                        help="output folder (default out/demo)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    from edgepose.errors import EdgeposeError

    try:
        return run(args.out.resolve())
    except EdgeposeError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
