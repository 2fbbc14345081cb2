"""Time the whole AE parse, edgepose against the official algorithm: print the table, write JSON.

    .venv/bin/python benchmarks/ae_grouping.py
    .venv/bin/python benchmarks/ae_grouping.py --people 30 --preset pose-ae-train --repeats 5

The reference, the "official" column, is tests/edgepose/decode/ae_reference.py's
decode_reference: HigherHRNet's HeatmapParser.parse (lib/core/group.py) written
out one keypoint, person and pixel at a time, its grouping the sources'
match_by_tag with their solver, the `munkres` package (official_match_by_tag).
It is the reference the tests compare the decoder with.

The frame is synthetic 128x128 heatmap + tag maps (the maps of a 512x512 input)
with 30 people (Gaussians of sigma 2 px, each person's tag painted around its
keypoints with a little noise, D = 2 tag dimensions as with the flip test,
keypoints missing at random, uniform heatmap noise): crowded enough that the
Hungarian costs tie often.

Before anything is timed, the decoder's people must be exactly the reference's:
the same number in the same order, the same coordinates, keypoint scores and
person scores, bit for bit; else the benchmark stops. Workloads: "parse" (the
goal's: maps in, people out: NMS, top-k, grouping, adjust, person scores,
refine), and its two halves "grouping" (match_by_tag from the top-k candidates)
and "finish" (adjust, person scores and refine). Single-threaded (numpy's and
OpenCV's thread pools are held at one thread). Times are medians of --repeats
runs of the reference and 10x as many of edgepose, in one process; they depend
on the machine and its load (recorded in the JSON).

With --official-higherhrnet DIR (a checkout of HRNet/HigherHRNet-Human-Pose-Estimation),
HigherHRNet's own HeatmapParser.parse is timed too on the same maps
(benchmarks/official_code.py), once its people are edgepose's bit for bit: the
row "HeatmapParser's own code", on which the goal is judged as on "parse".
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy loads: the goal is single-threaded

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks.official_code import OfficialCodeError, higherhrnet_parse, revision  # noqa: E402
from benchmarks.timing import (  # noqa: E402
    add_scene_arguments,
    machine,
    median_seconds,
    parse_size,
    write_report,
)
from edgepose.decode.ae import (PRESETS, AeDecoder, AeParams, adjust, nms, refine,  # noqa: E402
                                top_k)
from edgepose.decode.ae_match import match_by_tag  # noqa: E402

DEFAULT_JSON = ROOT / "out" / "benchmarks" / "ae_grouping.json"
GOAL = 20.0
REFERENCE = ("tests/edgepose/decode/ae_reference.py decode_reference: HigherHRNet "
             "HeatmapParser.parse, grouping by the munkres package")
#: The issue's figures when it was filed (its machine; edgepose then solved with SciPy).
WHEN_FILED = {"official_ms": 1988.0, "edgepose_ms": 153.0, "ratio": 13.0,
              "outputs": "differed"}


OWN_CODE = "HeatmapParser's own code"
OFFICIAL = "HRNet/HigherHRNet-Human-Pose-Estimation lib/core/group.py HeatmapParser.parse"
# The rows the goal is judged on.
GOAL_ROWS = ("parse", OWN_CODE)


def load_reference():
    from tests.edgepose.decode import ae_reference  # ROOT is on sys.path

    return ae_reference


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scene_arguments(parser, size="128x128", size_meaning="map",
                        default_json=DEFAULT_JSON, root=ROOT)
    parser.add_argument("--preset", choices=PRESETS, default="higherhrnet",
                        help="the decoder's constants (default higherhrnet)")
    parser.add_argument("--official-higherhrnet", type=Path, metavar="DIR",
                        help="a checkout of HRNet/HigherHRNet-Human-Pose-Estimation: also time "
                             "its own HeatmapParser.parse (lib/core/group.py) on the same maps, "
                             "once its people are edgepose's bit for bit (higherhrnet preset)")
    return parser


def differences(result, expected) -> list[str]:
    """What differs between two (xy, scores, person_scores), compared bit for bit."""
    names = ("people", "coordinates", "keypoint scores", "person scores")
    if result[0].shape != expected[0].shape:
        return [f"{names[0]}: {len(result[0])} != {len(expected[0])}"]
    return [f"{name}: {int((np.asarray(ours) != np.float32(theirs)).sum())} values differ"
            for name, ours, theirs in zip(names[1:], result, expected)
            if not np.array_equal(ours, np.asarray(theirs).astype(np.float32))]


def as_people(ans: list, scores: list, joints: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HeatmapParser.parse's (ans, scores) as (xy, keypoint scores, person scores)."""
    people = np.asarray(ans[0], dtype=np.float64)
    if people.size == 0:
        return np.zeros((0, joints, 2)), np.zeros((0, joints)), np.zeros(0)
    return people[..., :2], people[..., 2], np.asarray(scores, dtype=np.float64)


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    filed = (f"{WHEN_FILED['official_ms']:,.0f} / {WHEN_FILED['edgepose_ms']:,.0f} ms, "
             f"{WHEN_FILED['ratio']:g}x, outputs {WHEN_FILED['outputs']}")
    header = ("workload", "official (reference, munkres) ms", "edgepose ms", "ratio",
              f"goal (>= {GOAL:g}x)", "when filed")
    lines = [header]
    for name, r in rows.items():
        judged = name in GOAL_ROWS
        goal = ("met" if r["ratio"] >= GOAL else "NOT met") if judged else "-"
        lines.append((name, f"{r['official_ms']:.1f}", f"{r['edgepose_ms']:.2f}",
                      f"{r['ratio']:.1f}x", goal, filed if judged else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(title)
    for line in lines:
        print(" | ".join(cell.ljust(width) if i in (0, 4, 5) else cell.rjust(width)
                         for i, (cell, width) in enumerate(zip(line, widths))).rstrip())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cv2.setNumThreads(1)
    height, width = parse_size(args.size)
    ref = load_reference()
    params = AeParams.preset(args.preset)
    if params.ties != "official":
        print(f"ae_grouping: error: preset {args.preset} does not take the official ties",
              file=sys.stderr)
        return 1
    scene = ref.make_scene(args.people, (height, width), args.seed,
                           heights=(0.2 * height, 0.6 * height), dims=2, missing=0.1, noise=0.02)
    decoder = AeDecoder(params)
    heatmaps, tags = scene.heatmaps, scene.tags
    if params.heatmap_max is not None:
        heatmaps = np.minimum(heatmaps, np.float32(params.heatmap_max))

    # Same answer first: the whole parse, bit for bit.
    result = decoder.decode(scene.heatmaps, scene.tags)
    expected = ref.decode_reference(scene.heatmaps, scene.tags, params)
    wrong = differences(result, expected)
    if wrong:
        print("ae_grouping: error: edgepose and the official reference disagree: "
              + "; ".join(wrong), file=sys.stderr)
        return 1

    own_code, commit = None, None
    if args.official_higherhrnet is not None:
        try:
            parse = higherhrnet_parse(args.official_higherhrnet, params, heatmaps.shape[0])
            commit = revision(args.official_higherhrnet)
        except OfficialCodeError as error:
            print(f"ae_grouping: error: {error}", file=sys.stderr)
            return 2
        wrong = differences(result, as_people(*parse(scene.heatmaps, scene.tags),
                                              heatmaps.shape[0]))
        if wrong:
            print("ae_grouping: error: edgepose and HigherHRNet's own HeatmapParser disagree: "
                  + "; ".join(wrong), file=sys.stderr)
            return 1
        own_code = lambda: parse(scene.heatmaps, scene.tags)  # noqa: E731

    # The halves, from the same candidates on both sides.
    xy, values, _ = top_k(nms(heatmaps, params.nms_kernel), params.top_k,
                          params.detection_threshold)
    joint = np.arange(heatmaps.shape[0])[:, None]
    candidate_tags = tags[joint, xy[..., 1], xy[..., 0]]
    ref_candidates = ref.candidates_reference(ref.nms_reference(heatmaps, params.nms_kernel),
                                              tags, params.top_k)
    people_xy, people_values, _ = match_by_tag(xy, values, candidate_tags, params)
    ref_people = ref.group_reference(ref_candidates, params)

    def finish():
        moved = adjust(people_xy, people_values, heatmaps) if params.adjust else people_xy
        person_scores = people_values.astype(np.float32).mean(axis=1)
        if params.refine:
            refine(moved, people_values, heatmaps, tags, params.refined_score)
        return person_scores

    workloads = {
        "parse": (lambda: decoder.decode(scene.heatmaps, scene.tags),
                  lambda: ref.decode_reference(scene.heatmaps, scene.tags, params)),
        "grouping": (lambda: match_by_tag(xy, values, candidate_tags, params),
                     lambda: ref.group_reference(ref_candidates, params)),
        "finish": (finish, lambda: ref.finish_reference(ref_people, heatmaps, tags, params)),
    }
    if own_code is not None:
        workloads[OWN_CODE] = (workloads["parse"][0], own_code)
    rows = {}
    for name, (edgepose, official) in workloads.items():
        edgepose()  # warm caches and imports
        edgepose_s = median_seconds(edgepose, 10 * args.repeats)
        official_s = median_seconds(official, args.repeats)
        rows[name] = {"official_ms": 1e3 * official_s, "edgepose_ms": 1e3 * edgepose_s,
                      "ratio": official_s / edgepose_s}

    candidates = int((values > params.detection_threshold).sum())
    refined = int((people_values == 0).sum())
    title = (f"AE parse, {args.people} synthetic people, {height}x{width} maps, D=2 tags, "
             f"preset {args.preset}: {candidates} candidates, {len(result[0])} people, "
             f"{refined} keypoints refined; output identical to the official reference "
             f"(munkres)")
    if own_code is not None:
        title += (f"\n{OWN_CODE}: {OFFICIAL}, from {args.official_higherhrnet} (commit "
                  f"{commit}); people identical")
    print_table(title, rows)
    ratio = min(rows[name]["ratio"] for name in GOAL_ROWS if name in rows)
    report = {
        "benchmark": "ae_grouping",
        "reference": REFERENCE,
        "maps": {"height": height, "width": width, "tag_dims": 2, "people": args.people,
                 "seed": args.seed},
        "preset": args.preset,
        "candidates": candidates,
        "people_found": int(len(result[0])),
        "keypoints_refined": refined,
        "same_result": True,
        "threads": 1,
        "repeats": {"edgepose": 10 * args.repeats, "official": args.repeats},
        "workloads": rows,
        "goal": {"workloads": [name for name in GOAL_ROWS if name in rows], "ratio": GOAL,
                 "met": ratio >= GOAL},
        "official_code": None if own_code is None else {
            "code": OFFICIAL, "checkout": str(args.official_higherhrnet),
            "commit": commit},
        "when_filed": WHEN_FILED,
        "machine": machine(),
    }
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
