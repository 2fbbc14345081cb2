"""Time edgepose's PAF decoder against the official algorithm: print the table, write JSON.

    .venv/bin/python benchmarks/paf_grouping.py
    .venv/bin/python benchmarks/paf_grouping.py --people 30 --preset cmu --repeats 5

The frame is a synthetic 368x656 input with 30 people (OpenPose-style targets:
Gaussians of sigma 7 px, PAFs 8 px wide, parts missing at random, people cut by
the borders, uniform noise). The decoder runs where BottomUpPipeline runs it: on
maps at image resolution (here 368x656, the network's 46x82 maps upsampled x8),
with the image height as the distance prior's H.

The official side is REFERENCE: tests/edgepose/decode/paf_reference.py, the
official port's post-network step (Hzzone/pytorch-openpose src/body.py) written
out with SciPy's gaussian_filter: its peaks as the port finds them (peaks_as_the_port:
each whole smoothed map against four shifted copies), then one pair and one person
at a time; the tests pin it to the official code's own recorded outputs
(test_paf_official.py). Its pixel-by-pixel peak loop (peaks_reference, which the
tests use) is left out: it is slower than the port's numpy, and would inflate the
ratios (by 1.45x from network maps). Both sides must return the same peaks, scores
and people before anything is timed.

Workloads: "whole step" is what issue 25's goal is about (input validation,
smoothing and peak NMS, limb scoring, matching and assembly); "peaks" is the
smoothing and NMS alone; "grouping" is from the peaks to the people. "from
network maps" is the step as the pipeline runs it and as the port's
Body.__call__ does: from the network's 23x41 maps of the recorded "30 people"
case (paf_reference.NETWORK_CASES, whose official outputs test_paf_official.py
pins), the port resizing all 57 channels at once channel-last, edgepose through
ImageMaps: a PAF channel resized when a limb reads it, a heatmap resized for its
peaks' scores and smoothed from the network map by two small products
(paf_smoothing; its peaks are still the port's). The same people; scores a
float32 rounding apart, as that test allows. OpenCV and the BLAS run on one thread. Times are
medians of --repeats runs of the reference and 10x as many of edgepose, each side's
run back to back, in one process; figures depend on the machine and its load (the
load average is recorded).

With --official-openpose DIR (a checkout of Hzzone/pytorch-openpose), the port's
own Body.__call__ is timed too, its network replaced by the recorded maps of
"from network maps" (benchmarks/official_code.py): the row "port's own code" is
that call against edgepose's, after checking that both find the same peaks and
people. It is the official post-network step itself, resizes included, so the
goal is judged on it as on "whole step".

Below the table, where the whole step's time goes, against the goal's budget (the
reference's whole step / 30): the whole step and its pieces timed in the same
rounds, each once a round: the smoothing of the part maps at image size as
find_peaks runs it, the rest of the peak search, the one read of every PAF value
that validation makes, the grouping, and what the step takes beyond their sum.
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

from benchmarks.official_code import OfficialCodeError, openpose_post_network, revision  # noqa: E402,E501
from benchmarks.timing import (  # noqa: E402
    add_scene_arguments,
    parse_size,
    time_in_rounds,
    time_stages,
    timing_fields,
    write_report,
)
from edgepose.decode.maps import all_finite  # noqa: E402
from edgepose.decode.paf import ImageMaps, PafDecoder, PafParams, find_peaks  # noqa: E402
from edgepose.decode.paf_peaks import Scratch, separable_filter, smoothing_kernels  # noqa: E402
from edgepose.keypoints import COCO18  # noqa: E402

DEFAULT_JSON = ROOT / "out" / "benchmarks" / "paf_grouping.json"
REFERENCE = ("tests/edgepose/decode/paf_reference.py (official port's algorithm, its peaks "
             "found as the port finds them)")
GOAL = 30.0
# The rows the goal is judged on: the official step as the reference writes it out,
# and the port's own code when a checkout is given.
GOAL_ROWS = ("whole step", "port's own code")
OFFICIAL = "Hzzone/pytorch-openpose src/body.py Body.__call__ (network replaced by the maps)"
# Issue 25's figures when filed (30 people, 368x656, another run of the same step):
# (official ms, edgepose ms, ratio); for peaks the issue gives edgepose's time and
# its ratio only.
FILED = {"whole step": (3077.0, 204.0, 15.0), "peaks": (None, 149.0, 3.1)}


def load_reference():
    from tests.edgepose.decode import paf_reference  # ROOT is on sys.path

    return paf_reference


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scene_arguments(parser, size="368x656", size_meaning="frame",
                        default_json=DEFAULT_JSON, root=ROOT)
    parser.add_argument("--preset", choices=("python", "cmu"), default="python",
                        help="the decoder's constants (default python)")
    parser.add_argument("--official-openpose", type=Path, metavar="DIR",
                        help="a checkout of Hzzone/pytorch-openpose: also time the port's own "
                             "Body.__call__ after its network (replaced by the recorded maps of "
                             "'from network maps'), once it finds edgepose's peaks and people")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.official_openpose is not None and args.preset != "python":
        print("paf_grouping: error: the port's own code runs the python preset's constants; "
              "drop --preset or --official-openpose", file=sys.stderr)
        return 2
    height, width = parse_size(args.size)
    ref = load_reference()
    params = PafParams.preset(args.preset)
    scene = ref.make_scene(COCO18, args.people, (height, width), args.seed,
                           heights=(0.27 * height, 0.6 * height), sigma=7.0, paf_width=8.0,
                           missing=0.1, margin=0.2, noise=0.02)
    pafs, heatmaps = scene.pafs, scene.heatmaps
    decoder = PafDecoder(COCO18, params)
    parts = heatmaps[:COCO18.num_keypoints]

    cv2.setNumThreads(1)  # the goal is for one thread

    # Same answer first: peaks, their scores, and people.
    peaks, rows = decoder.group(pafs, heatmaps, height)
    ref_peaks, ref_rows = ref.decode_reference(pafs, heatmaps, COCO18, height, params,
                                               ref.peaks_as_the_port)
    same = same_people(peaks, rows, ref_peaks, ref_rows)
    network = network_workload(ref, decoder, params)
    if not same or network is None:
        print(f"paf_grouping: error: edgepose and {REFERENCE} disagree", file=sys.stderr)
        return 1
    port, commit = None, None
    if args.official_openpose is not None:
        try:
            port = port_workload(ref, network[0], args.official_openpose)
            commit = revision(args.official_openpose)
        except OfficialCodeError as error:
            print(f"paf_grouping: error: {error}", file=sys.stderr)
            return 2
        if port is None:
            print("paf_grouping: error: edgepose and the port's own code disagree",
                  file=sys.stderr)
            return 1

    stages = {
        "whole step": (lambda: decoder.decode(pafs, heatmaps, height),
                       lambda: ref.decode_reference(pafs, heatmaps, COCO18, height, params,
                                                    ref.peaks_as_the_port)),
        "peaks": (lambda: find_peaks(parts, params),
                  lambda: ref.peaks_as_the_port(parts, params)),
        "grouping": (lambda: decoder.connect(pafs, peaks, height),
                     lambda: ref.group_reference(ref_peaks, pafs, COCO18, height, params)),
        "from network maps": network,
    }
    if port is not None:
        stages["port's own code"] = port
    results = time_stages(stages, args.repeats)
    pieces = whole_step_pieces(stages, parts, pafs, params, args.repeats)
    budget = results["whole step"]["reference_ms"] / GOAL

    print(f"PAF post-network step, {args.people} synthetic people, {height}x{width} frame, "
          f"maps at image resolution, preset {args.preset}: {len(peaks)} peaks, "
          f"{len(rows)} people; same output as the reference: yes")
    print(f"reference: {REFERENCE}")
    if port is not None:
        print(f"port's own code: {OFFICIAL}, from {args.official_openpose} "
              f"(commit {commit})")
    print_table(results)
    spent = print_budget(pieces, budget)
    ratio = min(results[name]["ratio"] for name in GOAL_ROWS if name in results)
    report = {
        "benchmark": "paf_grouping",
        "reference": REFERENCE,
        "frame": {"height": height, "width": width, "people": args.people, "seed": args.seed,
                  "map_resolution": "image (network maps upsampled x8)"},
        "preset": args.preset,
        "peaks": len(peaks),
        "people_found": int(len(rows)),
        "same_result": True,
        "filed": {name: {"official_ms": o, "edgepose_ms": e, "ratio": r}
                  for name, (o, e, r) in FILED.items()},
        "goal_rows": [name for name in GOAL_ROWS if name in results],
        "whole_step_budget_ms": budget,
        "whole_step_spent_ms": spent,
        "official_code": None if port is None else {
            "code": OFFICIAL, "checkout": str(args.official_openpose),
            "commit": commit},
        **timing_fields(results, args.repeats, GOAL, ratio, scipy_reference=ref.HAVE_SCIPY,
                        opencv_threads=cv2.getNumThreads()),
    }
    write_report(args.json, report)
    return 0


def whole_step_pieces(stages: dict, heatmaps: np.ndarray, pafs: np.ndarray,
                      params: PafParams, repeats: int) -> dict[str, float]:
    """Median ms of edgepose's whole step and of its pieces, timed in the same rounds
    (each round calls each once) so that the machine's slow spells fall on all of
    them alike: the part maps smoothed at image size as find_peaks smooths them
    (float32, both axes), the peak search, the read of every PAF value that the
    decoder's validation makes, and the grouping."""
    kernel = smoothing_kernels(float(params.sigma), float(params.truncate))[0]
    maps = [np.ascontiguousarray(heatmap, dtype=np.float32) for heatmap in heatmaps]
    scratch = Scratch()

    def smoothing():
        for heatmap in maps:
            separable_filter(heatmap, kernel, scratch)

    calls = {"whole step": stages["whole step"][0], "smoothing": smoothing,
             "peaks": stages["peaks"][0], "validation": lambda: all_finite(pafs),
             "grouping": stages["grouping"][0]}
    return time_in_rounds(calls, 10 * repeats)


def print_budget(pieces: dict[str, float], budget: float) -> dict[str, float]:
    """Print where edgepose's whole step spends its time, against the goal's budget;
    returns the ms by piece."""
    whole = pieces["whole step"]
    spent = {
        "smoothing the part maps at image size": pieces["smoothing"],
        "the rest of the peak search": pieces["peaks"] - pieces["smoothing"],
        "reading every PAF value (validation)": pieces["validation"],
        "grouping": pieces["grouping"],
    }
    spent["the rest of the whole step"] = whole - sum(spent.values())
    print(f"\nedgepose's whole step, {whole:.2f} ms in these rounds (the goal's budget: "
          f"{budget:.2f} ms, the reference's / {GOAL:g}):")
    for label, ms in spent.items():
        print(f"  {label:<40}{ms:>8.2f} ms {100 * ms / whole:>5.0f}% of the step "
              f"{100 * ms / budget:>5.0f}% of the budget")
    return spent


def network_workload(ref, decoder: PafDecoder, params: PafParams):
    """(edgepose, reference) calls decoding the recorded 30-person case from network maps,
    or None when they do not find the same peaks and people."""
    case = ref.NETWORK_CASES["30 people"]
    net_pafs, net_heatmaps = ref.network_case_maps(case)
    height, width = case["image"]
    valid = tuple(case["valid"])

    def edgepose():
        return decoder.group(ImageMaps(net_pafs, 8, valid, (width, height), name="pafs"),
                             ImageMaps(net_heatmaps, 8, valid, (width, height),
                                       name="heatmaps"), height)

    def reference():
        return ref.decode_reference(ref.ports_resize(net_pafs, case),
                                    ref.ports_resize(net_heatmaps, case), COCO18, height, params,
                                    ref.peaks_as_the_port)

    # One channel at a time rounds a float32 ulp apart from the port's all-channel resize.
    same = same_people(*edgepose(), *reference(), score_atol=1e-6)
    return (edgepose, reference) if same else None


def port_workload(ref, edgepose, checkout: Path):
    """(edgepose, the port's own code) calls on the recorded 30-person network maps, or
    None when the port's peaks and people are not edgepose's (scores within 1e-6: the
    port resizes all channels at once, a float32 rounding apart from one at a time)."""
    case = ref.NETWORK_CASES["30 people"]
    net_pafs, net_heatmaps = ref.network_case_maps(case)
    run = openpose_post_network(checkout)
    image = tuple(case["image"])
    candidate, subset = run(net_pafs, net_heatmaps, image)
    same = same_people(*edgepose(), [candidate], subset, score_atol=1e-6)
    return (edgepose, lambda: run(net_pafs, net_heatmaps, image)) if same else None


def same_people(peaks, rows, ref_peaks, ref_rows, score_atol: float = 0.0) -> bool:
    """Whether edgepose found the reference's peaks and people: positions, peak ids and
    part counts exactly, peak scores within score_atol, person totals (sums of about
    40 scores) within 40 times that, plus 1e-9 for the order of the additions."""
    flat = np.array([p[:3] for part in ref_peaks for p in part], np.float64).reshape(-1, 3)
    return (len(flat) == len(peaks) > 0 and rows.shape == ref_rows.shape
            and np.array_equal(peaks.xy, flat[:, :2])
            and np.allclose(peaks.scores, flat[:, 2], rtol=0, atol=score_atol)
            and np.array_equal(rows[:, :-2], ref_rows[:, :-2])
            and np.array_equal(rows[:, -1], ref_rows[:, -1])
            and np.allclose(rows[:, -2], ref_rows[:, -2], rtol=0, atol=40 * score_atol + 1e-9))


def print_table(results: dict[str, dict[str, float]]) -> None:
    """workload | official (reference) ms | edgepose ms | ratio | goal, then the issue's figures."""
    print(f"{'workload':<18}{'official (reference) ms':>25}{'edgepose ms':>13}{'ratio':>9}"
          f"{f'goal >= {GOAL:g}x':>15}   when filed: official / edgepose / ratio")
    for name, r in results.items():
        goal = ("met" if r["ratio"] >= GOAL else "NOT met") if name in GOAL_ROWS else "-"
        official, edgepose, ratio = FILED.get(name, (None, None, None))
        filed = " / ".join("-" if v is None else f"{v:,.0f} ms" for v in (official, edgepose))
        filed += f" / {ratio:g}x" if ratio is not None else ""
        print(f"{name:<18}{r['reference_ms']:>25.1f}{r['vectorised_ms']:>13.2f}"
              f"{r['ratio']:>8.1f}x{goal:>15}   {filed if ratio is not None else '-'}")


if __name__ == "__main__":
    sys.exit(main())
