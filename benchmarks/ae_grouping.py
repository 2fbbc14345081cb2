"""Time the vectorised AE decoder against the loop reference: print the table, write JSON.

    .venv/bin/python benchmarks/ae_grouping.py
    .venv/bin/python benchmarks/ae_grouping.py --people 30 --preset pose-ae-train --repeats 5

The frame is synthetic 128x128 heatmap + tag maps (the maps of a 512x512 input)
with 30 people (Gaussians of sigma 2 px, each person's tag painted around its
keypoints with a little noise, D = 2 tag dimensions as with the flip test,
keypoints missing at random, uniform heatmap noise). The loop reference is
tests/edgepose/decode/ae_reference.py, the same one the tests compare against; both
must return the same people before anything is timed.

Stages: "grouping" is what the issue's goal is about (match_by_tag: the
keypoint-by-keypoint Hungarian matching by tags, from the top-k candidates to
the people), timed against the reference grouping with one plain SciPy solve
per keypoint, the least work any loop version does; "grouping+ties" times the
same decoder call against the reference the results are checked with: the
sources' matching (people keyed by tag[0]) with SciPy's solver for the presets'
ties="official" (munkres, the sources' solver, picks other optima of some ties
in crowded frames), the reference's own tie-break for ties="most-joins". "finish" is adjust,
person scores and refine (refine's distance maps dominate it); "decode" is
everything from the maps (NMS, top-k, grouping, finish, input checks), against
the tie-breaking reference. The goal is judged on "grouping". Times are medians
of --repeats runs in one process; figures depend on the machine and its load
(the load average is recorded).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks.timing import (  # noqa: E402
    add_scene_arguments,
    parse_size,
    print_stages,
    time_stages,
    timing_fields,
    write_report,
)
from edgepose.decode.ae import (PRESETS, AeDecoder, AeParams, adjust, nms, refine,  # noqa: E402
                                top_k)
from edgepose.decode.ae_match import match_by_tag  # noqa: E402

DEFAULT_JSON = ROOT / "out" / "benchmarks" / "ae_grouping.json"
GOAL = 10.0


def load_reference():
    from tests.edgepose.decode import ae_reference  # ROOT is on sys.path

    return ae_reference


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scene_arguments(parser, size="128x128", size_meaning="map",
                        default_json=DEFAULT_JSON, root=ROOT)
    parser.add_argument("--preset", choices=PRESETS, default="higherhrnet",
                        help="the decoder's constants (default higherhrnet)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    height, width = parse_size(args.size)
    ref = load_reference()
    params = AeParams.preset(args.preset)
    scene = ref.make_scene(args.people, (height, width), args.seed,
                           heights=(0.2 * height, 0.6 * height), dims=2, missing=0.1, noise=0.02)
    decoder = AeDecoder(params)
    solver = "official-scipy" if params.ties == "official" else None
    heatmaps, tags = scene.heatmaps, scene.tags
    if params.heatmap_max is not None:
        heatmaps = np.minimum(heatmaps, np.float32(params.heatmap_max))

    # The candidates both groupings start from.
    xy, values, _ = top_k(nms(heatmaps, params.nms_kernel), params.top_k,
                          params.detection_threshold)
    joint = np.arange(heatmaps.shape[0])[:, None]
    candidate_tags = tags[joint, xy[..., 1], xy[..., 0]]
    ref_candidates = ref.candidates_reference(ref.nms_reference(heatmaps, params.nms_kernel),
                                              tags, params.top_k)
    people_xy, people_values, _ = match_by_tag(xy, values, candidate_tags, params)
    ref_people = ref.group_reference(ref_candidates, params, solver)
    if len(ref_people) != len(people_xy):
        print("ae_grouping: error: the groupings disagree", file=sys.stderr)
        return 1

    # Same answer first: the whole decode.
    result = decoder.decode(scene.heatmaps, scene.tags)
    expected = ref.decode_reference(scene.heatmaps, scene.tags, params, solver)
    same = (result[0].shape == expected[0].shape
            and np.array_equal(result[0], expected[0].astype(np.float32))
            and np.array_equal(result[1], expected[1].astype(np.float32))
            and np.allclose(result[2], expected[2], rtol=1e-6, atol=0))
    if not same:
        print("ae_grouping: error: the vectorised decoder and the reference disagree",
              file=sys.stderr)
        return 1

    def finish():
        moved = adjust(people_xy, people_values, heatmaps) if params.adjust else people_xy
        if params.refine:
            refine(moved, people_values, heatmaps, tags, params.refined_score)

    stages = {
        "grouping": (lambda: match_by_tag(xy, values, candidate_tags, params),
                     lambda: ref.group_reference(ref_candidates, params, solver="scipy")),
        "grouping+ties": (lambda: match_by_tag(xy, values, candidate_tags, params),
                          lambda: ref.group_reference(ref_candidates, params, solver)),
        "finish": (finish, lambda: ref.finish_reference(ref_people, heatmaps, tags, params)),
        "decode": (lambda: decoder.decode(scene.heatmaps, scene.tags),
                   lambda: ref.decode_reference(scene.heatmaps, scene.tags, params, solver)),
    }
    results = time_stages(stages, args.repeats)

    candidates = int((values > params.detection_threshold).sum())
    missing = int((people_values == 0).sum())
    title = (f"AE decoding, {args.people} synthetic people, {height}x{width} maps, D=2 tags, "
             f"preset {args.preset}: {candidates} candidates, {len(result[0])} people, "
             f"{missing} keypoints refined")
    ratio = print_stages(title, results, GOAL)
    report = {
        "benchmark": "ae_grouping",
        "maps": {"height": height, "width": width, "tag_dims": 2, "people": args.people,
                 "seed": args.seed},
        "preset": args.preset,
        "candidates": candidates,
        "people_found": int(len(result[0])),
        "keypoints_refined": missing,
        "same_result": True,
        **timing_fields(results, args.repeats, GOAL, ratio),
    }
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
