"""The speed benchmarks' breakdowns: they run to the end on a small case and report
pieces that belong to the rows they break down."""

import json

import pytest

pytest.importorskip("scipy.ndimage", reason="the PAF reference smooths with SciPy")


def test_the_paf_benchmark_splits_the_whole_step_against_the_goals_budget(tmp_path, capsys):
    from benchmarks import paf_grouping

    out = tmp_path / "paf.json"
    assert paf_grouping.main(["--people", "3", "--size", "92x164", "--repeats", "1",
                              "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    reference_ms = report["stages"]["whole step"]["reference_ms"]
    assert report["whole_step_budget_ms"] == pytest.approx(reference_ms / 30)
    spent = report["whole_step_spent_ms"]
    assert list(spent) == ["smoothing the part maps at image size",
                           "the rest of the peak search",
                           "reading every PAF value (validation)", "grouping",
                           "the rest of the whole step"]
    assert spent["smoothing the part maps at image size"] > 0
    assert spent["reading every PAF value (validation)"] > 0
    printed = capsys.readouterr().out
    assert f"the goal's budget: {reference_ms / 30:.2f} ms" in printed


def test_the_topdown_benchmark_times_the_decoders_two_reads_beside_the_bound(tmp_path, capsys):
    from benchmarks import topdown_decode

    out = tmp_path / "topdown.json"
    assert topdown_decode.main(["--people", "4", "--size", "16x12", "--repeats", "1",
                                "--json", str(out)]) == 0
    reads = json.loads(out.read_text())["shift_decoder_reads_ms"]
    assert sorted(reads) == ["argmax", "bound", "decoder", "min"]
    assert all(ms > 0 for ms in reads.values())
    assert "the shift decoder's two reads of every value" in capsys.readouterr().out
