"""NVIDIA ModelOpt's ONNX PTQ against edgepose's own INT8 Q/DQ graph, side by side.

    # a separate venv: ModelOpt pulls in torch and onnxruntime-gpu (which runs on the CPU too)
    python3 -m venv /tmp/movenv
    /tmp/movenv/bin/pip install "nvidia-modelopt[onnx]" opencv-python-headless tqdm pycocotools scipy
    # after `make demo` (its FP32 HRNet and its 300-image validation split):
    /tmp/movenv/bin/python benchmarks/modelopt_int8.py
    /tmp/movenv/bin/python benchmarks/modelopt_int8.py --model m.onnx --images val/images \
        --annotations val/person_keypoints.json --samples 256 --methods entropy max

Without ModelOpt importable it says why and exits 0. edgepose itself is read from this
checkout (no install needed). Steps:

1. The calibration crops: calib.data.load_calibration_data with edgepose calibrate's
   defaults (--samples, --seed 0, a fifth of the images held out), saved as
   <work>/crops.npy, the network input (N, 3, H, W) float32 normalised as the card says.
   ModelOpt calibrates on exactly these crops.
2. edgepose's INT8 graph: calib.calibrate.calibrate (entropy, 2048-bin histograms,
   FP16 fallback), its ranges cached in <work>/edgepose_ranges.json.
3. ModelOpt: modelopt.onnx.quantization.quantize(quantize_mode="int8",
   calibration_method=entropy|max, calibration_eps=["cpu"], defaults otherwise: FP16
   for the unquantised rest, as edgepose's default), then the FP32 graph's card
   (precision int8) embedded, since ModelOpt drops the metadata.
4. A placement control: edgepose's ranges with the Conv nodes ModelOpt leaves
   unquantised (its TensorRT channel rules) left unquantised too.
5. Every graph scored on the whole split (ground-truth boxes, COCO AP by
   edgepose.evaluate, ONNX Runtime CPU with Q/DQ run as written) twice: as written
   (what `edgepose eval` runs) and with the FP16 parts emulated (calib.report's
   executor, what calibrate's report runs); keypoint displacement against FP32 in image
   pixels (p50/p90/p99) over every keypoint of every person crop of the split; Q/DQ
   count and placement.

The "as written" column depends on the ONNX Runtime that runs it: ModelOpt 0.47 pins
onnxruntime-gpu ~=1.24.2, and in that venv (1.24.4) the same edgepose INT8 file scored
AP 0.632 as written against 0.813 with edgepose's own venv (onnxruntime 1.32, `edgepose
eval`), while the FP16-emulated column agreed with 1.32's as-written figures within 0.2
points. Read the emulated column here, and score the written graphs (all kept in --work)
with `.venv/bin/edgepose eval --model GRAPH --annotations ... --images ...`.

Graphs and crops stay in --work (default out/benchmarks/modelopt_int8/); --reuse keeps
graphs already there (their calibration times come from the sidecar JSON).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

from benchmarks.timing import machine, write_report  # noqa: E402

DEMO = ROOT / "out" / "demo"
DEFAULT_WORK = ROOT / "out" / "benchmarks" / "modelopt_int8"
DEFAULT_JSON = ROOT / "out" / "benchmarks" / "modelopt_int8.json"
QDQ = ("QuantizeLinear", "DequantizeLinear")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEMO / "hrnet_w10_128x96.onnx",
                        help="FP32 edgepose ONNX (default out/demo/hrnet_w10_128x96.onnx)")
    parser.add_argument("--images", type=Path, default=DEMO / "val" / "images",
                        help="image folder of the split (default out/demo/val/images)")
    parser.add_argument("--annotations", type=Path,
                        default=DEMO / "val" / "person_keypoints.json",
                        help="COCO keypoints file of the split; calibration crops and AP")
    parser.add_argument("--samples", type=int, default=256,
                        help="calibration crops (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="calibration sampling seed (0)")
    parser.add_argument("--methods", nargs="+", default=["entropy", "max"],
                        choices=["entropy", "max"], help="ModelOpt calibration methods")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the placement control (edgepose ranges, ModelOpt's "
                             "unquantised Convs)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="folder for the crops and graphs (default "
                             f"{DEFAULT_WORK.relative_to(ROOT)})")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the graphs already in --work instead of remaking them")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"report JSON (default {DEFAULT_JSON.relative_to(ROOT)})")
    return parser


# --- Q/DQ placement --------------------------------------------------------------------------

def placement(model: onnx.ModelProto) -> dict[str, Any]:
    """Q/DQ count and where they sit: per op type, how many nodes read a dequantised
    activation / weight; weight scales per channel or not; residual Adds with 0/1/2
    quantised inputs; whether the stem (reads the graph input) and the head (writes
    the graph output) are quantised."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    counts = collections.Counter(node.op_type for node in graph.node)

    def dq_kind(tensor: str) -> str | None:
        """'weight' / 'activation' for a DequantizeLinear output, None otherwise."""
        node = producer.get(tensor)
        if node is None or node.op_type != "DequantizeLinear":
            return None
        source = node.input[0]
        if source in initializers:
            return "weight"
        before = producer.get(source)
        if before is not None and before.op_type == "QuantizeLinear" \
                and before.input[0] in initializers:
            return "weight"
        return "activation"

    per_op: dict[str, dict[str, int]] = {}
    adds = collections.Counter()
    weight_scales = collections.Counter()
    for node in graph.node:
        if node.op_type in QDQ or node.op_type == "Cast":
            continue
        entry = per_op.setdefault(node.op_type, {"nodes": 0, "activation_in_int8": 0,
                                                 "weight_in_int8": 0})
        entry["nodes"] += 1
        kinds = [dq_kind(name) for name in node.input]
        if "activation" in kinds:
            entry["activation_in_int8"] += 1
        if "weight" in kinds:
            entry["weight_in_int8"] += 1
        if node.op_type == "Add":
            adds[f"{kinds.count('activation')} of 2 inputs quantised"] += 1
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and dq_kind(node.output[0]) == "weight":
            scale = initializers.get(node.input[1])
            size = int(np.prod(scale.dims)) if scale is not None else 0
            weight_scales["per-channel" if size > 1 else "per-tensor"] += 1

    graph_inputs = {i.name for i in graph.input}
    stem = [n for n in graph.node if n.op_type == "Conv"
            and any(_through_qdq(producer, name) in graph_inputs for name in n.input)]
    heads = []
    for output in graph.output:
        node = producer.get(output.name)
        while node is not None and node.op_type == "Cast":
            node = producer.get(node.input[0])
        if node is not None:
            heads.append(node)

    def quantised(node: onnx.NodeProto) -> bool:
        return any(dq_kind(name) == "activation" for name in node.input)

    return {"quantize_linear": counts["QuantizeLinear"],
            "dequantize_linear": counts["DequantizeLinear"],
            "per_op": per_op, "weight_scales": dict(weight_scales),
            "residual_add": dict(adds),
            "stem_quantised": all(quantised(n) for n in stem) if stem else None,
            "head": {n.name: {"op": n.op_type, "quantised": quantised(n)} for n in heads}}


def _through_qdq(producer: dict[str, onnx.NodeProto], tensor: str) -> str:
    """The tensor a chain of Q/DQ (and Cast) nodes starts from."""
    node = producer.get(tensor)
    while node is not None and (node.op_type in QDQ or node.op_type == "Cast"):
        tensor = node.input[0]
        node = producer.get(tensor)
    return tensor


def unquantised_convs(model: onnx.ModelProto) -> list[str]:
    """Conv nodes with no INT8 activation input (names as in the FP32 graph)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    names = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        source = producer.get(node.input[0])
        if source is None or source.op_type != "DequantizeLinear":
            names.append(node.name)
    return names


def describe(place: dict[str, Any]) -> str:
    """One line: what gets INT8 inputs."""
    parts = []
    for op, entry in place["per_op"].items():
        if entry["activation_in_int8"] or entry["weight_in_int8"]:
            parts.append(f"{op} {entry['activation_in_int8']}/{entry['nodes']}")
    adds = ", ".join(f"{v} {k}" for k, v in sorted(place["residual_add"].items()))
    heads = ", ".join(f"{name} {'int8' if h['quantised'] else 'not int8'}"
                      for name, h in place["head"].items())
    scales = ", ".join(f"{v} {k}" for k, v in place["weight_scales"].items())
    return (f"int8 input: {', '.join(parts)}; Add: {adds}; weights: {scales}; "
            f"stem {'int8' if place['stem_quantised'] else 'not int8'}; head {heads}")


# --- graphs ----------------------------------------------------------------------------------

def _card(model: onnx.ModelProto, path: Path):
    from calib.calibrate import read_card

    return read_card(model, path)


def calibration_crops(model_path: Path, images: Path, annotations: Path, samples: int,
                      seed: int, out: Path) -> np.ndarray:
    """The crops edgepose calibrate draws (same function, arguments and defaults)."""
    from calib.data import load_calibration_data

    model = onnx.load(str(model_path))
    data = load_calibration_data(images, _card(model, model_path), annotations=annotations,
                                 samples=samples, seed=seed, progress=False)
    crops = np.ascontiguousarray(data.calibration.inputs, np.float32)
    np.save(out, crops)
    return crops


def edgepose_int8(model_path: Path, args: argparse.Namespace, out: Path,
                  cache: Path) -> float:
    """edgepose calibrate --precision int8 --method entropy; returns its calibration time
    (data, ranges and graph, as its card records it)."""
    from calib.calibrate import calibrate

    result = calibrate(model_path, out, data=args.images, annotations=args.annotations,
                       precision="int8", method="entropy", samples=args.samples,
                       seed=args.seed, cache=cache, progress=False)
    return result.calibration_time_s


def modelopt_int8(model_path: Path, crops: Path, method: str, out: Path) -> float:
    """ModelOpt ONNX PTQ on the CPU; the FP32 card (precision int8) embedded afterwards.
    Returns ModelOpt's wall time."""
    from modelopt.onnx.quantization import quantize

    from export.onnx_files.card import embed_card

    # ModelOpt writes intermediate files beside its input: give it a private copy.
    with tempfile.TemporaryDirectory(prefix="modelopt_") as scratch:
        source = Path(scratch) / model_path.name
        shutil.copyfile(model_path, source)
        start = time.perf_counter()
        quantize(onnx_path=str(source), quantize_mode="int8", calibration_method=method,
                 calibration_data=np.load(crops), calibration_eps=["cpu"],
                 output_path=str(Path(scratch) / "quantized.onnx"), log_level="WARNING")
        seconds = time.perf_counter() - start
        quantized = onnx.load(str(Path(scratch) / "quantized.onnx"))
    fp32 = onnx.load(str(model_path))
    card = _card(fp32, model_path)
    embed_card(quantized, card.with_updates(precision="int8", extra={
        **card.extra, "calibration": {"precision": "int8", "tool": "nvidia-modelopt",
                                      "method": method, "calibration_time_s": seconds}}))
    onnx.save(quantized, str(out))
    return seconds


def control_int8(model_path: Path, cache: Path, exclude: list[str], out: Path) -> float:
    """edgepose's entropy ranges (from its cache) with `exclude` left unquantised."""
    from calib.int8 import CalibrationCache, Int8GraphWriter
    from calib.ranges import DEFAULT_PERCENTILE
    from export.onnx_files.card import embed_card

    start = time.perf_counter()
    fp32 = onnx.load(str(model_path))
    amax = CalibrationCache.load(cache).ranges("entropy", DEFAULT_PERCENTILE)
    graph = Int8GraphWriter(fp32, amax, fallback="fp16").write(exclude=exclude)
    card = _card(fp32, model_path)
    embed_card(graph, card.with_updates(precision="int8"))
    onnx.save(graph, str(out))
    return time.perf_counter() - start


# --- scoring ---------------------------------------------------------------------------------

class Scorer:
    """AP on the split and keypoint displacement against FP32 over all its person crops."""

    def __init__(self, fp32_path: Path, images: Path, annotations: Path, scratch: Path) -> None:
        from calib.data import load_calibration_data
        from edgepose.pipeline import top_down_decoder

        self.images, self.annotations, self.scratch = images, annotations, scratch
        model = onnx.load(str(fp32_path))
        self.card = _card(model, fp32_path)
        everything = load_calibration_data(images, self.card, annotations=annotations,
                                           samples=10 ** 7, holdout=0.0, progress=False)
        self.crops = everything.calibration
        self.decoder = top_down_decoder(self.card)
        self.reference = self._keypoints(model)

    def _keypoints(self, model: onnx.ModelProto) -> np.ndarray:
        from calib.ranges import run_batched, session

        outputs = run_batched(session(model), self.card.input.name, self.crops.inputs)
        heatmaps = np.asarray(outputs[self.card.output("heatmaps").name], np.float32)
        xy, _ = self.decoder.decode(heatmaps, self.crops.centers, self.crops.scales)
        return xy

    def score(self, path: Path, emulate: bool) -> dict[str, Any]:
        from calib.report import PERCENTILES, executable
        from edgepose.evaluate import evaluate_model

        model = onnx.load(str(path))
        executed = "onnxruntime CPU, as written"
        if emulate:
            model, executed = executable(model)
        run_path = self.scratch / f"{path.stem}.{'emulated' if emulate else 'written'}.onnx"
        onnx.save(model, str(run_path))
        try:
            report = evaluate_model(run_path, self.annotations, self.images, progress=False)
        finally:
            run_path.unlink(missing_ok=True)
        moved = np.linalg.norm(self._keypoints(model) - self.reference, axis=2).ravel()
        return {"ap": float(report.metrics["AP"]), "ap50": float(report.metrics["AP50"]),
                "ap75": float(report.metrics["AP75"]), "ar": float(report.metrics["AR"]),
                "displacement_px": {f"p{p}": float(np.percentile(moved, p))
                                    for p in PERCENTILES},
                "ms_per_image": 1000 * report.wall_time_s / max(report.images, 1),
                "executed": executed}


# --- main ------------------------------------------------------------------------------------

def _modelopt_version() -> str | None:
    try:
        import modelopt
    except ImportError:
        return None
    return getattr(modelopt, "__version__", "?")


def _timings(path: Path) -> dict[str, float]:
    return json.loads(path.read_text()) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        import modelopt.onnx.quantization  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken dependency under it
        print(f"modelopt_int8: skipped: nvidia-modelopt[onnx] is not importable here "
              f"({type(exc).__name__}: {exc}); install it in a separate venv, see the "
              "docstring")
        return 0
    for what, path in (("--model", args.model), ("--images", args.images),
                       ("--annotations", args.annotations)):
        if not path.exists():
            print(f"modelopt_int8: error: {what} {path} does not exist; run `make demo` "
                  "first or name it", file=sys.stderr)
            return 2
    import onnxruntime

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    timings_path = work / "calibration_times.json"
    times = _timings(timings_path) if args.reuse else {}

    crops_path = work / "crops.npy"
    crops = (np.load(crops_path) if args.reuse and crops_path.is_file() else
             calibration_crops(args.model, args.images, args.annotations, args.samples,
                               args.seed, crops_path))
    print(f"calibration crops: {crops.shape} {crops.dtype} -> {crops_path}")

    graphs: dict[str, Path] = {"fp32": args.model}
    cache = work / "edgepose_ranges.json"
    label = "edgepose int8 entropy"
    graphs[label] = work / "hrnet.edgepose_entropy.int8.onnx"
    if not (args.reuse and graphs[label].is_file() and cache.is_file()):
        cache.unlink(missing_ok=True)
        times[label] = edgepose_int8(args.model, args, graphs[label], cache)
        print(f"{label}: {times[label]:.1f} s")
    for method in args.methods:
        label = f"modelopt int8 {method}"
        graphs[label] = work / f"hrnet.modelopt_{method}.int8.onnx"
        if not (args.reuse and graphs[label].is_file()):
            times[label] = modelopt_int8(args.model, crops_path, method, graphs[label])
            print(f"{label}: {times[label]:.1f} s")
    if not args.no_control and args.methods:
        first = f"modelopt int8 {args.methods[0]}"
        excluded = unquantised_convs(onnx.load(str(graphs[first])))
        label = f"edgepose ranges, {first}'s unquantised Convs"
        graphs[label] = work / "hrnet.edgepose_control.int8.onnx"
        if not (args.reuse and graphs[label].is_file()):
            times[label] = control_int8(args.model, cache, excluded, graphs[label])
    timings_path.write_text(json.dumps(times, indent=1))

    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="modelopt_int8_") as scratch:
        scorer = Scorer(args.model, args.images, args.annotations, Path(scratch))
        for label, path in graphs.items():
            model = onnx.load(str(path))
            row: dict[str, Any] = {"path": str(path), "calibration_time_s": times.get(label)}
            row["placement"] = placement(model)
            row["as_written"] = scorer.score(path, emulate=False)
            row["fp16_emulated"] = scorer.score(path, emulate=True)
            rows[label] = row
            print(f"scored {label}", flush=True)

    fp32 = rows["fp32"]
    for row in rows.values():
        for mode in ("as_written", "fp16_emulated"):
            row[mode]["ap_drop_points"] = 100 * (fp32["as_written"]["ap"] - row[mode]["ap"])
    width = max(len(label) for label in rows) + 2
    print(f"\n{len(scorer.crops)} person crops; {args.annotations}")
    for mode, title in (("as_written", "as written (edgepose eval)"),
                        ("fp16_emulated", "FP16 parts emulated (calibrate's report)")):
        print(f"\n{title}")
        print(f"{'graph':<{width}}{'AP':>7}{'AP drop':>9}{'p50 px':>8}{'p90 px':>8}"
              f"{'p99 px':>8}{'Q':>6}{'DQ':>6}{'calib s':>9}")
        for label, row in rows.items():
            r, p = row[mode], row["placement"]
            t = row["calibration_time_s"]
            print(f"{label:<{width}}{r['ap']:>7.3f}{r['ap_drop_points']:>9.2f}"
                  f"{r['displacement_px']['p50']:>8.2f}{r['displacement_px']['p90']:>8.2f}"
                  f"{r['displacement_px']['p99']:>8.2f}{p['quantize_linear']:>6}"
                  f"{p['dequantize_linear']:>6}{'-' if t is None else f'{t:.1f}':>9}")
    print(f"\nas written: onnxruntime {onnxruntime.__version__}; ModelOpt's pinned 1.24 "
          "scored these FP16 + Q/DQ graphs far below 1.32 (see the docstring): score them "
          "with edgepose's own venv (`edgepose eval`)")
    print("\nplacement")
    for label, row in rows.items():
        if label != "fp32":
            print(f"  {label}: {describe(row['placement'])}")
    write_report(args.json, {
        "model": str(args.model), "images": str(args.images),
        "annotations": str(args.annotations), "samples": args.samples, "seed": args.seed,
        "crops": str(crops_path), "person_crops_scored": len(scorer.crops),
        "versions": {"modelopt": _modelopt_version(), "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "rows": rows, "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
