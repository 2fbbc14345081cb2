"""Time the vectorised PAF decoder against the loop reference: print the table, write JSON.

    .venv/bin/python benchmarks/paf_grouping.py
    .venv/bin/python benchmarks/paf_grouping.py --people 30 --preset cmu --repeats 5

The frame is a synthetic 368x656 input with 30 people (OpenPose-style targets:
Gaussians of sigma 7 px, PAFs 8 px wide, parts missing at random, people cut by
the borders, uniform noise). The decoder runs where BottomUpPipeline runs it: on
maps at image resolution (here 368x656, the network's 46x82 maps upsampled x8),
with the image height as the distance prior's H. The loop reference is
tests/edgepose/decode/paf_reference.py, the same one the tests compare against; both
must return the same people before anything is timed.

Stages: "grouping" is what the issue's goal is about (limb scoring, greedy
matching and assembly, from the peaks to the people); "peaks" is the smoothing
and NMS, whose cost is mostly the Gaussian filter in both versions; "decode" is
both plus input validation. Times are medians of --repeats runs in one process;
figures depend on the machine and its load (the load average is recorded).
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
from edgepose.decode.paf import PafDecoder, PafParams, find_peaks  # noqa: E402
from edgepose.keypoints import COCO18  # noqa: E402

DEFAULT_JSON = ROOT / "out" / "benchmarks" / "paf_grouping.json"
GOAL = 20.0


def load_reference():
    from tests.edgepose.decode import paf_reference  # ROOT is on sys.path

    return paf_reference


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scene_arguments(parser, size="368x656", size_meaning="frame",
                        default_json=DEFAULT_JSON, root=ROOT)
    parser.add_argument("--preset", choices=("python", "cmu"), default="python",
                        help="the decoder's constants (default python)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    height, width = parse_size(args.size)
    ref = load_reference()
    params = PafParams.preset(args.preset)
    scene = ref.make_scene(COCO18, args.people, (height, width), args.seed,
                           heights=(0.27 * height, 0.6 * height), sigma=7.0, paf_width=8.0,
                           missing=0.1, margin=0.2, noise=0.02)
    pafs, heatmaps = scene.pafs, scene.heatmaps
    decoder = PafDecoder(COCO18, params)
    parts = heatmaps[:COCO18.num_keypoints]

    # Same answer first: peaks and people.
    peaks, rows = decoder.group(pafs, heatmaps, height)
    ref_peaks, ref_rows = ref.decode_reference(pafs, heatmaps, COCO18, height, params)
    flat = [p for part in ref_peaks for p in part]
    same = (len(flat) == len(peaks) and rows.shape == ref_rows.shape
            and np.array_equal(peaks.xy, np.array([p[:2] for p in flat]).reshape(-1, 2))
            and np.array_equal(rows[:, :-1].round(9), ref_rows[:, :-1].round(9))
            and np.array_equal(rows[:, -1], ref_rows[:, -1]))
    if not same:
        print("paf_grouping: error: the vectorised decoder and the reference disagree",
              file=sys.stderr)
        return 1

    stages = {
        "grouping": (lambda: decoder.connect(pafs, peaks, height),
                     lambda: ref.group_reference(ref_peaks, pafs, COCO18, height, params)),
        "peaks": (lambda: find_peaks(parts, params),
                  lambda: ref.peaks_reference(parts, params)),
        "decode": (lambda: decoder.group(pafs, heatmaps, height),
                   lambda: ref.decode_reference(pafs, heatmaps, COCO18, height, params)),
    }
    results = time_stages(stages, args.repeats)

    title = (f"PAF decoding, {args.people} synthetic people, {height}x{width} frame, maps at "
             f"image resolution ({height}x{width}), preset {args.preset}: {len(peaks)} peaks, "
             f"{len(rows)} people")
    ratio = print_stages(title, results, GOAL)
    report = {
        "benchmark": "paf_grouping",
        "frame": {"height": height, "width": width, "people": args.people, "seed": args.seed,
                  "map_resolution": "image (network maps upsampled x8)"},
        "preset": args.preset,
        "peaks": len(peaks),
        "people_found": int(len(rows)),
        "same_result": True,
        **timing_fields(results, args.repeats, GOAL, ratio, scipy_reference=ref.HAVE_SCIPY),
    }
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
