"""MPII PCKh of a top-down model; the code lives in edgepose.evaluate.mpii, and this
path stays because the CLI and users import evaluate_mpii from it."""

from __future__ import annotations

from edgepose.evaluate.mpii import (MATLAB_OFFSET, PCKH_GROUPS, MpiiReport, MpiiTruth,
                                    evaluate_mpii, predict_mpii, read_mpii_truth)

__all__ = ["MATLAB_OFFSET", "PCKH_GROUPS", "MpiiReport", "MpiiTruth", "evaluate_mpii",
           "predict_mpii", "read_mpii_truth"]
